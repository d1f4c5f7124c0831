"""A row scored alone takes the one-row walk (several trees in lock step), a batch takes the
block kernel (several rows in lock step): both must give the same bits."""

from __future__ import annotations

import numpy as np

from ferroscore import Model


def assert_alone_as_in_batch(model: Model, x: np.ndarray, limit: int = 300) -> None:
    """The first `limit` rows of `x`, each scored on its own, score as in one batch."""
    batch = model.predict(x, output="margin")
    alone = [model.predict(x[i : i + 1], output="margin") for i in range(min(len(x), limit))]
    np.testing.assert_array_equal(np.concatenate(alone), batch[:limit])
