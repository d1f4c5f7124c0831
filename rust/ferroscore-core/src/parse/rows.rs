//! What a parse produces: the rows of a request, ready to score, and the limits it was read
//! within.

use crate::error::{FieldError, Warning};

/// At most this many problems are reported for one request.
pub const MAX_ERRORS: usize = 50;
/// At most this many warnings are kept for one request (a batch of 10,000 rows could
/// otherwise carry one per value).
pub const MAX_WARNINGS: usize = 1000;

/// Hard limits, each enforced before work or memory proportional to the excess.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_depth: usize,
    pub max_string_bytes: usize,
    pub max_features: usize,
    pub max_rows: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_body_bytes: 1 << 20,
        max_depth: 32,
        max_string_bytes: 4096,
        max_features: 1024,
        max_rows: 10_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
}

/// The rows of a request, ready to score.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Values per row (the model's input width); NaN = missing.
    pub width: usize,
    /// Row after row, `width` values each.
    pub values: Vec<f64>,
    /// Row after row, one value per context field of the schema (None = absent or null).
    pub context: Vec<Option<Box<str>>>,
    /// How many context values each row has.
    pub n_context: usize,
    /// Whether each row passed validation (only a partial batch keeps invalid rows).
    pub valid: Vec<bool>,
    /// The problems found, capped at `MAX_ERRORS`; non-empty only for a partial batch.
    pub errors: Vec<FieldError>,
    /// What was scored but deserves a look (a value outside its training range, an unknown
    /// category scored as missing), capped at `MAX_WARNINGS`, in the order read.
    pub warnings: Vec<Warning>,
    /// A batch (rows or NDJSON) rather than one record: the response lists scores.
    pub batch: bool,
    /// The body's `"explain": k`: how many reasons each row asks for.
    pub explain: Option<usize>,
    /// The caller's own id for the request: the body's top-level `"id"` (a string or an
    /// integer), recorded with the decision and echoed in the response.
    pub reference: Option<String>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.valid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.valid.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.values[i * self.width..(i + 1) * self.width]
    }

    /// The context values of row `i`, in the schema's order.
    pub fn context_row(&self, i: usize) -> &[Option<Box<str>>] {
        &self.context[i * self.n_context..(i + 1) * self.n_context]
    }
}
