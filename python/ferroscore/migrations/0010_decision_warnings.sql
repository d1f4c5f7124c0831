-- What a decision's row was scored with but deserved a look (a value outside its training
-- range, an unknown category scored as missing): a jsonb array of {feature, code[, bound]},
-- NULL when there was nothing. Rows spooled before it have no such field and get NULL.
ALTER TABLE decisions ADD COLUMN warnings jsonb;
