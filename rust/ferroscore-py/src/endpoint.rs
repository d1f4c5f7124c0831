//! `Endpoint` and `Decision`: the scoring hot path as the service calls it. The body is
//! borrowed from the Python `str`/`bytes` object and scored with the GIL released.

use crate::errors::{model_error, request_error, schema_error};
use crate::model::Model;
use ferroscore_core::{self as core, Limits};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use std::sync::Arc;

#[pyclass(module = "ferroscore._core", frozen)]
pub struct Endpoint {
    inner: Arc<core::Endpoint>,
    schema: String,
}

#[pymethods]
impl Endpoint {
    #[new]
    #[pyo3(signature = (name, version, model, schema, *, max_body_bytes=Limits::default().max_body_bytes))]
    fn new(
        name: &str,
        version: i64,
        model: &Model,
        schema: &str,
        max_body_bytes: usize,
    ) -> PyResult<Self> {
        let compiled = core::compile_schema(schema).map_err(schema_error)?;
        let limits = Limits { max_body_bytes };
        let inner = core::Endpoint::new(name, version, model.inner.clone(), compiled, limits)
            .map_err(model_error)?;
        Ok(Endpoint {
            inner: Arc::new(inner),
            schema: schema.to_owned(),
        })
    }

    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    #[getter]
    fn version(&self) -> i64 {
        self.inner.version()
    }

    #[getter]
    fn model(&self) -> Model {
        Model {
            inner: self.inner.model_arc(),
        }
    }

    /// The input schema text this endpoint was compiled from.
    #[getter]
    fn schema(&self) -> &str {
        &self.schema
    }

    /// Parses, validates and scores a `{"features": {...}}` body; returns the response JSON
    /// and the decision to record.
    fn score<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyBytes>, Decision)> {
        let bytes: &[u8] = if let Ok(s) = body.cast::<PyString>() {
            s.to_str()?.as_bytes()
        } else if let Ok(b) = body.cast::<PyBytes>() {
            b.as_bytes()
        } else {
            return Err(PyTypeError::new_err("body must be str or bytes"));
        };
        let endpoint = self.inner.as_ref();
        match py.detach(|| endpoint.score(bytes)) {
            Ok(mut scored) => {
                let response = PyBytes::new(py, &std::mem::take(&mut scored.response));
                Ok((
                    response,
                    Decision {
                        endpoint: self.inner.clone(),
                        scored,
                    },
                ))
            }
            Err(e) => Err(request_error(py, &e)),
        }
    }
}

/// One scored request, as the decision log records it.
#[pyclass(module = "ferroscore._core", frozen)]
pub struct Decision {
    endpoint: Arc<core::Endpoint>,
    scored: core::Scored,
}

#[pymethods]
impl Decision {
    #[getter]
    fn request_id(&self) -> &str {
        &self.scored.request_id
    }

    #[getter]
    fn model(&self) -> &str {
        self.endpoint.name()
    }

    #[getter]
    fn version(&self) -> i64 {
        self.endpoint.version()
    }

    #[getter]
    fn scores(&self) -> Vec<f64> {
        self.scored.scores.clone()
    }

    #[getter]
    fn scored_at_ns(&self) -> u128 {
        self.scored.scored_at_ns
    }

    /// The validated features as a JSON object keyed by name; missing values are null.
    fn features_json(&self) -> String {
        self.endpoint.features_json(&self.scored.features)
    }
}
