//! A served model version: its compiled schema bound to its loaded model. Turns request bytes
//! into the response bytes and the decision to record, in one pass and without Python.

use crate::columns::{read_columns, Column};
use crate::error::{Code, FieldError, RequestError, SchemaError, Warning};
use crate::fit::check_fit;
use crate::model::{predict_parallel, Model, Output};
use crate::parse::json::Number;
use crate::parse::record::check;
use crate::parse::value::Scalar;
use crate::parse::{parse_request, Format, Limits, Rows};
use crate::schema::{Feature, Kind, Schema};
use crate::stats::{ScoreStats, StatsReading};
use crate::thresholds::Thresholds;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A value an enrichment hook supplies for one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Supplied {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// One reason code: a model column and its contribution to the row's margin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reason {
    pub column: usize,
    pub contribution: f64,
}

/// What one scored request produced: the answer to send and the facts to record.
#[derive(Debug, Clone)]
pub struct Scored {
    pub request_id: String,
    /// The model input rows, in model column order (NaN = missing), and which were valid.
    pub rows: Rows,
    pub n_outputs: usize,
    /// `n_outputs` values per row; NaN for rows a partial batch refused.
    pub scores: Vec<f64>,
    /// Per row, the top reasons by absolute contribution (empty unless asked for).
    pub reasons: Vec<Vec<Reason>>,
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
    thresholds: Thresholds,
    /// Per model column, the schema feature bound to it, for reasons.
    feature_of_column: Vec<Option<usize>>,
    /// Per categorical feature, its strings by category code, so a reason shows the string.
    labels: FxHashMap<usize, FxHashMap<u64, Box<str>>>,
    /// `,"model":"name","version":N,` — escaped once, copied per response.
    response_middle: Vec<u8>,
    /// Each feature's `"name":`, then each context field's, as JSON and then COPY text
    /// escape them: what every decision row of the log starts its values with.
    /// Each context field's `"name":`, JSON-escaped once for the decision log.
    context_keys: Vec<Vec<u8>>,
    /// What this version scored for callers (not offline), for the service's metrics.
    stats: ScoreStats,
    /// The class labels, as JSON strings, when they were given (see `with_classes`).
    classes: Option<Vec<Vec<u8>>>,
}

impl Endpoint {
    /// Binds a compiled schema and its thresholds to a model; refuses a schema that does not
    /// fit the model (see `fit`) and thresholds on a model with several outputs.
    pub fn new(
        name: &str,
        version: i64,
        model: Arc<dyn Model>,
        schema: Schema,
        limits: Limits,
        thresholds: Thresholds,
    ) -> Result<Self, SchemaError> {
        check_fit(&schema, model.as_ref())?;
        if !thresholds.is_empty() && model.n_outputs(Output::Response) != 1 {
            return Err(SchemaError::new(
                "",
                format!(
                    "thresholds decide on one score, but this model gives {} per row",
                    model.n_outputs(Output::Response)
                ),
            )
            .in_document("thresholds"));
        }
        let mut feature_of_column = vec![None; model.n_features()];
        let mut labels = FxHashMap::default();
        for (i, f) in schema.features().iter().enumerate() {
            feature_of_column[f.column] = Some(i);
            if let Kind::Categorical { codes, .. } = &f.kind {
                let by_code = codes
                    .iter()
                    .map(|(word, &code)| (code as u64, word.clone()));
                labels.insert(i, by_code.collect());
            }
        }
        // Serialising a str cannot fail.
        let name_json = serde_json::to_string(name).unwrap_or_default();
        let response_middle = format!(",\"model\":{name_json},\"version\":{version},").into_bytes();
        let stats = ScoreStats::new(thresholds.labels().count());
        let context_keys = schema
            .context()
            .iter()
            .map(|field| {
                let mut key = Vec::new();
                write_string(&mut key, &field.name);
                key.push(b':');
                key
            })
            .collect();
        Ok(Endpoint {
            name: name.to_owned(),
            version,
            model,
            schema,
            limits,
            thresholds,
            feature_of_column,
            labels,
            response_middle,
            context_keys,
            stats,
            classes: None,
        })
    }

