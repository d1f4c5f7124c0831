//! Errors of the core: request errors carry a JSON Pointer and a stable code per problem;
//! schema and model errors are refused at registration, before any request sees them.

use std::fmt;

/// Stable machine codes. Callers match on these strings, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Syntax,
    TooLarge,
    TooDeep,
    Missing,
    Type,
    Minimum,
    Maximum,
    UnknownFeature,
    UnknownField,
    DuplicateKey,
    IntegerRange,
    Enum,
    MinLength,
    MaxLength,
    StringTooLong,
    TooManyFeatures,
    TooManyRows,
    EnrichmentOnly,
    NulCharacter,
    /// A warning, not a refusal: outside the range the model was trained on.
    OutOfTrainingRange,
    /// A warning, not a refusal: a string outside the vocabulary, scored as missing.
    UnknownCategory,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "syntax",
            Code::TooLarge => "too_large",
            Code::TooDeep => "too_deep",
            Code::Missing => "missing",
            Code::Type => "type",
            Code::Minimum => "minimum",
            Code::Maximum => "maximum",
            Code::UnknownFeature => "unknown_feature",
            Code::UnknownField => "unknown_field",
            Code::DuplicateKey => "duplicate_key",
            Code::IntegerRange => "integer_range",
            Code::Enum => "enum",
            Code::MinLength => "min_length",
            Code::MaxLength => "max_length",
            Code::StringTooLong => "string_too_long",
            Code::TooManyFeatures => "too_many_features",
            Code::TooManyRows => "too_many_rows",
            Code::EnrichmentOnly => "enrichment_only",
            Code::NulCharacter => "nul_character",
            Code::OutOfTrainingRange => "out_of_training_range",
            Code::UnknownCategory => "unknown_category",
        }
    }
}

/// One problem at one place in the request.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// RFC 6901 JSON Pointer into the request body.
    pub pointer: String,
    pub code: Code,
    pub message: String,
}

impl FieldError {
    #[cold]
    pub fn new(pointer: String, code: Code, message: impl Into<String>) -> Self {
        FieldError {
            pointer,
            code,
            message: message.into(),
        }
    }
}

/// Something about a value that was scored but deserves a look: the row is answered, and
/// the warning travels with its answer and its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    /// RFC 6901 JSON Pointer into the request body.
    pub pointer: String,
    pub code: Code,
    pub message: String,
    /// The feature the value is of.
    pub feature: String,
    /// The row of the request (0 for a single record).
    pub row: usize,
    /// The bound the value passed, for `out_of_training_range`.
    pub bound: Option<f64>,
}

/// Why a request body was refused. The variant decides the HTTP status class.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestError {
    /// Not JSON, or JSON that breaks RFC 8259 (400).
    Malformed(FieldError),
    /// A configured limit was exceeded (413): size, depth, string length, features, rows.
    TooLarge(FieldError),
    /// Well-formed JSON whose records break the schema (422); every problem, capped.
    Invalid(Vec<FieldError>),
}

impl RequestError {
    pub fn errors(&self) -> &[FieldError] {
        match self {
            RequestError::Malformed(e) | RequestError::TooLarge(e) => std::slice::from_ref(e),
            RequestError::Invalid(v) => v,
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors();
        let Some(e) = errors.first() else {
            return f.write_str("invalid request");
        };
        if !e.pointer.is_empty() {
            write!(f, "{}: ", e.pointer)?;
        }
        f.write_str(&e.message)?;
        match errors.len() {
            1 => Ok(()),
            n => write!(f, " (and {} more)", n - 1),
        }
    }
}

impl std::error::Error for RequestError {}

/// A registration document that cannot be served: the input schema (also when it does not
/// fit the model), or the thresholds. `pointer` points into `document`.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid {document} at \"{pointer}\": {message}")]
pub struct SchemaError {
    pub pointer: String,
    pub message: String,
    /// "schema" or "thresholds".
    pub document: &'static str,
}

impl SchemaError {
    #[cold]
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        SchemaError {
            pointer: pointer.into(),
            message: message.into(),
            document: "schema",
        }
    }

    pub fn in_document(mut self, document: &'static str) -> Self {
        self.document = document;
        self
    }
}

/// A model artifact that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("inconsistent model: {0}")]
    Inconsistent(String),
    /// A count or size the file declares is past a `LoadLimits` bound (`limit` names it).
    #[error("model too large: {message}")]
    TooLarge {
        field: String,
        limit: &'static str,
        message: String,
    },
}

impl ModelError {
    /// The same error, said of tree `t` of the model.
    #[cold]
    pub fn in_tree(self, t: usize) -> Self {
        match self {
            ModelError::Inconsistent(e) => ModelError::Inconsistent(format!("tree {t}: {e}")),
            ModelError::TooLarge {
                field,
                limit,
                message,
            } => ModelError::TooLarge {
                field: format!("tree {t}: {field}"),
                limit,
                message: format!("tree {t}: {message}"),
            },
            other => other,
        }
    }
}

/// Escapes one reference token for a JSON Pointer (RFC 6901 §3).
pub fn escape_token(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains(['~', '/']) {
        token.replace('~', "~0").replace('/', "~1").into()
    } else {
        token.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(escape_token("a/b~c"), "a~1b~0c");
        assert_eq!(escape_token("plain"), "plain");
    }
}
