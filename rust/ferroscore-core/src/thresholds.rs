//! A model version's decision thresholds: `[{"min": 0.8, "decision": "decline"}, {"min": 0.3,
//! "decision": "review"}, {"decision": "approve"}]`, compiled once at registration so a scored
//! row gets its decision by a few comparisons and no allocation.

use crate::error::SchemaError;
use serde_json::Value;

/// Ordered rules: the first whose `min` the score reaches decides; the last has no `min`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// `(min, decision)`, `min` strictly decreasing; `None` only last.
    rules: Vec<(Option<f64>, String)>,
}

impl Thresholds {
    /// Compiles the JSON text; errors point into it (`/1/min`) and name it as "thresholds".
    pub fn compile(text: &str) -> Result<Self, SchemaError> {
        let bad = |pointer: String, message: &str| {
            SchemaError::new(pointer, message).in_document("thresholds")
        };
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| bad(String::new(), &format!("not valid JSON: {e}")))?;
        let items = doc.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            bad(
                String::new(),
                "must be a non-empty list of {\"min\", \"decision\"} rules",
            )
        })?;
        let mut rules = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let obj = item.as_object().ok_or_else(|| {
                bad(
                    format!("/{i}"),
                    "a rule is an object {\"min\": number, \"decision\": string}",
                )
            })?;
            if let Some(k) = obj.keys().find(|k| *k != "min" && *k != "decision") {
                return Err(bad(
                    format!("/{i}/{k}"),
                    "a rule has only \"min\" and \"decision\"",
                ));
            }
            let decision = obj
                .get("decision")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty() && d.len() <= 64)
                .ok_or_else(|| {
                    bad(
                        format!("/{i}/decision"),
                        "every rule needs a decision: a string of 1 to 64 characters",
                    )
                })?;
            let min = match obj.get("min") {
                None => None,
                Some(v) => Some(
                    v.as_f64()
                        .filter(|m| m.is_finite())
                        .ok_or_else(|| bad(format!("/{i}/min"), "must be a number"))?,
                ),
            };
            let last = i + 1 == items.len();
            match (min, rules.last()) {
                (None, _) if !last => {
                    return Err(bad(
                        format!("/{i}/min"),
                        "only the last rule may omit \"min\" (it catches every other score)",
                    ))
                }
                (Some(_), _) if last => {
                    return Err(bad(
                        format!("/{i}"),
                        "the last rule must omit \"min\", so that every score gets a decision",
                    ))
                }
                (Some(m), Some((Some(prev), _))) if m >= *prev => {
                    return Err(bad(
                        format!("/{i}/min"),
                        "rules must be in strictly decreasing order of \"min\"",
                    ))
                }
                _ => {}
            }
            rules.push((min, decision.to_owned()));
        }
        Ok(Thresholds { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The decisions, in rule order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|(_, decision)| decision.as_str())
    }

    /// The decision for a score; NaN (an unscored row) has none.
    pub fn decide(&self, score: f64) -> Option<&str> {
        self.decide_index(score).map(|i| self.rules[i].1.as_str())
    }

    /// The decision for a score as the index of its rule.
    pub fn decide_index(&self, score: f64) -> Option<usize> {
        if score.is_nan() {
            return None;
        }
        self.rules
            .iter()
            .position(|(min, _)| min.is_none_or(|m| score >= m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reached_minimum_decides() {
        let t = Thresholds::compile(
            r#"[{"min": 0.8, "decision": "decline"}, {"min": 0.3, "decision": "review"}, {"decision": "approve"}]"#,
        )
        .expect("valid");
        let d = |x| t.decide(x);
        assert_eq!(
            [d(0.9), d(0.8), d(0.5), d(0.3), d(0.1), d(f64::NAN)],
            [
                Some("decline"),
                Some("decline"),
                Some("review"),
                Some("review"),
                Some("approve"),
                None
            ]
        );
    }

    #[test]
    fn refuses_rules_that_leave_a_score_without_decision() {
        let cases = [
            (r#"[]"#, ""),
            (r#"{"min": 1}"#, ""),
            (r#"[{"min": 0.5, "decision": "x"}]"#, "/0"),
            (r#"[{"decision": "x"}, {"decision": "y"}]"#, "/0/min"),
            (
                r#"[{"min": 0.2, "decision": "x"}, {"min": 0.5, "decision": "y"}, {"decision": "z"}]"#,
                "/1/min",
            ),
            (
                r#"[{"min": "a", "decision": "x"}, {"decision": "z"}]"#,
                "/0/min",
            ),
            (r#"[{"min": 0.2}, {"decision": "z"}]"#, "/0/decision"),
            (r#"[{"decision": "z", "max": 1}]"#, "/0/max"),
        ];
        for (text, pointer) in cases {
            let e = Thresholds::compile(text).expect_err(text);
            assert_eq!(
                (e.pointer.as_str(), e.document),
                (pointer, "thresholds"),
                "{text}"
            );
        }
    }
}