    /// Names the classes the scores are of, so that answers give the predicted label and the
    /// probabilities by label: one label per output of a multiclass model, or two (the
    /// negative class, then the positive one) for a model with one probability.
    pub fn with_classes(mut self, classes: &[String]) -> Result<Self, SchemaError> {
        let n = self.model.n_outputs(Output::Response);
        if !(classes.len() == n && n > 1 || classes.len() == 2 && n == 1) {
            let want = if n == 1 { 2 } else { n };
            return Err(SchemaError::new(
                "",
                format!("{} labels for a model of {want} classes", classes.len()),
            )
            .in_document("labels"));
        }
        let mut seen = rustc_hash::FxHashSet::default();
        if let Some(dup) = classes.iter().find(|c| !seen.insert(c.as_str())) {
            return Err(
                SchemaError::new("", format!("the label {dup:?} is given twice"))
                    .in_document("labels"),
            );
        }
        let json = classes
            .iter()
            .map(|c| {
                let mut out = Vec::with_capacity(c.len() + 2);
                write_string(&mut out, c);
                out
            })
            .collect();
        self.classes = Some(json);
        Ok(self)
    }

    /// The class labels, when given.
    pub fn has_classes(&self) -> bool {
        self.classes.is_some()
    }

    /// What this version has scored for callers so far, and the decisions' labels.
    pub fn stats(&self) -> (StatsReading, Vec<&str>) {
        (self.stats.read(), self.thresholds.labels().collect())
    }

    /// The threshold decision of row `i`, if the version has thresholds and the row a score.
    pub fn decision(&self, scored: &Scored, i: usize) -> Option<&str> {
        match scored.row_scores(i) {
            [score] => self.thresholds.decide(*score),
            _ => None,
        }
    }

