-- Each model's earlier activations, oldest first, so that each rollback steps back one
-- activation (an incident's "go back" twice goes back twice, not to where it started).
-- `previous_version` stays the history's last entry: what a rollback serves next.
ALTER TABLE active_models ADD COLUMN history integer[] NOT NULL DEFAULT '{}';
UPDATE active_models SET history = ARRAY[previous_version] WHERE previous_version IS NOT NULL;
