-- Decision rows PostgreSQL ingests cheaply: a row's features are a float8[] of the model's
-- inputs in the order of their columns (a missing value NULL), its context fields a small
-- jsonb (NULL when the schema has none), written by binary COPY. The names are kept once per
-- version in `version_features`, which outlives a deleted version (its decisions stay
-- readable) and numbers versions so that one number never names two models.
CREATE TABLE version_features (
    tenant   text    NOT NULL,
    name     text    NOT NULL,
    version  integer NOT NULL,
    features text[]  NOT NULL,
    context  text[]  NOT NULL,
    PRIMARY KEY (tenant, name, version)
);

-- A registered version's names, as the core orders them: features by their column, context
-- fields (no column) by name.
INSERT INTO version_features (tenant, name, version, features, context)
SELECT m.tenant, m.name, m.version,
       ARRAY(SELECT p.key FROM jsonb_each(m.input_schema -> 'properties') p
             WHERE p.value ? 'x-ferroscore-column'
             ORDER BY (p.value ->> 'x-ferroscore-column')::int),
       ARRAY(SELECT p.key FROM jsonb_each(m.input_schema -> 'properties') p
             WHERE p.value ->> 'x-ferroscore-source' = 'context' ORDER BY p.key)
FROM models m;

-- A deleted version's names, from its decisions: the numbers (and nulls) are features, by
-- name; the strings are context.
INSERT INTO version_features (tenant, name, version, features, context)
SELECT d.tenant, d.model, d.version,
       coalesce(array_agg(DISTINCT e.key) FILTER (WHERE jsonb_typeof(e.value) <> 'string'), '{}'),
       coalesce(array_agg(DISTINCT e.key) FILTER (WHERE jsonb_typeof(e.value) = 'string'), '{}')
FROM decisions d CROSS JOIN LATERAL jsonb_each(d.features) e
WHERE NOT EXISTS (SELECT 1 FROM version_features v
                  WHERE (v.tenant, v.name, v.version) = (d.tenant, d.model, d.version))
GROUP BY 1, 2, 3;

ALTER TABLE decisions RENAME COLUMN features TO features_json;
ALTER TABLE decisions ADD COLUMN features double precision[], ADD COLUMN context jsonb;
UPDATE decisions d
SET features = ARRAY(SELECT (d.features_json ->> n)::float8
                     FROM unnest(v.features) WITH ORDINALITY AS u(n, i) ORDER BY i),
    context = (SELECT jsonb_object_agg(c, d.features_json -> c) FROM unnest(v.context) c
               WHERE d.features_json ? c)
FROM version_features v
WHERE (v.tenant, v.name, v.version) = (d.tenant, d.model, d.version);
ALTER TABLE decisions DROP COLUMN features_json;
ALTER TABLE decisions ALTER COLUMN features SET NOT NULL;

-- Monitoring counts a window's warnings: only the rows that have some are indexed (a row
-- scored cleanly costs this index nothing).
CREATE INDEX decisions_warned ON decisions (tenant, model, version, created_at)
    WHERE warnings IS NOT NULL;