    pub fn has_thresholds(&self) -> bool {
        !self.thresholds.is_empty()
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
    /// `explain` is the caller's default count of reasons per row; the body's `"explain"`
    /// overrides it. `request_id` is generated (`new_request_id`) unless given, as for a shadow
    /// version scored under its champion's id.
    pub fn score(
        &self,
        body: &[u8],
        format: Format,
        partial: bool,
        explain: usize,
        request_id: Option<String>,
    ) -> Result<Scored, RequestError> {
        let rows = self.parse(body, format, partial)?;
        Ok(self.answer(rows, explain, request_id))
    }

    /// Scores parsed (and enriched) rows and writes the response: the second half of
    /// `score`. The rows' own `"explain"` overrides `explain`.
    pub fn answer(&self, rows: Rows, explain: usize, request_id: Option<String>) -> Scored {
        let explain = rows.explain.unwrap_or(explain);
        let mut scored = self.evaluate(rows, explain, request_id, false);
        scored.response = self.response(&scored);
        for i in (0..scored.rows.len()).filter(|&i| scored.rows.valid[i]) {
            let single = match scored.row_scores(i) {
                [x] => Some(*x),
                _ => None,
            };
            let rule = single.and_then(|x| self.thresholds.decide_index(x));
            self.stats.record(single, rule);
        }
        scored
    }

    /// The features an enrichment hook supplies, in model column order.
    pub fn enriched(&self) -> impl Iterator<Item = &Feature> {
        self.schema.features().iter().filter(|f| f.enriched)
    }

    /// Writes an enrichment hook's `values` of `feature`, one per valid row of `rows` in
    /// order, each checked by the feature's rules. The error says which value broke which
    /// rule, for the hook's author.
    pub fn enrich(
        &self,
        rows: &mut Rows,
        feature: &str,
        values: &[Supplied],
    ) -> Result<(), String> {
        let f = self
            .schema
            .lookup(feature)
            .filter(|f| f.enriched)
            .ok_or_else(|| {
                format!("\"{feature}\" is not a feature this model's enrichment supplies")
            })?;
        let valid: Vec<usize> = (0..rows.len()).filter(|&i| rows.valid[i]).collect();
        if values.len() != valid.len() {
            return Err(format!(
                "{} values of \"{feature}\" for {} rows",
                values.len(),
                valid.len()
            ));
        }
        let precision = self.model.precision();
        for (&i, value) in valid.iter().zip(values) {
            let scalar = match value {
                Supplied::Null => Scalar::Null,
                Supplied::Bool(b) => Scalar::Bool(*b),
                Supplied::Int(n) => Scalar::Num(Number::Int(i128::from(*n))),
                Supplied::Float(x) if x.is_finite() => Scalar::Num(Number::Float(*x)),
                Supplied::Float(x) => {
                    return Err(format!(
                        "\"{feature}\" of row {i}: {x} is not a number JSON can hold"
                    ))
                }
                Supplied::Str(w) => Scalar::Str(Cow::Borrowed(w)),
            };
            let x = check(f, &scalar, precision).map_err(|(code, m)| {
                format!("\"{feature}\" of row {i}: {} ({m})", code.as_str())
            })?;
            rows.values[i * rows.width + f.column] = x;
        }
        Ok(())
    }

    /// Reads a table's columns by this version's schema (see `columns::read_columns`).
    pub fn read_columns(
        &self,
        columns: &[Column<'_>],
        n_rows: usize,
        first_row: usize,
        max_errors: usize,
    ) -> Rows {
        let model = self.model.as_ref();
        read_columns(
            &self.schema,
            model.precision(),
            model.n_features(),
            columns,
            n_rows,
            first_row,
            max_errors,
        )
    }

    /// Scores rows already read, from a request or a table, with `explain` reasons per row;
    /// the response bytes are left empty. With `parallel`, a large batch is split over
    /// rayon's pool (offline scoring; the service keeps one request on one thread).
    pub fn evaluate(
        &self,
        rows: Rows,
        explain: usize,
        request_id: Option<String>,
        parallel: bool,
    ) -> Scored {
        let model = self.model.as_ref();
        let explain = explain.min(model.n_features());
        let n_outputs = model.n_outputs(Output::Response);
        let mut scores = vec![f64::NAN; rows.len() * n_outputs];
        predict_parallel(model, &rows.values, Output::Response, &mut scores, parallel);
        // Rows a partial batch refused were scored with the rest; their scores are not given.
        for (i, out) in scores.chunks_exact_mut(n_outputs.max(1)).enumerate() {
            if !rows.valid[i] {
                out.fill(f64::NAN);
            }
        }
        let request_id = request_id.unwrap_or_else(new_request_id);
        let scored_at_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let reasons = if explain == 0 {
            Vec::new()
        } else {
            self.reasons(&rows, explain, parallel)
        };
        Scored {
            request_id,
            rows,
            n_outputs,
            scores,
            reasons,
            response: Vec::new(),
            scored_at_ns,
        }
    }

    /// The threshold decision of row `i` as the index of its rule.
    pub fn decision_index(&self, scored: &Scored, i: usize) -> Option<usize> {
        match scored.row_scores(i) {
            [score] if scored.rows.valid[i] => self.thresholds.decide_index(*score),
            _ => None,
        }
    }

    fn response(&self, s: &Scored) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.response_middle.len() + 24 * s.scores.len());
        out.extend_from_slice(b"{\"request_id\":\"");
        out.extend_from_slice(s.request_id.as_bytes());
        out.push(b'"');
        if let Some(reference) = &s.rows.reference {
            out.extend_from_slice(b",\"id\":");
            write_string(&mut out, reference);
        }
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
            if self.has_thresholds() {
                write_per_row(&mut out, b",\"decisions\":[", s, |o, i| {
                    self.write_decision(o, s, i)
                });
            }
            if !s.reasons.is_empty() {
                write_per_row(&mut out, b",\"reasons\":[", s, |o, i| {
                    self.write_reasons(o, s, i)
                });
            }
            if let Some(classes) = &self.classes {
                write_per_row(&mut out, b",\"labels\":[", s, |o, i| {
                    match s.rows.valid[i] {
                        true => write_label(o, classes, s.row_scores(i)),
                        false => o.extend_from_slice(b"null"),
                    }
                });
                write_per_row(&mut out, b",\"probabilities\":[", s, |o, i| {
                    match s.rows.valid[i] {
                        true => write_probabilities(o, classes, s.row_scores(i)),
                        false => o.extend_from_slice(b"null"),
                    }
                });
            }
            if !s.rows.errors.is_empty() {
                out.extend_from_slice(b",\"errors\":");
                write_errors(&mut out, &s.rows.errors);
            }
        } else {
            out.extend_from_slice(b"\"score\":");
            write_outputs(&mut out, s.row_scores(0));
            if let Some(classes) = &self.classes {
                out.extend_from_slice(b",\"label\":");
                write_label(&mut out, classes, s.row_scores(0));
                out.extend_from_slice(b",\"probabilities\":");
                write_probabilities(&mut out, classes, s.row_scores(0));
            }
            if self.has_thresholds() {
                out.extend_from_slice(b",\"decision\":");
                self.write_decision(&mut out, s, 0);
            }
            if !s.reasons.is_empty() {
                out.extend_from_slice(b",\"reasons\":");
                self.write_reasons(&mut out, s, 0);
            }
        }
        if !s.rows.warnings.is_empty() {
            out.extend_from_slice(b",\"warnings\":");
            write_warnings(&mut out, &s.rows.warnings);
        }
        out.push(b'}');
        out
    }

    /// The top `k` columns of each valid row by absolute contribution to the margin of the
    /// row's leading output (the predicted class of a multiclass model).
    fn reasons(&self, rows: &Rows, k: usize, parallel: bool) -> Vec<Vec<Reason>> {
        use rayon::prelude::*;
        let model = self.model.as_ref();
        let groups = model.n_outputs(Output::Margin);
        let scratch = || {
            let contributions = vec![0.0; groups * (model.n_features() + 1)];
            (contributions, vec![0.0; groups])
        };
        let row = |(contributions, margin): &mut (Vec<f64>, Vec<f64>), i: usize| {
            if rows.valid[i] {
                self.row_reasons(rows.row(i), k, contributions, margin)
            } else {
                Vec::new()
            }
        };
        // TreeSHAP costs tens of microseconds a row: a few hundred rows repay the threads.
        if parallel && rows.len() >= 256 {
            (0..rows.len())
                .into_par_iter()
                .map_init(scratch, row)
                .collect()
        } else {
            let mut s = scratch();
            (0..rows.len()).map(|i| row(&mut s, i)).collect()
        }
    }

    fn row_reasons(
        &self,
        x: &[f64],
        k: usize,
        contributions: &mut [f64],
        margin: &mut [f64],
    ) -> Vec<Reason> {
        let model = self.model.as_ref();
        let n = model.n_features();
        if model.contributions(x, contributions).is_err() {
            return Vec::new();
        }
        model.predict_row(x, Output::Margin, margin);
        let group = (0..margin.len())
            .max_by(|&a, &b| margin[a].total_cmp(&margin[b]))
            .unwrap_or(0);
        let row = &contributions[group * (n + 1)..group * (n + 1) + n];
        let mut ranked: Vec<Reason> = row
            .iter()
            .enumerate()
            .filter(|(c, _)| self.feature_of_column[*c].is_some())
            .map(|(column, &contribution)| Reason {
                column,
                contribution,
            })
            .collect();
        ranked.sort_by(|a, b| {
            b.contribution
                .abs()
                .total_cmp(&a.contribution.abs())
                .then(a.column.cmp(&b.column))
        });
        ranked.truncate(k);
        ranked
    }

    fn write_decision(&self, out: &mut Vec<u8>, s: &Scored, i: usize) {
        match self.decision(s, i) {
            Some(d) if s.rows.valid[i] => write_string(out, d),
            _ => out.extend_from_slice(b"null"),
        }
    }

    fn write_reasons(&self, out: &mut Vec<u8>, s: &Scored, i: usize) {
        if !s.rows.valid[i] {
            out.extend_from_slice(b"null");
            return;
        }
        out.push(b'[');
        for (k, r) in s.reasons[i].iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            // Reasons are only built for bound columns.
            let f = self.feature_of_column[r.column].unwrap_or_default();
            out.extend_from_slice(b"{\"feature\":");
            write_string(out, &self.schema.features()[f].name);
            out.extend_from_slice(b",\"value\":");
            self.write_value(out, f, s.rows.row(i)[r.column]);
            out.extend_from_slice(b",\"contribution\":");
            write_number(out, r.contribution);
            out.push(b'}');
        }
        out.push(b']');
    }

    /// An input as the caller sent it: a categorical code as its string, a boolean as such.
    fn write_value(&self, out: &mut Vec<u8>, feature: usize, x: f64) {
        let kind = &self.schema.features()[feature].kind;
        match kind {
            _ if x.is_nan() => out.extend_from_slice(b"null"),
            Kind::Categorical { .. } => {
                match self.labels.get(&feature).and_then(|l| l.get(&(x as u64))) {
                    Some(word) => write_string(out, word),
                    None => write_number(out, x),
                }
            }
            Kind::Boolean { .. } => {
                out.extend_from_slice(if x != 0.0 { b"true" } else { b"false" })
            }
            // An integer feature shows as one: `12`, not `12.0`.
            Kind::Number { integer: true, .. } if x.abs() < 9.0e15 => {
                out.extend_from_slice((x as i64).to_string().as_bytes())
            }
            Kind::Number { .. } => write_number(out, x),
        }
    }

    /// The features of row `i` as the caller sent them: keyed by schema name, a category as
    /// its string, a boolean as such, missing as null. What hooks read.
    pub fn values_json(&self, rows: &Rows, i: usize) -> String {
        self.row_json(rows, i, |out, k, x| self.write_value(out, k, x))
    }

    /// The features of row `i` as a JSON object keyed by schema name (missing → null), as
    /// the model read them, and its context values.
    pub fn features_json(&self, scored: &Scored, i: usize) -> String {
        self.row_json(&scored.rows, i, |out, _, x| write_number(out, x))
    }

    /// Row `i`'s features for the decision log, as a binary COPY `float8[]` field: the model's
    /// inputs in the schema's feature order (that of their columns; a missing value NULL).
    /// The names are the version's, kept once in the registry.
    pub fn copy_features(&self, scored: &Scored, i: usize, out: &mut Vec<u8>) {
        let row = scored.rows.row(i);
        let values = self.schema.features().iter().map(|f| row[f.column]);
        crate::copy_binary::float8_array(out, values, true);
    }

    /// Row `i`'s context fields for the decision log, as a binary COPY `jsonb` field (an
    /// object of strings, null where absent), or NULL when the schema has none.
    pub fn copy_context(&self, scored: &Scored, i: usize, out: &mut Vec<u8>) {
        let rows = &scored.rows;
        if rows.n_context == 0 || self.context_keys.is_empty() {
            crate::copy_binary::null(out);
            return;
        }
        crate::copy_binary::jsonb(out, |out| {
            out.push(b'{');
            for (c, value) in rows.context_row(i).iter().enumerate() {
                if c > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&self.context_keys[c]);
                match value {
                    Some(s) => write_string(out, s),
                    None => out.extend_from_slice(b"null"),
                }
            }
            out.push(b'}');
        });
    }

    /// Row `i` as an object keyed by schema name, each feature's value written by `write`,
    /// then the context fields' strings.
    fn row_json(&self, rows: &Rows, i: usize, write: impl Fn(&mut Vec<u8>, usize, f64)) -> String {
        let row = rows.row(i);
        let mut out = Vec::with_capacity(24 * self.schema.features().len());
        out.push(b'{');
        for (k, f) in self.schema.features().iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_string(&mut out, &f.name);
            out.push(b':');
            write(&mut out, k, row[f.column]);
        }
        // A table's rows carry no context (its columns are kept as the table's own).
        let context = if rows.n_context == 0 {
            &[][..]
        } else {
            rows.context_row(i)
        };
        for (field, value) in self.schema.context().iter().zip(context) {
            if out.len() > 1 {
                out.push(b',');
            }
            write_string(&mut out, &field.name);
            out.push(b':');
            match value {
                Some(text) => write_string(&mut out, text),
                None => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'}');
        // Only JSON text was written: valid UTF-8.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// `head`, then one value per row of the batch written by `write`, then `]`.
fn write_per_row(
    out: &mut Vec<u8>,
    head: &[u8],
    s: &Scored,
    mut write: impl FnMut(&mut Vec<u8>, usize),
) {
    out.extend_from_slice(head);
    for i in 0..s.rows.len() {
        if i > 0 {
            out.push(b',');
        }
        write(out, i);
    }
    out.push(b']');
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
    write_list(out, errors, |o, e| {
        write_problem(o, &e.pointer, e.code, &e.message, None)
    });
}

/// The probability of each class: the scores of a multiclass model, or 1 - p and p of a
/// model with one probability.
fn class_probabilities(scores: &[f64]) -> impl Iterator<Item = f64> + '_ {
    let binary = match scores {
        [p] => Some([1.0 - p, *p]),
        _ => None,
    };
    let many = if binary.is_none() { scores } else { &[] };
    binary.into_iter().flatten().chain(many.iter().copied())
}

