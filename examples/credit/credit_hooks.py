"""The decision hook of the credit example (README.md beside this file): the adverse-action
reasons a lender must give with a decline, from the model's exact contributions and the
lender's mapping table, `reason_codes.csv`.

Serve it with `FERROSCORE_HOOKS=credit_hooks` and this directory on the Python path.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ferroscore.hooks import Context, Outcome, Scored, decide

MODEL = "credit"
CODES = Path(__file__).with_name("reason_codes.csv")
#: Regulation B asks for the principal reasons; more than four rarely helps the applicant.
MAX_REASONS = 4
ADVERSE = frozenset({"decline"})


class ReasonCode(NamedTuple):
    code: str
    text: str


def reason_codes(path: Path = CODES) -> dict[str, ReasonCode]:
    """The mapping table: each feature's reason code and the text the notice prints."""
    with path.open(newline="") as f:
        return {row["feature"]: ReasonCode(row["code"], row["text"]) for row in csv.DictReader(f)}


def principal_reasons(
    contributions: npt.NDArray[np.float64],
    features: Sequence[str | None],
    table: Mapping[str, ReasonCode],
) -> list[dict[str, Any]]:
    """The features that raised this applicant's risk the most, strongest first, as reason
    codes: each code once (two features may share one), at most `MAX_REASONS`."""
    reasons: list[dict[str, Any]] = []
    for column in np.argsort(-contributions, kind="stable"):
        name = features[column]
        if contributions[column] <= 0 or len(reasons) == MAX_REASONS:
            break
        if name is None:
            continue
        if name not in table:
            raise LookupError(f"{CODES.name} has no reason code for feature {name!r}")
        code = table[name]
        if all(r["code"] != code.code for r in reasons):
            reasons.append({"code": code.code, "text": code.text, "feature": name,
                            "contribution": float(contributions[column])})  # fmt: skip
    return reasons


# Inline: no I/O (the reason codes are read once, then cached), so it runs in place on the
# serving process's event loop rather than on a thread of the hooks' pool.
@decide(MODEL, inline=True)
def adverse_action(scored: Scored, ctx: Context) -> Outcome | None:
    """Gives each declined application its principal reasons; other rows keep their answer.
    Contributions (exact TreeSHAP) are computed only when a row is declined."""
    adverse = [row.decision in ADVERSE for row in scored.rows]
    if not any(adverse):
        return None
    table: dict[str, ReasonCode] = ctx.cache.get_or_set(("credit", CODES), 300.0, reason_codes)
    # The last column is the bias: not a reason.
    contributions = scored.contributions()[:, :-1]
    reasons = [
        principal_reasons(c, scored.features, table) if a else None
        for a, c in zip(adverse, contributions, strict=True)
    ]
    return Outcome(reasons=reasons, extra={"reason_codes": CODES.name})
