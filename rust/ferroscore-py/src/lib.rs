//! `ferroscore._core`: thin PyO3 bindings over ferroscore-core. Conversions and GIL release
//! only; every decision lives in the core crate.

mod endpoint;
mod errors;
mod gil;
mod model;
mod spool;
mod table;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "SCORE_BOUNDS",
        ferroscore_core::stats::SCORE_BOUNDS.to_vec(),
    )?;
    m.add_class::<model::Model>()?;
    m.add_class::<endpoint::Endpoint>()?;
    m.add_class::<endpoint::Decision>()?;
    m.add_class::<endpoint::Parsed>()?;
    m.add_class::<spool::Spool>()?;
    errors::register(m)
}
