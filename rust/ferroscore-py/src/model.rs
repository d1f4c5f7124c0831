//! `Model`: a loaded artifact scored from NumPy arrays with the GIL released.

use crate::errors::model_error;
use crate::gil::{release_gil_if, DETACH_ABOVE_ROWS};
use ferroscore_core::{self as core, Output};
use numpy::ndarray::{Array2, ArrayView2, Axis};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use std::path::PathBuf;
use std::sync::Arc;

#[pyclass(module = "ferroscore._core", frozen)]
pub struct Model {
    pub inner: Arc<dyn core::Model>,
    /// The artifact it was loaded from: what a pickle carries.
    pub source: Arc<[u8]>,
}

fn output_kind(output: &str) -> PyResult<Output> {
    match output {
        "response" => Ok(Output::Response),
        "margin" => Ok(Output::Margin),
        other => Err(PyValueError::new_err(format!(
            "output must be \"response\" or \"margin\", not {other:?}"
        ))),
    }
}

/// Applies `f` to every row of `x` (widened to f64), writing `k` values per row.
fn map_rows<T: Copy + Into<f64>>(
    n_features: usize,
    x: ArrayView2<'_, T>,
    k: usize,
    f: impl Fn(&[f64], &mut [f64]) -> Result<(), core::ModelError>,
) -> Result<Array2<f64>, core::ModelError> {
    let mut out = Array2::<f64>::zeros((x.nrows(), k));
    let mut row = vec![f64::NAN; n_features];
    for (src, mut dst) in x.axis_iter(Axis(0)).zip(out.axis_iter_mut(Axis(0))) {
        for (r, &v) in row.iter_mut().zip(src.iter()) {
            *r = v.into();
        }
        // Rows of a freshly allocated C-order array are contiguous.
        f(&row, dst.as_slice_mut().expect("contiguous output row"))?;
    }
    Ok(out)
}

/// Calls `f` with the rows of `x` as one row-major float64 slice: borrowed from the array
/// when it already is one (no copy), else converted once.
fn with_rows<R>(
    x: &Bound<'_, PyAny>,
    n_features: usize,
    f: impl FnOnce(&[f64]) -> R,
) -> PyResult<R> {
    if let Ok(a) = x.cast::<PyArray2<f64>>() {
        check_width(a.shape()[1], n_features)?;
        // A few rows are copied: cheaper than registering a borrow of the array.
        if a.shape()[0] < DETACH_ABOVE_ROWS {
            if let Ok(rows) = a.to_vec() {
                return Ok(f(&rows));
            }
        }
        let a = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        return Ok(match a.as_slice() {
            Ok(rows) => f(rows),
            Err(_) => f(&a.as_array().iter().copied().collect::<Vec<_>>()),
        });
    }
    if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
        check_width(a.as_array().ncols(), n_features)?;
        return Ok(f(&a
            .as_array()
            .iter()
            .map(|&v| f64::from(v))
            .collect::<Vec<_>>()));
    }
    Err(PyValueError::new_err(
        "X must be a 2-D float64 or float32 NumPy array",
    ))
}

/// `map_rows` over a float64 or float32 NumPy array, with the GIL released for many rows.
fn over_array(
    py: Python<'_>,
    x: &Bound<'_, PyAny>,
    n_features: usize,
    k: usize,
    f: impl Fn(&[f64], &mut [f64]) -> Result<(), core::ModelError> + Sync,
) -> PyResult<Array2<f64>> {
    let out = if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f64>>() {
        let view = a.as_array();
        check_width(view.ncols(), n_features)?;
        let big = view.nrows() >= DETACH_ABOVE_ROWS;
        release_gil_if(py, big, || map_rows(n_features, view, k, &f))
    } else if let Ok(a) = x.extract::<PyReadonlyArray2<'_, f32>>() {
        let view = a.as_array();
        check_width(view.ncols(), n_features)?;
        let big = view.nrows() >= DETACH_ABOVE_ROWS;
        release_gil_if(py, big, || map_rows(n_features, view, k, &f))
    } else {
        return Err(PyValueError::new_err(
            "X must be a 2-D float64 or float32 NumPy array",
        ));
    };
    out.map_err(model_error)
}

#[pymethods]
impl Model {
    /// Loads a model from its bytes or from a file path; `format` is detected when omitted.
    /// `limits` bounds what the file may declare (`features`, `outputs`, `trees`, `nodes`,
    /// `depth`, `categories`, `memory_bytes`); the defaults stand for any left out.
    #[staticmethod]
    #[pyo3(signature = (source, format=None, limits=None))]
    fn load(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        format: Option<&str>,
        limits: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let limits = load_limits(limits)?;
        let data: Arc<[u8]> = if let Ok(bytes) = source.cast::<PyBytes>() {
            bytes.as_bytes().into()
        } else {
            let path: PathBuf = source.extract().map_err(|_| {
                PyTypeError::new_err("source must be bytes or a path to a model file")
            })?;
            py.detach(|| std::fs::read(&path))?.into()
        };
        let inner = py.detach(|| core::model::load_within(&data, format, &limits));
        Ok(Model {
            inner: inner.map_err(model_error)?,
            source: data,
        })
    }

