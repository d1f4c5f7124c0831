"""What a logged row holds, as its readers see it: its features as one JSON object of name →
value (the model's inputs: numbers, null where missing) and its context fields (strings),
rebuilt from the row's `float8[]` and `context` and its version's names (`version_features`).
For a query over `decisions d`."""

FEATURES = (
    "coalesce((SELECT jsonb_object_agg(u.name, u.value) FROM version_features v,"
    " unnest(v.features, d.features) AS u(name, value)"
    " WHERE (v.tenant, v.name, v.version) = (d.tenant, d.model, d.version)), '{}')"
    " || coalesce(d.context, '{}')"
)
