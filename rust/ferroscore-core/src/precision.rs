//! The float type a model reads its inputs as: what a request's integers must be exactly
//! representable in. Models and the request parser both need it; neither owns it.

/// The float type the model reads; integers it cannot hold exactly are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    pub fn holds_exactly(self, i: i128) -> bool {
        match self {
            Precision::F32 => (i as f32) as i128 == i,
            Precision::F64 => (i as f64) as i128 == i,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "float32",
            Precision::F64 => "float64",
        }
    }
}
