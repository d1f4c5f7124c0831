//! ferroscore-core: the request hot path of ferroscore in pure Rust — parse request bytes,
//! validate them against a model's compiled input schema, score exactly, write the response.
#![forbid(unsafe_code)]

pub mod columns;
pub mod copy_binary;
pub mod decision;
pub mod endpoint;
pub mod error;
mod fit;
pub mod model;
pub mod parse;
pub mod precision;
pub mod schema;
pub mod spool;
pub mod stats;
pub mod thresholds;

pub use endpoint::{Endpoint, Scored, Supplied};
pub use error::{Code, FieldError, ModelError, RequestError, SchemaError, Warning};
pub use model::{load as load_model, predict_parallel, Model, Output};
pub use parse::{parse_request, Format, Limits, Rows};
pub use precision::Precision;
pub use schema::{compile_schema, Schema};
pub use thresholds::Thresholds;
