//! ferroscore-core: the request hot path of ferroscore in pure Rust — parse request bytes,
//! validate them against a model's compiled input schema, score exactly, write the response.
#![forbid(unsafe_code)]

pub mod endpoint;
pub mod error;
pub mod model;
pub mod record;
pub mod schema;

pub use endpoint::{Endpoint, Scored};
pub use error::{Code, FieldError, ModelError, RequestError, SchemaError};
pub use model::{load as load_model, Model, Output};
pub use record::Limits;
pub use schema::{compile_schema, Schema};
