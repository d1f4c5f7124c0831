//! When to release the GIL. Releasing and re-taking it cost 1.25 µs per call here (Python
//! timeit of `Endpoint.validate` on one 769-byte record: 3.70 µs with, 2.45 µs without), as
//! much as the work itself for one record. Small calls keep the GIL; large ones release it so
//! Robyn's other worker threads run meanwhile.

use pyo3::marker::Ungil;
use pyo3::Python;

/// Bodies at least this long (about five records) are parsed and scored without the GIL.
pub const DETACH_ABOVE_BYTES: usize = 4096;

/// Arrays of at least this many rows are scored without the GIL.
pub const DETACH_ABOVE_ROWS: usize = 8;

pub fn release_gil_if<T: Ungil, F: Ungil + FnOnce() -> T>(
    py: Python<'_>,
    release: bool,
    f: F,
) -> T {
    if release {
        py.detach(f)
    } else {
        f()
    }
}
