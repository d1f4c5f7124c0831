//! Request bytes into the model's input rows, in one pass: the strict JSON reader (`json`),
//! what a parse produces and its limits (`rows`), the per-call state with its pointers,
//! problems and warnings (`ctx`), one value read or skipped (`value`), the features object of
//! a record checked against the schema (`record`), and the request's three shapes
//! (`request`). Each module imports only those before it in that list
//! (`tests/core/test_core_layout.py` checks it); nothing here knows models, responses or the
//! decision log, and no model module imports this one.

pub mod ctx;
pub mod json;
pub mod record;
pub mod request;
pub mod rows;
pub mod value;

pub use request::parse_request;
pub use rows::{Format, Limits, Rows, MAX_ERRORS, MAX_WARNINGS};
