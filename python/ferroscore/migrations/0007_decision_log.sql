-- The decision log, partitioned by day of `created_at` so that retention drops whole
-- partitions, with a unique key so that a spool segment replayed after a crash adds nothing
-- twice. The rows so far move to the default partition, which holds whatever no daily
-- partition covers. `reference` is the caller's own id for the request.
ALTER TABLE decisions RENAME TO decisions_unpartitioned;
ALTER INDEX decisions_request_id RENAME TO decisions_unpartitioned_request_id;
ALTER INDEX decisions_model_created_at RENAME TO decisions_unpartitioned_model_created_at;
CREATE TABLE decisions (
    request_id  text             NOT NULL,
    row_index   integer          NOT NULL DEFAULT 0,
    model       text             NOT NULL,
    version     integer          NOT NULL,
    features    jsonb            NOT NULL,
    score       double precision[] NOT NULL,
    created_at  timestamptz      NOT NULL,
    decision    text,
    role        text             NOT NULL DEFAULT 'champion',
    tenant      text             NOT NULL,
    reference   text,
    UNIQUE (request_id, row_index, model, version, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE decisions_default PARTITION OF decisions DEFAULT;
INSERT INTO decisions (request_id, row_index, model, version, features, score, created_at,
                       decision, role, tenant)
SELECT request_id, row_index, model, version, features, score, created_at, decision, role, tenant
FROM decisions_unpartitioned;
DROP TABLE decisions_unpartitioned;
CREATE INDEX decisions_model_created_at ON decisions (tenant, model, version, created_at);
CREATE INDEX decisions_tenant_created_at ON decisions (tenant, created_at);
CREATE INDEX decisions_reference ON decisions (tenant, reference) WHERE reference IS NOT NULL;
