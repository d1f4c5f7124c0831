"""A row scored alone takes the one-row walk (several trees in lock step), a batch takes the
block kernel (several rows in lock step): both must give the same bits."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ferroscore import Model


def in_odd_rows(
    x: np.ndarray, share: float, rng: np.random.Generator, values: Sequence[float] = (np.nan,)
) -> np.ndarray:
    """A copy of `x` with about `share` of the odd rows' cells set to one of `values` (picked
    at random when there are several). Even rows keep every input, so both the kernels'
    shortcut for rows with nothing missing and their full test are exercised."""
    x = x.copy()
    odd = x[1::2]
    mask = rng.random(odd.shape) < share
    odd[mask] = values[0] if len(values) == 1 else rng.choice(values, mask.sum())
    return x


def assert_alone_as_in_batch(model: Model, x: np.ndarray, limit: int = 300) -> None:
    """The first `limit` rows of `x`, each scored on its own, score as in one batch."""
    batch = model.predict(x, output="margin")
    alone = [model.predict(x[i : i + 1], output="margin") for i in range(min(len(x), limit))]
    np.testing.assert_array_equal(np.concatenate(alone), batch[:limit])
