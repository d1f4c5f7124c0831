//! XGBoost objectives: how `base_score` becomes a margin at load and how margins become
//! responses, in float32 exactly as xgboost computes them.

use crate::error::ModelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// binary:logistic, reg:logistic.
    Logistic,
    /// count:poisson, reg:gamma, reg:tweedie, survival:*.
    Exp,
    /// multi:softprob.
    Softmax,
    /// multi:softmax: the index of the largest margin.
    ArgMax,
    /// binary:hinge.
    Hinge,
    /// Everything whose response is the margin itself.
    Identity,
}

impl Link {
    pub fn of(objective: &str) -> Result<Link, ModelError> {
        Ok(match objective {
            "binary:logistic" | "reg:logistic" => Link::Logistic,
            "count:poisson" | "reg:gamma" | "reg:tweedie" | "survival:cox" | "survival:aft" => {
                Link::Exp
            }
            "multi:softprob" => Link::Softmax,
            "multi:softmax" => Link::ArgMax,
            "binary:hinge" => Link::Hinge,
            "reg:squarederror"
            | "reg:linear"
            | "reg:squaredlogerror"
            | "reg:pseudohubererror"
            | "reg:absoluteerror"
            | "reg:quantileerror"
            | "binary:logitraw"
            | "rank:pairwise"
            | "rank:ndcg"
            | "rank:map" => Link::Identity,
            other => return Err(ModelError::Unsupported(format!("objective \"{other}\""))),
        })
    }

    /// The stored prediction-scale `base_score` as a margin.
    pub fn base_margin(self, base_score: f32) -> f32 {
        match self {
            Link::Logistic => {
                let p = base_score.clamp(1e-6, 1.0 - 1e-6);
                -(1.0 / p - 1.0).ln()
            }
            Link::Exp => base_score.ln(),
            _ => base_score,
        }
    }

    pub fn n_responses(self, n_groups: usize) -> usize {
        match self {
            Link::ArgMax => 1,
            _ => n_groups,
        }
    }

    /// Turns the margins of one row into responses, in place where the shapes agree.
    pub fn respond(self, margins: &[f32], out: &mut [f64]) {
        match self {
            Link::Logistic => map(margins, out, |m| 1.0 / ((-m).min(88.7).exp() + 1.0)),
            Link::Exp => map(margins, out, f32::exp),
            Link::Hinge => map(margins, out, |m| if m > 0.0 { 1.0 } else { 0.0 }),
            Link::Identity => map(margins, out, |m| m),
            Link::Softmax => {
                let max = margins.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                // xgboost sums the exponentials in double, then divides in float.
                let sum: f64 = margins.iter().map(|&m| f64::from((m - max).exp())).sum();
                map(margins, out, |m| (m - max).exp() / sum as f32);
            }
            Link::ArgMax => {
                let mut best = 0;
                for (k, &m) in margins.iter().enumerate() {
                    if m > margins[best] {
                        best = k;
                    }
                }
                out[0] = best as f64;
            }
        }
    }
}

fn map(margins: &[f32], out: &mut [f64], f: impl Fn(f32) -> f32) {
    for (o, &m) in out.iter_mut().zip(margins) {
        *o = f64::from(f(m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_base_score_round_trips() {
        let m = Link::Logistic.base_margin(0.5);
        assert_eq!(m, 0.0);
        let mut out = [0.0];
        Link::Logistic.respond(&[Link::Logistic.base_margin(0.25)], &mut out);
        assert!((out[0] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn softmax_sums_to_one_and_argmax_takes_the_first_max() {
        let mut p = [0.0; 3];
        Link::Softmax.respond(&[1.0, 2.0, 2.0], &mut p);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        let mut k = [0.0];
        Link::ArgMax.respond(&[1.0, 2.0, 2.0], &mut k);
        assert_eq!(k[0], 1.0);
    }

    #[test]
    fn unknown_objectives_are_refused() {
        assert!(Link::of("reg:mystery").is_err());
    }
}
