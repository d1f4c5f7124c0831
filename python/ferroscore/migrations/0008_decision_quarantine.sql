-- Decision rows PostgreSQL refused (a byte its text types cannot hold, say), each kept whole
-- as the spool wrote it: one row refused never costs another row of its segment. An operator
-- reads them here; `tenant` and `request_id` are read from the row where they can be.
CREATE TABLE decisions_quarantine (
    id              bigserial   PRIMARY KEY,
    quarantined_at  timestamptz NOT NULL DEFAULT now(),
    tenant          text,
    request_id      text,
    error           text        NOT NULL,
    row_bytes       bytea       NOT NULL
);
CREATE INDEX decisions_quarantine_tenant ON decisions_quarantine (tenant, quarantined_at);
