"""ferroscore: real-time model scoring. The Rust core parses, validates and scores; this package
is the service around it and the public Python API.

    >>> from ferroscore import Model
    >>> model = Model.load(open("model.json", "rb").read())
    >>> model.predict(X)  # float32/float64 NumPy array, NaN = missing
"""

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
    "ValidationError",
    "__version__",
]
