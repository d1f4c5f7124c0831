"""A model version's health over a window of its decision log: the distribution of each
feature and of the score against the reference profile captured at registration (population
stability index, PSI), and, where outcomes arrived, AUC, log-loss and calibration.

PostgreSQL does the per-row work: it bins every logged value on the profile's own bin edges
and counts, and ranks the scores for AUC. Python only sees counts (a few per feature and time
bucket) and turns them into proportions and PSI. Over a window of more than `SAMPLE_ROWS`
rows the distributions are those of a sample of about that many, the rows of a random share of
the table's pages (PostgreSQL's `TABLESAMPLE SYSTEM`, repeatable, which reads only those
pages): a bin's share is then known to within a point or two, far inside the shifts PSI alerts
on, and a million-row window answers within a second. Row counts stay exact.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime
from typing import Any

from psycopg import Connection, sql

#: A feature by its name, or the score.
Key = str | tuple[str]

#: Proportions below this count as this, so that an empty bin does not make PSI infinite.
PSI_FLOOR = 1e-4
#: Above this, a distribution has shifted enough to look at (the usual rule of thumb).
PSI_ALERT = 0.2
CALIBRATION_BINS = 10
#: Rows of a window whose values are binned; a larger window is sampled down to this many.
SAMPLE_ROWS = 30_000
#: A window's (or bucket's) state: enough rows for a PSI, or too few to say anything.
ENOUGH, INSUFFICIENT = "ok", "insufficient_data"
BUCKETS = ("hour", "day")
#: The score's key among the features' (whose keys are their names: strings).
_SCORE = ("score",)

_WINDOW = """
    tenant = %(tenant)s AND model = %(model)s AND version = %(version)s
    AND role = 'champion' AND created_at >= %(since)s AND created_at < %(until)s
"""

# The window's rows per time bucket, in one pass over the index in time order (model, version
# and role are in its entries: once vacuumed, no table page is read).
_ROWS = f"""
SELECT date_trunc(%(bucket)s, created_at), count(*) FROM decisions WHERE {_WINDOW} GROUP BY 1
"""

# One scan of the window (or of its sample): each row's bin of each profiled feature and of its
# score, as one array, then counted. Numbers fall in [edge_i, edge_i+1) bins, clipped to the
# first and last; categories (and booleans) count by the code the model reads; a missing value
# has no bin (NULL). `{bins}` are the expressions of `_bins`, `{sample}` a TABLESAMPLE or none.
_BINNED = """
SELECT r.bucket, u.k, u.bin, count(*) FROM (
    SELECT date_trunc(%(bucket)s, created_at) AS bucket, ARRAY[{bins}]::int[] AS bins
    FROM decisions {sample} WHERE {window}
) r CROSS JOIN LATERAL unnest(r.bins) WITH ORDINALITY AS u(bin, k)
GROUP BY 1, 2, 3
"""

# The warnings the window's rows were scored with (out_of_training_range, unknown_category),
# by feature and code; a row without any has a NULL `warnings` and costs nothing here.
_WARNED = f"""
SELECT w ->> 'feature', w ->> 'code', count(*)
FROM decisions CROSS JOIN LATERAL jsonb_array_elements(warnings) w
WHERE {_WINDOW} AND warnings IS NOT NULL
GROUP BY 1, 2
"""

# The champion's score against the outcome of its request (every row of it), over the window:
# counts, AUC by ranks (ties share their mean rank), log-loss and calibration bins. `{paired}`
# pairs them from the smaller side: the window's rows, each looked up among the outcomes, or
# the tenant's outcomes, each looked up among the decisions by request id (the unique key;
# OFFSET 0 keeps PostgreSQL from turning the lookups back into a scan of the window).
_FROM_DECISIONS = f"""
    SELECT score, label FROM decisions JOIN outcomes USING (tenant, request_id) WHERE {_WINDOW}
"""
_FROM_OUTCOMES = f"""
    SELECT d.score, o.label FROM outcomes o CROSS JOIN LATERAL (
        SELECT score FROM decisions WHERE request_id = o.request_id AND {_WINDOW} OFFSET 0
    ) d
    WHERE o.tenant = %(tenant)s
"""
_OUTCOMES = """
WITH scored AS (
    SELECT (SELECT max(x) FROM unnest(score) x) AS p, (label > 0.5)::int AS y FROM ({paired}) s
),
ranked AS (
    SELECT p, y, rank() OVER (ORDER BY p) + (count(*) OVER (PARTITION BY p) - 1) / 2.0 AS r
    FROM scored WHERE p IS NOT NULL AND p = p
)
SELECT (SELECT count(*) FROM ranked), (SELECT coalesce(sum(y), 0) FROM ranked),
       (SELECT coalesce(sum(r), 0) FROM ranked WHERE y = 1),
       (SELECT avg(-(y * ln(least(greatest(p, 1e-15), 1 - 1e-15))
                     + (1 - y) * ln(1 - least(greatest(p, 1e-15), 1 - 1e-15)))) FROM ranked),
       (SELECT coalesce(jsonb_agg(jsonb_build_array(b, n, mean_p, rate) ORDER BY b), '[]')
        FROM (SELECT least(floor(p * %(bins)s)::int, %(bins)s - 1) AS b, count(*) AS n,
                     avg(p) AS mean_p, avg(y) AS rate
              FROM ranked GROUP BY 1) cal)
