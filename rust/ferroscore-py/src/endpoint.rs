//! `Endpoint` and `Decision`: the scoring hot path as the service calls it. The body is
//! borrowed from the Python `str`/`bytes` object and scored with the GIL released.

use crate::errors::{malformed_text, request_error, schema_error};
use crate::gil::{release_gil_if, DETACH_ABOVE_BYTES, DETACH_ABOVE_ROWS};
use crate::model::Model;
use crate::table;
use ferroscore_core::{self as core, Format, Limits};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray2};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use std::sync::Arc;

const DEFAULT: Limits = Limits::DEFAULT;

#[pyclass(module = "ferroscore._core", frozen)]
pub struct Endpoint {
    inner: Arc<core::Endpoint>,
    source: Arc<[u8]>,
    schema: String,
    thresholds: Option<String>,
    classes: Option<Vec<String>>,
}

#[pymethods]
impl Endpoint {
    #[new]
    #[pyo3(signature = (
        name, version, model, schema, *,
        max_body_bytes=DEFAULT.max_body_bytes,
        max_depth=DEFAULT.max_depth,
        max_string_bytes=DEFAULT.max_string_bytes,
        max_features=DEFAULT.max_features,
        max_rows=DEFAULT.max_rows,
        thresholds=None,
        classes=None,
    ))]
    #[allow(clippy::too_many_arguments)] // one keyword argument per limit, as Python sees them
    fn new(
        py: Python<'_>,
        name: &str,
        version: i64,
        model: &Model,
        schema: &str,
        max_body_bytes: usize,
        max_depth: usize,
        max_string_bytes: usize,
        max_features: usize,
        max_rows: usize,
        thresholds: Option<&str>,
        classes: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let compiled = core::compile_schema(schema).map_err(|e| schema_error(py, e))?;
        let rules = match thresholds {
            Some(text) => core::Thresholds::compile(text).map_err(|e| schema_error(py, e))?,
            None => core::Thresholds::default(),
        };
        let limits = Limits {
            max_body_bytes,
            max_depth,
            max_string_bytes,
            max_features,
            max_rows,
        };
        let mut inner =
            core::Endpoint::new(name, version, model.inner.clone(), compiled, limits, rules)
                .map_err(|e| schema_error(py, e))?;
        if let Some(labels) = &classes {
            inner = inner
                .with_classes(labels)
                .map_err(|e| schema_error(py, e))?;
        }
        Ok(Endpoint {
            inner: Arc::new(inner),
            source: model.source.clone(),
            schema: schema.to_owned(),
            thresholds: thresholds.map(str::to_owned),
            classes,
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
            source: self.source.clone(),
        }
    }

    /// The input schema text this endpoint was compiled from.
    #[getter]
    fn schema(&self) -> &str {
        &self.schema
    }

    /// The thresholds text this endpoint decides with, if any.
    #[getter]
    fn thresholds(&self) -> Option<&str> {
        self.thresholds.as_deref()
    }

    /// The class labels the answers name (the predicted `label` and the `probabilities` by
    /// label), if given.
    #[getter]
    fn classes(&self) -> Option<Vec<String>> {
        self.classes.clone()
    }

    /// Parses and validates a body as `score` would, without scoring: returns the number of
    /// rows, raises the same RequestError subclasses.
    #[pyo3(signature = (body, *, ndjson=false))]
    fn validate(&self, py: Python<'_>, body: &Bound<'_, PyAny>, ndjson: bool) -> PyResult<usize> {
        let bytes = body_bytes(py, body)?;
        let format = if ndjson { Format::Ndjson } else { Format::Json };
        let endpoint = self.inner.as_ref();
        release_gil_if(py, bytes.len() >= DETACH_ABOVE_BYTES, || {
            endpoint.parse(bytes, format, false)
        })
        .map(|rows| rows.len())
        .map_err(|e| request_error(py, &e))
    }

    /// Parses, validates and scores a body: `{"features": {...}}`, `{"rows": [...]}` or,
    /// with `ndjson`, one record per line. Returns the response JSON and the decision to
    /// record. With `partial`, a batch scores its valid rows and reports the others; with
    /// `explain`, each row carries its top reasons (the body's `"explain"` overrides it).
    /// `reference` is the caller's own id for the request (its X-Request-ID) when the body
    /// has no `"id"`: recorded with the decision and echoed as the response's `"id"`.
    #[pyo3(signature = (body, *, ndjson=false, partial=false, explain=0, request_id=None, reference=None))]
    #[allow(clippy::too_many_arguments)]
    fn score<'py>(
        &self,
        py: Python<'py>,
        body: &Bound<'py, PyAny>,
        ndjson: bool,
        partial: bool,
        explain: usize,
        request_id: Option<String>,
        reference: Option<String>,
    ) -> PyResult<(Bound<'py, PyBytes>, Decision)> {
        let bytes = body_bytes(py, body)?;
        let format = if ndjson { Format::Ndjson } else { Format::Json };
        let endpoint = self.inner.as_ref();
        match release_gil_if(py, bytes.len() >= DETACH_ABOVE_BYTES, || {
            let mut rows = endpoint.parse(bytes, format, partial)?;
            if rows.reference.is_none() {
                rows.reference = reference;
            }
            Ok::<_, core::RequestError>(endpoint.answer(rows, explain, request_id))
        }) {
            Ok(mut scored) => {
                let response = PyBytes::new(py, &std::mem::take(&mut scored.response));
                Ok((
                    response,
                    Decision {
                        endpoint: self.inner.clone(),
                        scored,
                        decisions: None,
                    },
                ))
            }
            Err(e) => Err(request_error(py, &e)),
        }
    }

    /// Parses and validates a body as `score` does, leaving the scoring for later: the rows
    /// an enrichment hook completes (`Parsed.enrich`) before `Parsed.finish` scores them.
    #[pyo3(signature = (body, *, ndjson=false, partial=false))]
    fn prepare(
        &self,
        py: Python<'_>,
        body: &Bound<'_, PyAny>,
        ndjson: bool,
        partial: bool,
    ) -> PyResult<Parsed> {
        let bytes = body_bytes(py, body)?;
        let format = if ndjson { Format::Ndjson } else { Format::Json };
        let endpoint = self.inner.as_ref();
        let rows = release_gil_if(py, bytes.len() >= DETACH_ABOVE_BYTES, || {
            endpoint.parse(bytes, format, partial)
        })
        .map_err(|e| request_error(py, &e))?;
        Ok(Parsed {
            endpoint: self.inner.clone(),
            batch: rows.batch,
            rows: Some(rows),
        })
    }

    /// What this version has scored for callers in this process: `(rows, buckets, sum,
    /// decisions)` — `buckets` counts single-output rows by score, not cumulatively, one per
    /// bound of `SCORE_BOUNDS` and a last above them; `decisions` maps each thresholds'
    /// decision to its rows.
    #[allow(clippy::type_complexity)] // one plain tuple, as Python reads it
    fn stats(&self) -> (u64, Vec<u64>, f64, Vec<(String, u64)>) {
        let (read, labels) = self.inner.stats();
        let decisions = labels
            .iter()
            .map(|l| (*l).to_owned())
            .zip(read.decisions)
            .collect();
        (read.rows, read.buckets, read.sum, decisions)
    }

    /// The names of a logged row's `features` (in their order: the model's columns) and of
    /// its `context` keys; the registry keeps them once per version.
    #[getter]
    fn logged_names(&self) -> (Vec<String>, Vec<String>) {
        let schema = self.inner.schema();
        let features = schema.features().iter().map(|f| f.name.clone()).collect();
        let context = schema.context().iter().map(|c| c.name.clone()).collect();
        (features, context)
    }

    /// The features enrichment supplies: `(name, required)` each, in model column order.
    #[getter]
    fn enriched_features(&self) -> Vec<(String, bool)> {
        self.inner
            .enriched()
            .map(|f| (f.name.clone(), f.required))
            .collect()
    }

    /// Reads a table's columns by the schema and scores every row, as `ferroscore.offline.files`
    /// calls it: `columns` are `(name, cells, nulls)` (see `table::hold`), `first_row`
    /// numbers the rows in the errors' pointers, `max_errors` caps the problems kept. Large
    /// tables are split over the thread pool (`threads` threads, else the global pool), with
    /// the GIL released throughout.
    #[pyo3(signature = (columns, n_rows, *, first_row=0, explain=0, max_errors=50, threads=None))]
    #[allow(clippy::too_many_arguments)] // keyword arguments, as Python sees them
    fn score_table<'py>(
        &self,
        py: Python<'py>,
        columns: Vec<Bound<'py, PyAny>>,
        n_rows: usize,
        first_row: usize,
        explain: usize,
        max_errors: usize,
        threads: Option<usize>,
    ) -> PyResult<table::ScoredTable<'py>> {
        let held = columns
            .iter()
            .map(table::hold)
            .collect::<PyResult<Vec<_>>>()?;
        let borrowed = held
            .iter()
            .map(|c| c.borrow(n_rows))
            .collect::<PyResult<Vec<_>>>()?;
        let endpoint = self.inner.as_ref();
        let explain = explain.min(endpoint.model().n_features());
        let pool = threads.map(table::pool).transpose()?;
        let scored = py.detach(|| {
            let work = || {
                let rows = endpoint.read_columns(&borrowed, n_rows, first_row, max_errors);
                endpoint.evaluate(rows, explain, None, true)
            };
            match pool {
                Some(p) => p.install(work),
                None => work(),
            }
        });
        table::scored_table(py, endpoint, scored, explain)
    }
}