/// The most probable class's label (the first of equals); null when no score is a number.
fn write_label(out: &mut Vec<u8>, classes: &[Vec<u8>], scores: &[f64]) {
    let best = class_probabilities(scores)
        .enumerate()
        .filter(|(_, p)| !p.is_nan())
        .fold(None, |best: Option<(usize, f64)>, (i, p)| match best {
            Some((_, q)) if q >= p => best,
            _ => Some((i, p)),
        });
    match best {
        Some((i, _)) => out.extend_from_slice(&classes[i]),
        None => out.extend_from_slice(b"null"),
    }
}

/// `{"label": probability, ...}` in the classes' order.
fn write_probabilities(out: &mut Vec<u8>, classes: &[Vec<u8>], scores: &[f64]) {
    out.push(b'{');
    for (i, (label, p)) in classes.iter().zip(class_probabilities(scores)).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(label);
        out.push(b':');
        write_number(out, p);
    }
    out.push(b'}');
}

/// Each warning as `{"pointer", "code", "message"[, "bound"]}`.
pub fn write_warnings(out: &mut Vec<u8>, warnings: &[Warning]) {
    write_list(out, warnings, |o, w| {
        write_problem(o, &w.pointer, w.code, &w.message, w.bound)
    });
}

/// `[item, item, ...]`, each written by `write`.
fn write_list<T>(out: &mut Vec<u8>, items: &[T], mut write: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

/// `{"pointer", "code", "message"[, "bound"]}`: an error's or a warning's members.
fn write_problem(out: &mut Vec<u8>, pointer: &str, code: Code, message: &str, bound: Option<f64>) {
    out.extend_from_slice(b"{\"pointer\":");
    write_string(out, pointer);
    out.extend_from_slice(b",\"code\":\"");
    out.extend_from_slice(code.as_str().as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    write_string(out, message);
    if let Some(bound) = bound {
        out.extend_from_slice(b",\"bound\":");
        write_number(out, bound);
    }
    out.push(b'}');
}

/// A new request id: a UUID v7, whose first 48 bits are the time in milliseconds, so that ids
/// made one after the other sort one after the other. The decision log's unique key starts
/// with the request id: new rows then land at the right edge of its index, not on a random
/// page of it (1.3x fewer of PostgreSQL's cycles per row at a million rows, `bench/ingest.py`).
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
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
