-- Idempotency keys (Stripe's semantics): the first response to a key is kept and replayed,
-- byte for byte, to every retry of the same request; `status` is NULL while the first is in
-- flight, and a claim past `lease_until` was abandoned (its process died).
CREATE TABLE idempotency_keys (
    scope       text        NOT NULL,  -- the API key the request came with; '' until keys exist
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,  -- sha256 of the method, path, query and body
    status      integer,
    headers     jsonb,
    body        bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
