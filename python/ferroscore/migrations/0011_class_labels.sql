-- The class labels a version's scores are of (a JSON list of strings, one per class), so
-- that its answers name the predicted class and the probabilities by label; NULL: none.
ALTER TABLE models ADD COLUMN labels jsonb;
