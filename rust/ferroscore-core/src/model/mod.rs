//! The model family: every format loads into something that scores one row of f64 features
//! (NaN = missing) into its outputs, honouring the reference library's arithmetic exactly.

pub mod lightgbm;
pub mod limits;
pub mod linear;
mod lockstep;
pub mod objective;
mod treeshap;
mod ubjson;
pub mod xgboost;

use crate::error::ModelError;
use crate::precision::Precision;
pub use limits::LoadLimits;
use limits::{Budget, Limit};
use std::sync::Arc;

/// Which scale the outputs are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// After the objective's link: probabilities, counts, class index.
    Response,
    /// Raw sum of trees plus the base margin.
    Margin,
}

/// How a model reads one input column: what registration checks a schema against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColumnUse {
    /// Some split compares the column with a threshold (or a linear term reads it).
    pub numeric: bool,
    /// Some split tests the column's value for membership in a category set.
    pub categorical: bool,
}

impl ColumnUse {
    pub fn is_used(self) -> bool {
        self.numeric || self.categorical
    }
}

/// A loaded model, shared read-only by every request.
pub trait Model: Send + Sync {
    /// Length of the input vector the model reads.
    fn n_features(&self) -> usize;
    /// Values produced per row on the given scale.
    fn n_outputs(&self, output: Output) -> usize;
    /// Feature names stored in the artifact, if any.
    fn feature_names(&self) -> Option<&[String]>;
    /// The artifact format, as `load` names it: "xgboost-json", "lightgbm-text".
    fn format(&self) -> &'static str;
    /// Whether NaN inputs mean "missing" to the model (trees) or would poison its arithmetic
    /// (linear models): then every input must be present or defaulted by the schema.
    fn handles_missing(&self) -> bool {
        true
    }
    /// The float type the model compares its inputs in.
    fn precision(&self) -> Precision;
    /// The training objective as the reference library names it.
    fn objective(&self) -> &str;
    /// Bytes the loaded model holds on the heap, and its tree nodes (leaves included).
    fn footprint(&self) -> (usize, usize);
    /// How each of the `n_features()` columns is read by the model.
    fn column_uses(&self) -> Vec<ColumnUse>;
    /// Exact TreeSHAP contributions of one row: per output group, one value per feature and
    /// the bias last (`n_outputs(Margin) × (n_features + 1)` values), summing to the margin.
    fn contributions(&self, _row: &[f64], _out: &mut [f64]) -> Result<(), ModelError> {
        Err(ModelError::Unsupported(format!(
            "contributions of {} models",
            self.format()
        )))
    }
    /// Scores `rows` (row-major, `n_features()` values each) into `out` (`n_outputs(output)`
    /// values per row). Models with a faster batch kernel override this.
    fn predict_rows(&self, rows: &[f64], output: Output, out: &mut [f64]) {
        let (n, k) = (self.n_features().max(1), self.n_outputs(output));
        for (row, dst) in rows.chunks_exact(n).zip(out.chunks_exact_mut(k)) {
            self.predict_row(row, output, dst);
        }
    }
    /// Scores one row; `row.len() >= n_features()` and `out.len() == n_outputs(output)`.
    fn predict_row(&self, row: &[f64], output: Output, out: &mut [f64]);
}

/// Loads a model artifact within the default `LoadLimits`, detecting its format when `format`
/// is `None`.
pub fn load(bytes: &[u8], format: Option<&str>) -> Result<Arc<dyn Model>, ModelError> {
    load_within(bytes, format, &LoadLimits::default())
}

/// Loads a model artifact, refusing any file that declares more than `limits` allow.
pub fn load_within(
    bytes: &[u8],
    format: Option<&str>,
    limits: &LoadLimits,
) -> Result<Arc<dyn Model>, ModelError> {
    let format = match format {
        Some(f) => f,
        None => detect(bytes)?,
    };
    let model: Arc<dyn Model> = match format {
        "xgboost-json" => Arc::new(xgboost::XgbModel::from_json(bytes, limits)?),
        "xgboost-ubjson" => {
            let json = ubjson::to_json_text(bytes, &mut Budget::new(limits))?;
            let mut model = xgboost::XgbModel::from_json(&json, limits)?;
            model.format = "xgboost-ubjson";
            Arc::new(model)
        }
        "lightgbm-text" => Arc::new(lightgbm::LgbModel::from_text(bytes, limits)?),
        linear::FORMAT => Arc::new(linear::LinearModel::from_json(bytes, limits)?),
        other => return Err(ModelError::Unsupported(format!("format \"{other}\""))),
    };
    let bytes = model.footprint().0;
    limits.check(Limit::Memory, "the loaded model", bytes as u128)?;
    Ok(model)
}

fn detect(bytes: &[u8]) -> Result<&'static str, ModelError> {
    let head = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match head {
        // UBJSON opens an object with '{' too, but its first key is a length marker.
        Some(b'{') if matches!(bytes.get(1), Some(b'i' | b'U' | b'I' | b'l' | b'L')) => {
            Ok("xgboost-ubjson")
        }
        Some(b'{') if declares_linear(bytes)? => Ok(linear::FORMAT),
        Some(b'{') => Ok("xgboost-json"),
        _ if bytes.starts_with(b"tree\n") || bytes.starts_with(b"tree\r\n") => Ok("lightgbm-text"),
        _ => Err(ModelError::Unsupported(
            "cannot tell the model format from its bytes".into(),
        )),
    }
}

/// Whether a JSON artifact declares `"format": "ferroscore-linear"` at its top level.
fn declares_linear(bytes: &[u8]) -> Result<bool, ModelError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        format: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(bytes)?;
    Ok(probe.format.as_deref() == Some(linear::FORMAT))
}

/// Batches at least this long are split across rayon's pool by `predict_parallel`; shorter
/// ones would spend more waking threads than scoring.
pub const PARALLEL_ABOVE_ROWS: usize = 4096;

/// `predict_rows`, split into chunks over rayon's global pool (sized by RAYON_NUM_THREADS,
/// all cores by default) when `parallel` and the batch is large.
pub fn predict_parallel(
    model: &dyn Model,
    rows: &[f64],
    output: Output,
    out: &mut [f64],
    parallel: bool,
) {
    use rayon::prelude::*;
    let (n, k) = (model.n_features().max(1), model.n_outputs(output));
    let n_rows = rows.len() / n;
    if !parallel || n_rows < PARALLEL_ABOVE_ROWS {
        return model.predict_rows(rows, output, out);
    }
    let chunk = n_rows.div_ceil(rayon::current_num_threads()).max(1024);
    rows.par_chunks(chunk * n)
        .zip(out.par_chunks_mut(chunk * k))
        .for_each(|(r, o)| model.predict_rows(r, output, o));
}

/// Softmax in float64, in place, shifted by the maximum (as LightGBM and scikit-learn do).
pub(crate) fn softmax(x: &mut [f64]) {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    x.iter_mut().for_each(|v| *v /= sum);
}
