-- The ground truth of a decision, arriving later: what the transaction or the loan turned
-- out to be. One per request, per tenant; the decisions table keeps its rows as scored.
CREATE TABLE outcomes (
    tenant       text             NOT NULL,
    request_id   text             NOT NULL,
    label        double precision NOT NULL,
    amount       double precision,
    observed_at  timestamptz      NOT NULL,
    recorded_at  timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, request_id)
);