/// A parsed request waiting for its enrichment, then scored once by `finish`.
#[pyclass(module = "ferroscore._core")]
pub struct Parsed {
    endpoint: Arc<core::Endpoint>,
    batch: bool,
    rows: Option<core::Rows>,
}

#[pymethods]
impl Parsed {
    /// A batch (rows or NDJSON) rather than one record.
    #[getter]
    fn batch(&self) -> bool {
        self.batch
    }

    /// The indexes of the valid rows, in order: the rows an enrichment supplies values for.
    #[getter]
    fn valid(&self) -> PyResult<Vec<usize>> {
        let rows = self.rows()?;
        Ok((0..rows.len()).filter(|&i| rows.valid[i]).collect())
    }

    /// Each valid row as hooks read it: `(row_index, values_json)`.
    fn records(&self) -> PyResult<Vec<(usize, String)>> {
        let rows = self.rows()?;
        Ok((0..rows.len())
            .filter(|&i| rows.valid[i])
            .map(|i| (i, self.endpoint.values_json(rows, i)))
            .collect())
    }

    /// Writes `values` (one per valid row, in order: None, bool, int, float or str) of an
    /// enriched feature, each checked by its rules; ValueError says which broke which.
    fn enrich(&mut self, feature: &str, values: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        let supplied = values.iter().map(supplied).collect::<PyResult<Vec<_>>>()?;
        let endpoint = self.endpoint.clone();
        let rows = self
            .rows
            .as_mut()
            .ok_or_else(|| PyValueError::new_err("this request was already scored"))?;
        endpoint
            .enrich(rows, feature, &supplied)
            .map_err(PyValueError::new_err)
    }

