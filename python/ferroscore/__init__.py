"""ferroscore: real-time model scoring. The Rust core parses, validates and scores; this package
is the service around it and the public Python API.

    >>> from ferroscore import Model
    >>> model = Model.load(open("model.json", "rb").read())
    >>> model.predict(X)  # float32/float64 NumPy array, NaN = missing
    >>> from ferroscore import Scorer  # tables and frames, offline (ferroscore.offline)
"""

from typing import TYPE_CHECKING, Any

from ferroscore._core import (
    Decision,
    Endpoint,
    FerroscoreError,
    MalformedRequestError,
    Model,
    ModelLoadError,
    PayloadTooLargeError,
    RequestError,
    SchemaError,
    ValidationError,
    __version__,
)

__all__ = [
    "Decision",
    "Endpoint",
    "FerroscoreError",
    "MalformedRequestError",
    "Model",
    "ModelLoadError",
    "PayloadTooLargeError",
    "RequestError",
    "SchemaError",
    "Scorer",
    "ValidationError",
    "__version__",
]

if TYPE_CHECKING:
    from ferroscore.offline.scorer import Scorer


def __getattr__(name: str) -> Any:
    # `Scorer` brings pyarrow: it is imported when first asked for, not by `import ferroscore`
    # (which every serving process does).
    if name == "Scorer":
        from ferroscore.offline.scorer import Scorer

        return Scorer
    raise AttributeError(f"module 'ferroscore' has no attribute {name!r}")
