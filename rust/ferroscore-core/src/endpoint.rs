//! A served model version: its compiled schema bound to its loaded model. Turns request bytes
//! into the response bytes and the decision to record, in one pass and without Python.

use crate::error::{FieldError, ModelError, RequestError};
use crate::model::{Model, Output};
use crate::request::{parse_request, Format, Limits, Rows};
use crate::schema::{Missing, Schema};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What one scored request produced: the answer to send and the facts to record.
#[derive(Debug, Clone)]
pub struct Scored {
    pub request_id: String,
    /// The model input rows, in model column order (NaN = missing), and which were valid.
    pub rows: Rows,
    pub n_outputs: usize,
    /// `n_outputs` values per row; NaN for rows a partial batch refused.
    pub scores: Vec<f64>,
    pub response: Vec<u8>,
    /// When the request was scored, in nanoseconds since the Unix epoch.
    pub scored_at_ns: u128,
}

impl Scored {
    pub fn row_scores(&self, i: usize) -> &[f64] {
        &self.scores[i * self.n_outputs..(i + 1) * self.n_outputs]
    }
}

pub struct Endpoint {
    name: String,
    version: i64,
    model: Arc<dyn Model>,
    schema: Schema,
    limits: Limits,
    /// `,"model":"name","version":N,` — escaped once, copied per response.
    response_middle: Vec<u8>,
}

impl Endpoint {
    pub fn new(
        name: &str,
        version: i64,
        model: Arc<dyn Model>,
        schema: Schema,
        limits: Limits,
    ) -> Result<Self, ModelError> {
        let n = model.n_features();
        if let Some(f) = schema.features().iter().find(|f| f.column >= n) {
            return Err(ModelError::Inconsistent(format!(
                "schema feature \"{}\" is bound to column {} but the model reads {n}",
                f.name, f.column
            )));
        }
        if let Some(names) = model.feature_names() {
            if let Some(f) = schema.features().iter().find(|f| names[f.column] != f.name) {
                return Err(ModelError::Inconsistent(format!(
                    "schema feature \"{}\" is bound to column {}, which the model calls \"{}\"",
                    f.name, f.column, names[f.column]
                )));
            }
        }
        if !model.handles_missing() {
            let filled = |c: usize| {
                schema.features().iter().any(|f| {
                    f.column == c
                        && (matches!(f.missing, Missing::Default(_)) || (f.required && !f.nullable))
                })
            };
            if let Some(c) = (0..n).find(|&c| !filled(c)) {
                return Err(ModelError::Inconsistent(format!(
                    "a {} model cannot score a missing input; column {c} needs a schema feature \
                     that is required and not nullable, or has a default",
                    model.format()
                )));
            }
        }
        let name_json = serde_json::to_string(name).map_err(ModelError::Json)?;
        let response_middle = format!(",\"model\":{name_json},\"version\":{version},").into_bytes();
        Ok(Endpoint {
            name: name.to_owned(),
            version,
            model,
            schema,
            limits,
            response_middle,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    pub fn model_arc(&self) -> Arc<dyn Model> {
        Arc::clone(&self.model)
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Parses and validates a request body without scoring it: the rows the model would read.
    pub fn parse(&self, body: &[u8], format: Format, partial: bool) -> Result<Rows, RequestError> {
        let model = self.model.as_ref();
        parse_request(
            body,
            &self.schema,
            &self.limits,
            model.precision(),
            model.n_features(),
            format,
            partial,
        )
    }

    /// Parses, validates and scores a request body: one record, a batch, or NDJSON lines.
    pub fn score(
        &self,
        body: &[u8],
        format: Format,
        partial: bool,
    ) -> Result<Scored, RequestError> {
        let model = self.model.as_ref();
        let rows = self.parse(body, format, partial)?;
        let n_outputs = model.n_outputs(Output::Response);
        let mut scores = vec![f64::NAN; rows.len() * n_outputs];
        model.predict_rows(&rows.values, Output::Response, &mut scores);
        // Rows a partial batch refused were scored with the rest; their scores are not given.
        for (i, out) in scores.chunks_exact_mut(n_outputs.max(1)).enumerate() {
            if !rows.valid[i] {
                out.fill(f64::NAN);
            }
        }
        let request_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let scored_at_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut scored = Scored {
            request_id,
            rows,
            n_outputs,
            scores,
            response: Vec::new(),
            scored_at_ns,
        };
        scored.response = self.response(&scored);
        Ok(scored)
    }

    fn response(&self, s: &Scored) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.response_middle.len() + 24 * s.scores.len());
        out.extend_from_slice(b"{\"request_id\":\"");
        out.extend_from_slice(s.request_id.as_bytes());
        out.push(b'"');
        out.extend_from_slice(&self.response_middle);
        if s.rows.batch {
            out.extend_from_slice(b"\"scores\":[");
            for i in 0..s.rows.len() {
                if i > 0 {
                    out.push(b',');
                }
                if s.rows.valid[i] {
                    write_outputs(&mut out, s.row_scores(i));
                } else {
                    out.extend_from_slice(b"null");
                }
            }
            out.push(b']');
            if !s.rows.errors.is_empty() {
                out.extend_from_slice(b",\"errors\":");
                write_errors(&mut out, &s.rows.errors);
            }
        } else {
            out.extend_from_slice(b"\"score\":");
            write_outputs(&mut out, s.row_scores(0));
        }
        out.push(b'}');
        out
    }

    /// The features of row `i` as a JSON object keyed by schema name (missing → null).
    pub fn features_json(&self, scored: &Scored, i: usize) -> String {
        let row = scored.rows.row(i);
        let mut out = Vec::with_capacity(24 * self.schema.features().len());
        out.push(b'{');
        for (k, f) in self.schema.features().iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_string(&mut out, &f.name);
            out.push(b':');
            write_number(&mut out, row[f.column]);
        }
        out.push(b'}');
        // Only JSON text was written: valid UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }
}

fn write_outputs(out: &mut Vec<u8>, values: &[f64]) {
    if let [single] = values {
        write_number(out, *single);
        return;
    }
    out.push(b'[');
    for (i, &x) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_number(out, x);
    }
    out.push(b']');
}

fn write_errors(out: &mut Vec<u8>, errors: &[FieldError]) {
    out.push(b'[');
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"pointer\":");
        write_string(out, &e.pointer);
        out.extend_from_slice(b",\"code\":\"");
        out.extend_from_slice(e.code.as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":");
        write_string(out, &e.message);
        out.push(b'}');
    }
    out.push(b']');
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a str into a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).unwrap_or_default();
}

/// Shortest round-tripping text of the f64; JSON has no NaN or infinity, so those are null.
pub fn write_number(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        let mut buf = ryu::Buffer::new();
        out.extend_from_slice(buf.format_finite(x).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}
