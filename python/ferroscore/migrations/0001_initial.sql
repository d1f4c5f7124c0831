-- The model registry and the decision log.

CREATE TABLE models (
    name        text        NOT NULL,
    version     integer     NOT NULL CHECK (version > 0),
    format      text        NOT NULL,
    artifact    bytea       NOT NULL,
    input_schema jsonb      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- At most one served version per model; a row here is what "active" means.
CREATE TABLE active_models (
    name        text        PRIMARY KEY,
    version     integer     NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (name, version) REFERENCES models (name, version)
);

CREATE TABLE decisions (
    request_id  text        NOT NULL,
    model       text        NOT NULL,
    version     integer     NOT NULL,
    features    jsonb       NOT NULL,
    score       double precision[] NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE INDEX decisions_request_id ON decisions (request_id);
CREATE INDEX decisions_model_created_at ON decisions (model, created_at);
