"""Rebuilding pickled models and scorers once per process. A Ray, Dask or Spark task carries
the artifact's bytes; the first task on a worker builds the model, the next ones reuse it."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from ferroscore._core import Model

T = TypeVar("T")

#: Distinct artifacts kept per process; a worker rarely scores more than a couple at once.
KEEP = 8

_built: OrderedDict[bytes, Any] = OrderedDict()
_lock = threading.Lock()


def cached(artifact: bytes, extra: tuple[object, ...], build: Callable[[], T]) -> T:
    """What `build` returns for this artifact and these settings, built once per process."""
    h = hashlib.blake2b(artifact, digest_size=20)
    h.update(repr(extra).encode())
    key = h.digest()
    with _lock:
        if key in _built:
            _built.move_to_end(key)
            return _built[key]  # type: ignore[no-any-return]
    value = build()
    with _lock:
        _built[key] = value
        while len(_built) > KEEP:
            _built.popitem(last=False)
    return value


def restore_model(artifact: bytes) -> Model:
    """Unpickles a `Model`."""
    return cached(artifact, ("model",), lambda: Model.load(artifact))