"""
#: A lookup by request id costs about as much as reading this many of the window's rows.
_LOOKUP_ROWS = 4


def psi(actual: dict[str, int], expected: dict[str, float]) -> float | None:
    """Population stability index of the counts `actual` against the proportions
    `expected`, over the bins of both; None when nothing was counted."""
    total = sum(actual.values())
    if total == 0:
        return None
    out = 0.0
    for b in set(actual) | set(expected):
        a = max(actual.get(b, 0) / total, PSI_FLOOR)
        e = max(expected.get(b, 0.0), PSI_FLOOR)
        out += (a - e) * math.log(a / e)
    return out


def _reference(
    entry: dict[str, Any], words: dict[str, str]
) -> tuple[list[float] | None, dict[str, float]]:
    """A profile entry's bin edges (None for categories) and its proportions by bin name: a
    number's bin, or a category's code (the log holds the model's inputs)."""
    if "frequencies" in entry:
        code = {w: c for c, w in words.items()}
        return None, {code[w]: float(p) for w, p in entry["frequencies"].items() if w in code}
    edges = entry.get("edges") or []
    return edges, {str(i + 1): float(p) for i, p in enumerate(entry.get("proportions") or [])}


def report(
    conn: Connection[Any],
    tenant: str,
    model: str,
    version: int,
    profile: dict[str, Any] | None,
    schema: dict[str, Any],
    since: datetime,
    until: datetime,
    bucket: str = "day",
    min_rows: int = 100,
) -> dict[str, Any]:
    """The monitoring report of `model` v`version` over [`since`, `until`), with a drift
    series per `bucket` ("hour" or "day"). A window or bucket of fewer than `min_rows` rows
    has no PSI: its `status` is `insufficient_data` (one row's PSI is 8, "drifted")."""
    entries: dict[Key, dict[str, Any]] = {_SCORE: (profile or {}).get("score") or {}}
    entries.update((profile or {}).get("features") or {})
    words = {key: _words(schema, key) for key in entries}
    references = {key: _reference(e, words[key]) for key, e in entries.items()}
    args = {
        "tenant": tenant,
        "model": model,
        "version": version,
        "since": since,
        "until": until,
        "bucket": bucket,
        "bins": CALIBRATION_BINS,
    }
    rows_in = {when: n for when, n in conn.execute(_ROWS, args) if n}
    window_rows = sum(rows_in.values())
    keys = list(references)
    binned, edges = _bins(conn, tenant, model, version, [(k, references[k][0]) for k in keys])
    percent = 100.0 if window_rows <= SAMPLE_ROWS else 100.0 * SAMPLE_ROWS / window_rows
    sample = sql.SQL("TABLESAMPLE SYSTEM ({}) REPEATABLE (0)").format(percent)
    query = sql.SQL(_BINNED).format(bins=binned, window=sql.SQL(_WINDOW),
                                    sample=sample if percent < 100 else sql.SQL(""))  # fmt: skip
    counts: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    missing: dict[Key, int] = defaultdict(int)
    series: dict[datetime, dict[Key, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(int))
    )
    for when, k, b, n in conn.execute(query, {**args, **edges}):
        name = keys[k - 1]
        if b is None:
            missing[name] += n
        else:
            counts[name][str(b)] += n
            series[when][name][str(b)] += n
    # The rows whose values were binned: the window's, or its sample's (every row has a score).
    binned_rows = sum(counts[_SCORE].values()) + missing[_SCORE]
    total = window_rows
    status = ENOUGH if total >= min_rows else INSUFFICIENT

    def drift(name: Key, got: dict[str, int], rows: int = total) -> float | None:
        if profile is None or rows < min_rows:
            return None
        return psi(got, references[name][1])

    warned: dict[str, dict[str, int]] = defaultdict(dict)
    for feature, code, n in conn.execute(_WARNED, args):
        warned[feature][code] = n
    features: dict[str, dict[str, Any]] = {}
    for name in entries:
        if not isinstance(name, str):
            continue
        reference_missing = entries[name].get("missing_rate") if profile else None
        value = drift(name, counts[name])
        features[name] = {
            "psi": value,
            "drifted": value is not None and value > PSI_ALERT,
            "missing_rate": missing[name] / binned_rows if binned_rows else None,
            "reference_missing_rate": reference_missing,
            "distribution": _proportions(counts[name], words[name]),
            "warnings": warned.pop(name, {}),
        }
    for name, by_code in warned.items():  # a feature the profile does not cover
        features[name] = {"psi": None, "drifted": False, "warnings": by_code}
    score_psi = drift(_SCORE, counts[_SCORE])
    return {
        "model": model,
        "version": version,
        "window": {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "rows": total,
            "status": status,
            "min_rows": min_rows,
            # The rows the distributions are of: every row of the window, or a sample of it.
            "binned_rows": binned_rows,
        },
        "reference": None if profile is None else {"rows": profile.get("rows")},
        "score": {
            "psi": score_psi,
            "drifted": score_psi is not None and score_psi > PSI_ALERT,
            "distribution": _proportions(counts[_SCORE]),
            "reference": references[_SCORE][1] or None,
        },
        "features": features,
        "series": [
            {
                "start": when.isoformat(),
                "rows": rows_in[when],
                "status": ENOUGH if rows_in[when] >= min_rows else INSUFFICIENT,
                "score_psi": drift(_SCORE, series[when][_SCORE], rows_in[when]),
                "features_psi": {
                    n: drift(n, series[when][n], rows_in[when])
                    for n in features
                    if series[when].get(n)
                },
            }
            for when in sorted(rows_in)
        ],
        "outcomes": _outcomes(conn, args, window_rows),
    }


def _bins(
    conn: Connection[Any],
    tenant: str,
    model: str,
    version: int,
    keys: list[tuple[Key, list[float] | None]],
) -> tuple[sql.Composed, dict[str, list[float]]]:
    """The expressions of `_BINNED`'s bins, one per profiled key in order, and the edges they
    are bound to: a logged row's features are the `float8[]` of its version's names
    (`version_features`)."""
    row = conn.execute(
        "SELECT features FROM version_features WHERE tenant = %s AND name = %s AND version = %s",
        (tenant, model, version),
    ).fetchone()
    names: list[str] = list(row[0]) if row else []
    expressions: list[sql.Composable] = []
    bound: dict[str, list[float]] = {}
    for k, (key, edges) in enumerate(keys):
        if key == _SCORE:
            value: sql.Composable = sql.SQL("(SELECT max(x) FROM unnest(score) x)")
        elif isinstance(key, str) and key in names:
            value = sql.SQL("features[{}]").format(names.index(key) + 1)
        else:  # a profiled feature the version does not log
            value = sql.SQL("NULL::float8")
        if edges is None:
            expressions.append(sql.SQL("({})::int").format(value))
        else:
            bound[f"edges_{k}"] = edges
            expressions.append(
                # greatest() skips a NULL: a missing value is kept out of the clipping.
                sql.SQL(
                    "CASE WHEN {v} IS NOT NULL THEN"
                    " least(greatest(width_bucket({v}, {e}::float8[]), 1), {last}) END"
                ).format(v=value, e=sql.Placeholder(f"edges_{k}"), last=len(edges) - 1)
            )
    return sql.SQL(", ").join(expressions), bound


def _words(schema: dict[str, Any], key: Key) -> dict[str, str]:
    """The words of a categorical (or boolean) feature by the code the log holds."""
    spec = schema.get("properties", {}).get(key, {}) if isinstance(key, str) else {}
    codes = spec.get("x-ferroscore-categories")
    if codes is None and "boolean" in spec.get("type", ()):
        codes = {"false": 0, "true": 1}
    return {str(int(c)): w for w, c in (codes or {}).items()}


def _proportions(got: dict[str, int], words: dict[str, str] | None = None) -> dict[str, float]:
    """Proportions by bin: a number's bin (1 = the profile's first), or a category's word."""
    total = sum(got.values())
    named = words or {}
    return {named.get(b, b): n / total for b, n in sorted(got.items())} if total else {}


def _outcomes(conn: Connection[Any], args: dict[str, Any], window_rows: int) -> dict[str, Any]:
    """Counts, AUC, log-loss and calibration of the scored rows whose outcome arrived. The
    tenant's outcomes are counted up to what reading the window would cost; fewer, and each
    is looked up (none: nothing is read)."""
    enough = window_rows // _LOOKUP_ROWS + 1
    counted = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM outcomes WHERE tenant = %s LIMIT %s) o",
        (args["tenant"], enough),
    ).fetchone()
    few = counted is not None and counted[0] < enough
    paired = _FROM_OUTCOMES if few else _FROM_DECISIONS
    row = conn.execute(sql.SQL(_OUTCOMES).format(paired=sql.SQL(paired)), args).fetchone()
    assert row is not None  # an aggregate always answers
    n, positives, rank_sum, log_loss, calibration = row
    negatives = n - positives
    auc = None
    if positives and negatives:
        auc = (float(rank_sum) - positives * (positives + 1) / 2) / (positives * negatives)
    return {
        "rows": n,
        "positives": positives,
        "auc": auc,
        "log_loss": None if log_loss is None else float(log_loss),
        "calibration": [
            {
                "bin": [b / CALIBRATION_BINS, (b + 1) / CALIBRATION_BINS],
                "rows": count,
                "mean_score": float(mean_p),
                "observed_rate": float(rate),
            }
            for b, count, mean_p, rate in calibration
        ],
    }
