-- The model lifecycle: what each version carries, champion/shadow/rollback state, an audit
-- trail of every change, and the decision and role of each logged decision.
ALTER TABLE models
    ADD COLUMN thresholds jsonb,
    ADD COLUMN metadata   jsonb   NOT NULL DEFAULT '{}',
    ADD COLUMN profile    jsonb,
    ADD COLUMN sha256     text,
    ADD COLUMN n_features integer,
    ADD COLUMN objective  text,
    ADD COLUMN created_by text    NOT NULL DEFAULT 'system';

ALTER TABLE active_models
    ADD COLUMN previous_version integer,
    ADD COLUMN shadow_version   integer,
    ADD COLUMN shadow_share     double precision NOT NULL DEFAULT 0
        CHECK (shadow_share >= 0 AND shadow_share <= 1),
    ADD FOREIGN KEY (name, shadow_version) REFERENCES models (name, version),
    ADD FOREIGN KEY (name, previous_version) REFERENCES models (name, version);

CREATE TABLE model_audit (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    action       text        NOT NULL,
    name         text        NOT NULL,
    from_version integer,
    to_version   integer,
    detail       jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX model_audit_name_at ON model_audit (name, at);

ALTER TABLE decisions
    ADD COLUMN decision text,
    ADD COLUMN role     text NOT NULL DEFAULT 'champion';