    /// The artifact's bytes, as loaded.
    #[getter]
    fn artifact<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.source)
    }

    /// Pickles as the artifact's bytes; `ferroscore.models.pickling` rebuilds each artifact once per
    /// process, however many tasks carry it.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let restore = py
            .import("ferroscore.models.pickling")?
            .getattr("restore_model")?;
        Ok((restore, (self.artifact(py),)))
    }

    #[getter]
    fn n_features(&self) -> usize {
        self.inner.n_features()
    }

    #[getter]
    fn n_outputs(&self) -> usize {
        self.inner.n_outputs(Output::Response)
    }

    /// The artifact format: "xgboost-json" or "lightgbm-text".
    #[getter]
    fn format(&self) -> &'static str {
        self.inner.format()
    }

    /// Bytes the loaded model holds in memory.
    #[getter]
    fn memory_bytes(&self) -> usize {
        self.inner.footprint().0
    }

    /// Tree nodes, leaves included (0 for linear models).
    #[getter]
    fn n_nodes(&self) -> usize {
        self.inner.footprint().1
    }

    #[getter]
    fn objective(&self) -> &str {
        self.inner.objective()
    }

    #[getter]
    fn feature_names(&self) -> Option<Vec<String>> {
        self.inner.feature_names().map(<[String]>::to_vec)
    }

    /// How the model reads each input column: "numeric", "categorical", "both" or "unused".
    #[getter]
    fn column_kinds(&self) -> Vec<&'static str> {
        let kind = |u: core::model::ColumnUse| match (u.numeric, u.categorical) {
            (true, true) => "both",
            (true, false) => "numeric",
            (false, true) => "categorical",
            (false, false) => "unused",
        };
        self.inner.column_uses().into_iter().map(kind).collect()
    }

    /// Scores a 2-D float64 or float32 array (NaN = missing). One output per row gives a 1-D
    /// result, as xgboost does; several give shape (rows, outputs).
    #[pyo3(signature = (x, output="response", parallel=true))]
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        output: &str,
        parallel: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let output = output_kind(output)?;
        let model = self.inner.as_ref();
        let (n, k) = (model.n_features(), model.n_outputs(output));
        let (n_rows, out) = with_rows(x, n, |rows| {
            let n_rows = rows.len() / n.max(1);
            let mut out = vec![0.0; n_rows * k];
            let big = n_rows >= DETACH_ABOVE_ROWS;
            release_gil_if(py, big, || {
                core::predict_parallel(model, rows, output, &mut out, parallel)
            });
            (n_rows, out)
        })?;
        // Copied into an array NumPy allocates: cheaper for a few rows than handing NumPy the
        // Vec, which takes a Python object to own it.
        let flat = PyArray1::from_slice(py, &out);
        if k == 1 {
            Ok(flat.into_any())
        } else {
            Ok(flat.reshape([n_rows, k])?.into_any())
        }
    }

    /// Exact TreeSHAP contributions, laid out as xgboost's `pred_contribs`: shape
    /// (rows, features + 1), or (rows, outputs, features + 1) for several outputs; the bias
    /// is last and each row sums to the margin.
    fn contributions<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f64>>> {
        let model = self.inner.as_ref();
        let (groups, width) = (model.n_outputs(Output::Margin), model.n_features() + 1);
        let out = over_array(py, x, model.n_features(), groups * width, |row, dst| {
            model.contributions(row, dst)
        })?;
        let rows = out.nrows();
        let out = if groups == 1 {
            out.into_dyn()
        } else {
            out.into_shape_with_order((rows, groups, width))
                .map_err(|e| PyValueError::new_err(e.to_string()))?
                .into_dyn()
        };
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "Model(objective={:?}, n_features={}, n_outputs={})",
            self.inner.objective(),
            self.inner.n_features(),
            self.inner.n_outputs(Output::Response)
        )
    }
}

/// `LoadLimits` from a dict of some of its fields; an unknown name is a TypeError.
fn load_limits(given: Option<&Bound<'_, PyDict>>) -> PyResult<core::model::LoadLimits> {
    let mut limits = core::model::LoadLimits::default();
    for (key, value) in given.into_iter().flat_map(|d| d.iter()) {
        let value: usize = value.extract()?;
        let slot = match key.extract::<String>()?.as_str() {
            "features" => &mut limits.features,
            "outputs" => &mut limits.outputs,
            "trees" => &mut limits.trees,
            "nodes" => &mut limits.nodes,
            "depth" => &mut limits.depth,
            "categories" => &mut limits.categories,
            "memory_bytes" => &mut limits.memory_bytes,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unknown model limit {other:?}"
                )))
            }
        };
        *slot = value;
    }
    Ok(limits)
}

fn check_width(width: usize, n: usize) -> PyResult<()> {
    if width == n {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "X has {width} columns; the model reads {n} features"
        )))
    }
}
