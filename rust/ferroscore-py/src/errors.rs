//! The one place Rust errors become Python exceptions. Every class subclasses ValueError, so
//! `except ValueError` keeps working; request errors carry `.errors`, a list of dicts with
//! `pointer`, `code` and `message`.

use ferroscore_core as core;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

pyo3::create_exception!(
    _core,
    FerroscoreError,
    PyValueError,
    "Base of every ferroscore error."
);
pyo3::create_exception!(
    _core,
    RequestError,
    FerroscoreError,
    "A request body was refused."
);
pyo3::create_exception!(
    _core,
    MalformedRequestError,
    RequestError,
    "The body is not RFC 8259 JSON (HTTP 400)."
);
pyo3::create_exception!(
    _core,
    ValidationError,
    RequestError,
    "The records break the input schema (HTTP 422)."
);
pyo3::create_exception!(
    _core,
    PayloadTooLargeError,
    RequestError,
    "The body exceeds a configured limit (HTTP 413)."
);
pyo3::create_exception!(
    _core,
    SchemaError,
    FerroscoreError,
    "An input schema cannot be compiled."
);
pyo3::create_exception!(
    _core,
    ModelLoadError,
    FerroscoreError,
    "A model artifact cannot be loaded."
);

pyo3::create_exception!(
    _core,
    SpoolFullError,
    FerroscoreError,
    "The decision spool is at its limit or its disk is full: nothing may be acknowledged."
);
pyo3::create_exception!(
    _core,
    SpoolLockedError,
    FerroscoreError,
    "Another process holds the decision spool's directory."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("FerroscoreError", py.get_type::<FerroscoreError>())?;
    m.add("RequestError", py.get_type::<RequestError>())?;
    m.add(
        "MalformedRequestError",
        py.get_type::<MalformedRequestError>(),
    )?;
    m.add("ValidationError", py.get_type::<ValidationError>())?;
    m.add(
        "PayloadTooLargeError",
        py.get_type::<PayloadTooLargeError>(),
    )?;
    m.add("SchemaError", py.get_type::<SchemaError>())?;
    m.add("ModelLoadError", py.get_type::<ModelLoadError>())?;
    m.add("SpoolFullError", py.get_type::<SpoolFullError>())?;
    m.add("SpoolLockedError", py.get_type::<SpoolLockedError>())?;
    Ok(())
}

#[cold]
pub fn request_error(py: Python<'_>, e: &core::RequestError) -> PyErr {
    let err = match e {
        core::RequestError::Malformed(_) => MalformedRequestError::new_err(e.to_string()),
        core::RequestError::TooLarge(_) => PayloadTooLargeError::new_err(e.to_string()),
        core::RequestError::Invalid(_) => ValidationError::new_err(e.to_string()),
    };
    match attach_details(py, &err, e) {
        Ok(()) => err,
        Err(failed) => failed,
    }
}

fn attach_details(py: Python<'_>, err: &PyErr, e: &core::RequestError) -> PyResult<()> {
    let list = PyList::empty(py);
    for fe in e.errors() {
        let d = PyDict::new(py);
        d.set_item("pointer", &fe.pointer)?;
        d.set_item("code", fe.code.as_str())?;
        d.set_item("message", &fe.message)?;
        list.append(d)?;
    }
    err.value(py).setattr("errors", list)
}

/// A SchemaError carrying `pointer`, `document` ("schema" or "thresholds") and `message`.
#[cold]
pub fn schema_error(py: Python<'_>, e: core::SchemaError) -> PyErr {
    let err = SchemaError::new_err(e.to_string());
    let value = err.value(py);
    let attached = value
        .setattr("pointer", &e.pointer)
        .and_then(|()| value.setattr("document", e.document))
        .and_then(|()| value.setattr("message", &e.message));
    match attached {
        Ok(()) => err,
        Err(failed) => failed,
    }
}

/// A ModelLoadError; past a load limit it carries `field` (where the file declares the
/// count) and `limit` (which `LoadLimits` bound it broke), else both are None.
#[cold]
pub fn model_error(e: core::ModelError) -> PyErr {
    let err = ModelLoadError::new_err(e.to_string());
    let (field, limit) = match &e {
        core::ModelError::TooLarge { field, limit, .. } => (Some(field.as_str()), Some(*limit)),
        _ => (None, None),
    };
    Python::attach(|py| {
        let value = err.value(py);
        match value
            .setattr("field", field)
            .and_then(|()| value.setattr("limit", limit))
        {
            Ok(()) => err.clone_ref(py),
            Err(failed) => failed,
        }
    })
}

/// A `str` body with no UTF-8 form (lone surrogates): malformed, like invalid bytes.
#[cold]
pub fn malformed_text(py: Python<'_>, why: &str) -> PyErr {
    let e = core::RequestError::Malformed(core::FieldError::new(
        String::new(),
        core::Code::Syntax,
        format!("the body is not valid Unicode text: {why}"),
    ));
    request_error(py, &e)
}
