//! Linear and logistic models in ferroscore's own small JSON format:
//!
//! ```json
//! {"format": "ferroscore-linear", "link": "logistic", "features": ["a", "b"],
//!  "coefficients": {"a": 0.5, "b": -1.25}, "intercept": 0.1}
//! ```
//!
//! `link` is `identity`, `logistic` or `softmax`; with several outputs each coefficient and
//! the intercept are lists, one value per output. `ferroscore.models.linear.from_sklearn` writes it.

use super::limits::{self, Limit, LoadLimits};
use super::{ColumnUse, Model, Output};
use crate::error::ModelError;
use crate::precision::Precision;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

pub const FORMAT: &str = "ferroscore-linear";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    link: String,
    features: Vec<String>,
    coefficients: BTreeMap<String, Value>,
    intercept: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Identity,
    Logistic,
    Softmax,
}

#[derive(Debug)]
pub struct LinearModel {
    link: Link,
    objective: String,
    features: Vec<String>,
    /// Output-major: `coefficients[k * n_features + f]`.
    coefficients: Vec<f64>,
    intercept: Vec<f64>,
}

impl LinearModel {
    pub fn from_json(bytes: &[u8], limits: &LoadLimits) -> Result<Self, ModelError> {
        let file: File = serde_json::from_slice(bytes)?;
        if file.format != FORMAT {
            return Err(bad(format!(
                "format is \"{}\", not \"{FORMAT}\"",
                file.format
            )));
        }
        let link = match file.link.as_str() {
            "identity" => Link::Identity,
            "logistic" => Link::Logistic,
            "softmax" => Link::Softmax,
            other => {
                return Err(bad(format!(
                    "link \"{other}\" is not identity, logistic or softmax"
                )))
            }
        };
        let intercept = numbers(&file.intercept)
            .ok_or_else(|| bad("intercept must be a number or a list".into()))?;
        let k = intercept.len();
        if k == 0 || (link == Link::Softmax && k < 2) || (link == Link::Logistic && k != 1) {
            return Err(bad(format!(
                "{k} outputs do not fit the {} link",
                file.link
            )));
        }
        limits.check(Limit::Outputs, "intercept", k as u128)?;
        let n = file.features.len();
        limits.check(Limit::Features, "features", n as u128)?;
        limits.check(Limit::Memory, "coefficients", (k * n * 8) as u128)?;
        let mut coefficients = limits::filled(k * n, 0.0, "coefficients")?;
        for (f, name) in file.features.iter().enumerate() {
            let c = file
                .coefficients
                .get(name)
                .and_then(numbers)
                .ok_or_else(|| {
                    bad(format!(
                        "feature \"{name}\" needs a coefficient (a number, or a list per output)"
                    ))
                })?;
            if c.len() != k {
                return Err(bad(format!(
                    "feature \"{name}\" has {} coefficients for {k} outputs",
                    c.len()
                )));
            }
            for (out, &v) in c.iter().enumerate() {
                coefficients[out * n + f] = v;
            }
        }
        let names: std::collections::HashSet<&String> = file.features.iter().collect();
        if let Some(extra) = file.coefficients.keys().find(|c| !names.contains(c)) {
            return Err(bad(format!(
                "coefficient for \"{extra}\", which is not in features"
            )));
        }
        let objective = format!("linear:{}", file.link);
        Ok(LinearModel {
            link,
            objective,
            features: file.features,
            coefficients,
            intercept,
        })
    }
}

impl Model for LinearModel {
    fn n_features(&self) -> usize {
        self.features.len()
    }

    fn column_uses(&self) -> Vec<ColumnUse> {
        let used = ColumnUse {
            numeric: true,
            categorical: false,
        };
        vec![used; self.features.len()]
    }

    fn n_outputs(&self, _: Output) -> usize {
        self.intercept.len()
    }

    fn feature_names(&self) -> Option<&[String]> {
        Some(&self.features)
    }

