//! A served model version: its compiled schema bound to its loaded model. Turns request bytes
//! into the response bytes and the decision to record, in one pass and without Python.

use crate::error::{ModelError, RequestError};
use crate::model::{Model, Output};
use crate::record::{parse_record, Limits};
use crate::schema::Schema;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What one scored request produced: the answer to send and the facts to record.
#[derive(Debug, Clone)]
pub struct Scored {
    pub request_id: String,
    /// The model's input vector (NaN = missing), in model column order.
    pub features: Vec<f64>,
    pub scores: Vec<f64>,
    pub response: Vec<u8>,
    /// When the request was scored, in nanoseconds since the Unix epoch.
    pub scored_at_ns: u128,
}

pub struct Endpoint {
    name: String,
    version: i64,
    model: Arc<dyn Model>,
    schema: Schema,
    limits: Limits,
    /// `,"model":"name","version":N,"score":` — escaped once, copied per response.
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
        let name_json = serde_json::to_string(name).map_err(ModelError::Json)?;
        let response_middle =
            format!(",\"model\":{name_json},\"version\":{version},\"score\":").into_bytes();
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

    /// Parses, validates and scores one `{"features": {...}}` body.
    pub fn score(&self, body: &[u8]) -> Result<Scored, RequestError> {
        let mut features = vec![f64::NAN; self.model.n_features()];
        parse_record(body, &self.schema, &self.limits, &mut features)?;
        let mut scores = vec![0.0; self.model.n_outputs(Output::Response)];
        self.model
            .predict_row(&features, Output::Response, &mut scores);
        let request_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let response = self.response(&request_id, &scores);
        let scored_at_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Scored {
            request_id,
            features,
            scores,
            response,
            scored_at_ns,
        })
    }

    fn response(&self, request_id: &str, scores: &[f64]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.response_middle.len() + 24 * scores.len());
        out.extend_from_slice(b"{\"request_id\":\"");
        out.extend_from_slice(request_id.as_bytes());
        out.push(b'"');
        out.extend_from_slice(&self.response_middle);
        if let [single] = scores {
            write_number(&mut out, *single);
        } else {
            write_list(&mut out, scores.iter().copied());
        }
        out.push(b'}');
        out
    }

    /// The features of a scored row as a JSON object keyed by schema name (missing → null).
    pub fn features_json(&self, features: &[f64]) -> String {
        let mut out = Vec::with_capacity(24 * self.schema.features().len());
        out.push(b'{');
        for (i, f) in self.schema.features().iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            // Writing into a Vec cannot fail.
            serde_json::to_writer(&mut out, &f.name).unwrap_or_default();
            out.push(b':');
            write_number(&mut out, features[f.column]);
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }
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

fn write_list(out: &mut Vec<u8>, xs: impl Iterator<Item = f64>) {
    out.push(b'[');
    for (i, x) in xs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_number(out, x);
    }
    out.push(b']');
}