    /// Scores the rows and writes the response, as `Endpoint.score` would have: the response
    /// bytes and the decision to log. Once only. `reference` as for `Endpoint.score`.
    #[pyo3(signature = (*, explain=0, request_id=None, reference=None))]
    fn finish<'py>(
        &mut self,
        py: Python<'py>,
        explain: usize,
        request_id: Option<String>,
        reference: Option<String>,
    ) -> PyResult<(Bound<'py, PyBytes>, Decision)> {
        let mut rows = self
            .rows
            .take()
            .ok_or_else(|| PyValueError::new_err("this request was already scored"))?;
        if rows.reference.is_none() {
            rows.reference = reference;
        }
        let endpoint = self.endpoint.as_ref();
        let big = rows.len() >= DETACH_ABOVE_ROWS;
        let mut scored = release_gil_if(py, big, || endpoint.answer(rows, explain, request_id));
        let response = PyBytes::new(py, &std::mem::take(&mut scored.response));
        let decision = Decision {
            endpoint: self.endpoint.clone(),
            scored,
            decisions: None,
        };
        Ok((response, decision))
    }
}

impl Parsed {
    fn rows(&self) -> PyResult<&core::Rows> {
        self.rows
            .as_ref()
            .ok_or_else(|| PyValueError::new_err("this request was already scored"))
    }
}

/// One value an enrichment hook supplied, as the core checks it.
fn supplied(value: &Bound<'_, PyAny>) -> PyResult<core::Supplied> {
    use core::Supplied;
    if value.is_none() {
        return Ok(Supplied::Null);
    }
    if let Ok(b) = value.cast::<pyo3::types::PyBool>() {
        return Ok(Supplied::Bool(b.is_true()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(Supplied::Str(s.to_str()?.to_owned()));
    }
    if value.is_instance_of::<pyo3::types::PyFloat>() {
        return Ok(Supplied::Float(value.extract()?));
    }
    if let Ok(n) = value.extract::<i64>() {
        return Ok(Supplied::Int(n));
    }
    if let Ok(x) = value.extract::<f64>() {
        return Ok(Supplied::Float(x));
    }
    Err(PyTypeError::new_err(format!(
        "an enriched value is None, a bool, a number or a str, not {}",
        value.get_type().name()?
    )))
}

/// The bytes of a `str` or `bytes` body, borrowed from the Python object.
fn body_bytes<'a>(py: Python<'_>, body: &'a Bound<'_, PyAny>) -> PyResult<&'a [u8]> {
    if let Ok(s) = body.cast::<PyString>() {
        // A str holding lone surrogates has no UTF-8 form: malformed, not a crash.
        Ok(s.to_str()
            .map_err(|e| malformed_text(py, &e.to_string()))?
            .as_bytes())
    } else if let Ok(b) = body.cast::<PyBytes>() {
        Ok(b.as_bytes())
    } else {
        Err(PyTypeError::new_err("body must be str or bytes"))
    }
}