    fn format(&self) -> &'static str {
        FORMAT
    }

    fn precision(&self) -> Precision {
        Precision::F64
    }

    fn footprint(&self) -> (usize, usize) {
        ((self.coefficients.len() + self.intercept.len()) * 8, 0)
    }

    fn handles_missing(&self) -> bool {
        false
    }

    fn objective(&self) -> &str {
        &self.objective
    }

    /// Each input's term `w·x` and the intercept last, per output: they sum to the margin,
    /// as xgboost's `pred_contribs` reports a linear booster.
    fn contributions(&self, row: &[f64], out: &mut [f64]) -> Result<(), ModelError> {
        let n = self.features.len();
        for (k, dst) in out.chunks_exact_mut(n + 1).enumerate() {
            let weights = &self.coefficients[k * n..(k + 1) * n];
            for ((d, w), x) in dst.iter_mut().zip(weights).zip(row) {
                *d = w * x;
            }
            dst[n] = self.intercept[k];
        }
        Ok(())
    }

    fn predict_row(&self, row: &[f64], output: Output, out: &mut [f64]) {
        let n = self.features.len();
        assert!(row.len() >= n, "row shorter than the model's features");
        for (k, o) in out.iter_mut().enumerate() {
            let weights = &self.coefficients[k * n..(k + 1) * n];
            *o = self.intercept[k] + weights.iter().zip(row).map(|(w, x)| w * x).sum::<f64>();
        }
        if output == Output::Margin {
            return;
        }
        match self.link {
            Link::Identity => {}
            Link::Logistic => out.iter_mut().for_each(|m| *m = 1.0 / (1.0 + (-*m).exp())),
            Link::Softmax => super::softmax(out),
        }
    }
}

/// A number, or a list of numbers.
fn numbers(v: &Value) -> Option<Vec<f64>> {
    match v {
        Value::Number(n) => n.as_f64().map(|x| vec![x]),
        Value::Array(items) => items.iter().map(Value::as_f64).collect(),
        _ => None,
    }
}

#[cold]
fn bad(msg: String) -> ModelError {
    ModelError::Inconsistent(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_logistic_and_softmax() {
        let m = LinearModel::from_json(
            br#"{"format": "ferroscore-linear", "link": "logistic", "features": ["a", "b"],
                 "coefficients": {"a": 0.5, "b": -1.0}, "intercept": 0.25}"#,
            &LoadLimits::default(),
        )
        .expect("model");
        let mut out = [0.0];
        m.predict_row(&[2.0, 1.0], Output::Margin, &mut out);
        assert_eq!(out[0], 0.25);
        m.predict_row(&[2.0, 1.0], Output::Response, &mut out);
        assert!((out[0] - 1.0 / (1.0 + (-0.25f64).exp())).abs() < 1e-15);
        let s = LinearModel::from_json(
            br#"{"format": "ferroscore-linear", "link": "softmax", "features": ["a"],
                 "coefficients": {"a": [1, 2, 3]}, "intercept": [0, 0, 0]}"#,
            &LoadLimits::default(),
        )
        .expect("model");
        let mut p = [0.0; 3];
        s.predict_row(&[1.0], Output::Response, &mut p);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12 && p[2] > p[1]);
    }

    #[test]
    fn refuses_inconsistent_files() {
        for bad in [
            r#"{"format": "ferroscore-linear", "link": "probit", "features": [], "coefficients": {}, "intercept": 0}"#,
            r#"{"format": "ferroscore-linear", "link": "identity", "features": ["a"], "coefficients": {}, "intercept": 0}"#,
            r#"{"format": "ferroscore-linear", "link": "identity", "features": ["a"], "coefficients": {"a": 1, "b": 2}, "intercept": 0}"#,
            r#"{"format": "ferroscore-linear", "link": "softmax", "features": ["a"], "coefficients": {"a": 1}, "intercept": 0}"#,
            r#"{"format": "ferroscore-linear", "link": "identity", "features": ["a"], "coefficients": {"a": [1, 2]}, "intercept": 0}"#,
        ] {
            assert!(
                LinearModel::from_json(bad.as_bytes(), &LoadLimits::default()).is_err(),
                "{bad}"
            );
        }
    }
}
