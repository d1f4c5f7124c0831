//! `ferroscore._core`: thin PyO3 bindings over ferroscore-core. Conversions and GIL release
//! only; every decision lives in the core crate.

mod endpoint;
mod errors;
mod gil;
mod model;
mod spool;
mod table;

use pyo3::prelude::*;

/// A new request id, as the core makes one for a decision: a UUID v7 (time-ordered).
#[pyfunction]
fn new_request_id() -> String {
    ferroscore_core::endpoint::new_request_id()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "SCORE_BOUNDS",
        ferroscore_core::stats::SCORE_BOUNDS.to_vec(),
    )?;
    // What a decision's spooled rows are: binary COPY tuples of these columns.
    m.add("DECISION_COLUMNS", ferroscore_core::decision::COLUMNS)?;
    m.add("DECISION_FIELDS", ferroscore_core::decision::FIELDS)?;
    m.add(
        "COPY_HEADER",
        pyo3::types::PyBytes::new(m.py(), ferroscore_core::copy_binary::HEADER),
    )?;
    m.add(
        "COPY_TRAILER",
        pyo3::types::PyBytes::new(m.py(), ferroscore_core::copy_binary::TRAILER),
    )?;
    m.add_function(wrap_pyfunction!(new_request_id, m)?)?;
    m.add_class::<model::Model>()?;
    m.add_class::<endpoint::Endpoint>()?;
    m.add_class::<endpoint::Decision>()?;
    m.add_class::<endpoint::Parsed>()?;
    m.add_class::<spool::Spool>()?;
    errors::register(m)
}
