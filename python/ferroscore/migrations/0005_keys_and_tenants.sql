-- API keys and tenants. A key belongs to one tenant and carries scopes; only the SHA-256 of
-- its token is stored. Models, their versions, their audit trail and their decisions belong
-- to a tenant: each tenant has its own model names. What existed before belongs to 'default'.
CREATE TABLE api_keys (
    id           text        PRIMARY KEY,          -- public: the token's `fsk_<id>_` part
    tenant       text        NOT NULL,
    token_sha256 bytea       NOT NULL UNIQUE,
    scopes       text[]      NOT NULL,
    rate_per_s   double precision CHECK (rate_per_s > 0),  -- NULL: no rate limit
    burst        integer     CHECK (burst > 0),
    description  text        NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);

ALTER TABLE active_models
    DROP CONSTRAINT active_models_name_version_fkey,
    DROP CONSTRAINT active_models_name_shadow_version_fkey,
    DROP CONSTRAINT active_models_name_previous_version_fkey,
    DROP CONSTRAINT active_models_pkey;
ALTER TABLE models DROP CONSTRAINT models_pkey;

ALTER TABLE models ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE models ALTER COLUMN tenant DROP DEFAULT, ADD PRIMARY KEY (tenant, name, version);

ALTER TABLE active_models ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE active_models
    ALTER COLUMN tenant DROP DEFAULT,
    ADD PRIMARY KEY (tenant, name),
    ADD FOREIGN KEY (tenant, name, version) REFERENCES models (tenant, name, version),
    ADD FOREIGN KEY (tenant, name, shadow_version) REFERENCES models (tenant, name, version),
    ADD FOREIGN KEY (tenant, name, previous_version) REFERENCES models (tenant, name, version);

ALTER TABLE model_audit ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE model_audit ALTER COLUMN tenant DROP DEFAULT;
DROP INDEX model_audit_name_at;
CREATE INDEX model_audit_tenant_name_at ON model_audit (tenant, name, at);

ALTER TABLE decisions ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE decisions ALTER COLUMN tenant DROP DEFAULT;