/// One scored request, as the decision log records it.
#[pyclass(module = "ferroscore._core", frozen)]
pub struct Decision {
    endpoint: Arc<core::Endpoint>,
    scored: core::Scored,
    /// A decision hook's final decision per row, in place of the thresholds'.
    decisions: Option<Vec<Option<String>>>,
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

    /// The caller's own id for the request, if it gave one.
    #[getter]
    fn reference(&self) -> Option<&str> {
        self.scored.rows.reference.as_deref()
    }

    #[getter]
    fn version(&self) -> i64 {
        self.endpoint.version()
    }

    #[getter]
    fn scored_at_ns(&self) -> u128 {
        self.scored.scored_at_ns
    }

    /// Rows in the request, scored or not.
    #[getter]
    fn n_rows(&self) -> usize {
        self.scored.rows.len()
    }

    /// The indexes of the valid (scored) rows, in order.
    #[getter]
    fn valid(&self) -> Vec<usize> {
        let rows = &self.scored.rows;
        (0..rows.len()).filter(|&i| rows.valid[i]).collect()
    }

    /// Whether any value was scored with a warning (cheap: ask before `warnings`).
    #[getter]
    fn warned(&self) -> bool {
        !self.scored.rows.warnings.is_empty()
    }

    /// The warnings, as the response lists them, each with its `row` and `feature` too.
    #[getter]
    fn warnings<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.scored
            .rows
            .warnings
            .iter()
            .map(|w| warning_dict(py, w))
            .collect()
    }

    /// The scored rows as PostgreSQL binary COPY tuples for `COPY decisions (<DECISION_COLUMNS>)
    /// FROM STDIN (FORMAT binary)`, without the stream's header and trailer.
    #[pyo3(signature = (role="champion", tenant="default"))]
    fn copy_rows<'py>(&self, py: Python<'py>, role: &str, tenant: &str) -> Bound<'py, PyBytes> {
        let mut out = Vec::with_capacity(1024);
        self.copy_rows_into(role, tenant, &mut out);
        PyBytes::new(py, &out)
    }

    /// The scored rows: `(row_index, features_json, scores, decision)` each.
    fn rows(&self) -> Vec<(usize, String, Vec<f64>, Option<&str>)> {
        let s = &self.scored;
        (0..s.rows.len())
            .filter(|&i| s.rows.valid[i])
            .map(|i| {
                (
                    i,
                    self.endpoint.features_json(s, i),
                    s.row_scores(i).to_vec(),
                    self.decision_of(i),
                )
            })
            .collect()
    }

    /// Each row as hooks read it: `(row_index, values_json, scores, decision)`, the values
    /// as the caller sent them (a category as its string, missing as null), valid rows only.
    fn records(&self) -> Vec<(usize, String, Vec<f64>, Option<&str>)> {
        let s = &self.scored;
        (0..s.rows.len())
            .filter(|&i| s.rows.valid[i])
            .map(|i| {
                let values = self.endpoint.values_json(&s.rows, i);
                (i, values, s.row_scores(i).to_vec(), self.decision_of(i))
            })
            .collect()
    }

    /// The model's input rows (rows × features, NaN = missing), every row of the request.
    fn inputs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let rows = &self.scored.rows;
        Array2::from_shape_vec((rows.len(), rows.width), rows.values.clone())
            .map(|a| a.into_pyarray(py))
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// This decision with `decisions` (one per row of the request) as the final decisions,
    /// in place of the thresholds': what the log records after a decision hook.
    fn with_decisions(&self, decisions: Vec<Option<String>>) -> PyResult<Self> {
        if decisions.len() != self.scored.rows.len() {
            return Err(PyValueError::new_err(format!(
                "{} decisions for {} rows",
                decisions.len(),
                self.scored.rows.len()
            )));
        }
        Ok(Decision {
            endpoint: self.endpoint.clone(),
            scored: self.scored.clone(),
            decisions: Some(decisions),
        })
    }
}

/// A warning as a dict: `pointer`, `code`, `message`, `feature`, `row` and, when it has one,
/// `bound`.
pub fn warning_dict<'py>(py: Python<'py>, w: &core::Warning) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pointer", &w.pointer)?;
    d.set_item("code", w.code.as_str())?;
    d.set_item("message", &w.message)?;
    d.set_item("feature", &w.feature)?;
    d.set_item("row", w.row)?;
    if let Some(bound) = w.bound {
        d.set_item("bound", bound)?;
    }
    Ok(d)
}

impl Decision {
    pub fn copy_rows_into(&self, role: &str, tenant: &str, out: &mut Vec<u8>) {
        let decisions = self.decisions.as_deref();
        core::decision::copy_rows(&self.endpoint, &self.scored, role, tenant, decisions, out);
    }

    fn decision_of(&self, i: usize) -> Option<&str> {
        match &self.decisions {
            Some(d) => d.get(i).and_then(Option::as_deref),
            None => self.endpoint.decision(&self.scored, i),
        }
    }
}
