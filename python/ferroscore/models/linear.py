"""Linear and logistic models for ferroscore: export a fitted scikit-learn estimator to the
`ferroscore-linear` JSON format that `Model.load` reads. No scikit-learn import: any estimator
with `coef_` and `intercept_` (and `classes_` for classifiers) will do."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

FORMAT = "ferroscore-linear"


def from_sklearn(estimator: Any, feature_names: Sequence[str] | None = None) -> bytes:
    """The `ferroscore-linear` JSON of a fitted linear estimator.

    `LogisticRegression` with two classes becomes a `logistic` model scoring the probability
    of `classes_[1]`; with more, a `softmax` model (multinomial, as scikit-learn fits it).
    Regressors (`LinearRegression`, `Ridge`, `Lasso`, ...) become `identity` models, one
    output per target. Feature names come from `feature_names` or the estimator's
    `feature_names_in_`.
    """
    names = list(
        feature_names if feature_names is not None else getattr(estimator, "feature_names_in_", [])
    )
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=np.float64))
    if not names:
        raise ValueError("feature names are needed: pass feature_names or fit on a DataFrame")
    if coef.shape[1] != len(names):
        raise ValueError(f"{len(names)} feature names for {coef.shape[1]} coefficients")
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        link = "identity"
    elif getattr(estimator, "multi_class", "auto") == "ovr" and len(classes) > 2:
        raise ValueError("one-vs-rest logistic regression is not supported; fit multinomial")
    elif len(classes) == 2:
        link = "logistic"
    else:
        link = "softmax"
    k = coef.shape[0]
    if intercept.shape[0] == 1 and k > 1:
        intercept = np.repeat(intercept, k)

    def value(column: np.ndarray) -> float | list[float]:
        return float(column[0]) if k == 1 else [float(v) for v in column]

    document = {
        "format": FORMAT,
        "link": link,
        "features": names,
        "coefficients": {name: value(coef[:, i]) for i, name in enumerate(names)},
        "intercept": value(intercept),
    }
    return json.dumps(document).encode()
