//! A table's columns, as `ferroscore.offline.files` splits them off Arrow batches into NumPy arrays,
//! borrowed in place as the core's `Column`s; and a scored table handed back as NumPy arrays.

use ferroscore_core::columns::{Cells, Column};
use ferroscore_core::{self as core};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex, PoisonError};

enum Held<'py> {
    Float(PyReadonlyArray1<'py, f64>),
    Int(PyReadonlyArray1<'py, i64>),
    Bool(PyReadonlyArray1<'py, bool>),
    Words(PyReadonlyArray1<'py, i32>, Vec<String>, bool),
    Other(String),
}

/// One column as Python passed it: `(name, cells, nulls)`.
pub struct HeldColumn<'py> {
    name: String,
    cells: Held<'py>,
    nulls: Option<PyReadonlyArray1<'py, bool>>,
}

/// Reads `(name, cells, nulls)`: `cells` is a float64, int64 or bool array, `(codes, words,
/// text)` (int32 codes into a list of strings, `text` when they are untyped), or the name of
/// a type no feature reads; `nulls` is a bool array or None.
pub fn hold<'py>(column: &Bound<'py, PyAny>) -> PyResult<HeldColumn<'py>> {
    let (name, cells, nulls): (
        String,
        Bound<'py, PyAny>,
        Option<PyReadonlyArray1<'py, bool>>,
    ) = column.extract()?;
    let cells = if let Ok(a) = cells.extract() {
        Held::Float(a)
    } else if let Ok(a) = cells.extract() {
        Held::Int(a)
    } else if let Ok(a) = cells.extract() {
        Held::Bool(a)
    } else if let Ok((codes, words, text)) = cells.extract() {
        Held::Words(codes, words, text)
    } else if let Ok(kind) = cells.extract() {
        Held::Other(kind)
    } else {
        return Err(PyTypeError::new_err(format!(
            "column {name:?}: cells must be a float64, int64 or bool array, \
             (codes, words, text) or a type name"
        )));
    };
    Ok(HeldColumn { name, cells, nulls })
}

impl HeldColumn<'_> {
    /// The column borrowed as the core reads it; every array must hold `n_rows` values in
    /// one contiguous run.
    pub fn borrow(&self, n_rows: usize) -> PyResult<Column<'_>> {
        let cells = match &self.cells {
            Held::Float(a) => Cells::Float(self.slice(a, n_rows)?),
            Held::Int(a) => Cells::Int(self.slice(a, n_rows)?),
            Held::Bool(a) => Cells::Bool(self.slice(a, n_rows)?),
            Held::Words(codes, words, text) => Cells::Words {
                codes: self.slice(codes, n_rows)?,
                words,
                text: *text,
            },
            Held::Other(kind) => Cells::Other(kind),
        };
        let nulls = match &self.nulls {
            Some(a) => Some(self.slice(a, n_rows)?),
            None => None,
        };
        Ok(Column {
            name: &self.name,
            cells,
            nulls,
        })
    }

    fn slice<'a, T: numpy::Element>(
        &self,
        a: &'a PyReadonlyArray1<'_, T>,
        n_rows: usize,
    ) -> PyResult<&'a [T]> {
        let s = a.as_slice().map_err(|_| {
            PyValueError::new_err(format!("column {:?} is not contiguous", self.name))
        })?;
        s.get(..n_rows).ok_or_else(|| {
            PyValueError::new_err(format!(
                "column {:?} has {} values, not {n_rows}",
                self.name,
                s.len()
            ))
        })
    }
}

/// What `Endpoint.score_table` returns: scores (rows × outputs, NaN when refused), whether
/// each row is valid, each row's decision as its rule's index (-1: none), the model columns
/// of its top reasons and their contributions (rows × k; -1 and NaN past the last), the
/// problems found as `(pointer, code, message)`, and the warnings as `(row, feature, code,
/// bound)` (rows numbered from the table's first).
pub type ScoredTable<'py> = (
    Bound<'py, PyArray2<f64>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray2<i32>>,
    Bound<'py, PyArray2<f64>>,
    Vec<(String, &'static str, String)>,
    Vec<(usize, String, &'static str, Option<f64>)>,
);

pub fn scored_table<'py>(
    py: Python<'py>,
    endpoint: &core::Endpoint,
    scored: core::Scored,
    explain: usize,
) -> PyResult<ScoredTable<'py>> {
    let (n, k) = (scored.rows.len(), explain);
    let mut columns = Array2::from_elem((n, k), -1_i32);
    let mut contributions = Array2::from_elem((n, k), f64::NAN);
    for (i, reasons) in scored.reasons.iter().enumerate() {
        for (j, r) in reasons.iter().enumerate().take(k) {
            columns[(i, j)] = i32::try_from(r.column).unwrap_or(-1);
            contributions[(i, j)] = r.contribution;
        }
    }
    let decisions: Vec<i32> = (0..n)
        .map(|i| {
            endpoint
                .decision_index(&scored, i)
                .and_then(|d| i32::try_from(d).ok())
                .unwrap_or(-1)
        })
        .collect();
    let errors = scored
        .rows
        .errors
        .into_iter()
        .map(|e| (e.pointer, e.code.as_str(), e.message))
        .collect();
    let warnings = scored
        .rows
        .warnings
        .into_iter()
        .map(|w| (w.row, w.feature, w.code.as_str(), w.bound))
        .collect();
    let scores = Array2::from_shape_vec((n, scored.n_outputs), scored.scores)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((
        scores.into_pyarray(py),
        scored.rows.valid.into_pyarray(py),
        decisions.into_pyarray(py),
        columns.into_pyarray(py),
        contributions.into_pyarray(py),
        errors,
        warnings,
    ))
}

/// A thread pool of `n` threads, built once per size and kept: `--threads` of the offline
/// scorer, independent of the global pool whose size is fixed at its first use.
pub fn pool(n: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, p)) = pools.iter().find(|(size, _)| *size == n) {
        return Ok(Arc::clone(p));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map(Arc::new)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    pools.push((n, Arc::clone(&p)));
    Ok(p)
}
