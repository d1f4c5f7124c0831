-- A batch request records one decision row per scored record, numbered within the request.
ALTER TABLE decisions ADD COLUMN row_index integer NOT NULL DEFAULT 0;
DROP INDEX decisions_request_id;
CREATE INDEX decisions_request_id ON decisions (request_id, row_index);
