//! What a model file may declare. A model file is untrusted input: every count it states is
//! checked here before anything is sized by it, and memory sized by it is reserved fallibly,
//! so no file can make a loader abort the process on a failed allocation or recurse past a
//! depth the stack can take.

use crate::error::ModelError;

/// Bounds on what one model may hold; each is a setting of the service
/// (`FERROSCORE_MODEL_MAX_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Input features (columns) the model reads.
    pub features: usize,
    /// Outputs per row: classes, targets, trees per iteration.
    pub outputs: usize,
    /// Trees in the ensemble.
    pub trees: usize,
    /// Nodes over every tree, leaves included.
    pub nodes: usize,
    /// Splits on the longest root-to-leaf path of any tree: TreeSHAP's recursion and its
    /// path buffers (depth² × 32 bytes) grow with it.
    pub depth: usize,
    /// The largest category code a categorical split may test.
    pub categories: usize,
    /// Bytes the loader may take for the model, decoded and laid out.
    pub memory_bytes: usize,
}

impl Default for LoadLimits {
    /// Past what any model trained for online scoring holds: xgboost's default depth is 6 and
    /// LightGBM's 31 leaves rarely pass depth 20.
    fn default() -> Self {
        LoadLimits {
            features: 65_536,
            outputs: 10_000,
            trees: 100_000,
            nodes: 50_000_000,
            depth: 512,
            categories: 1 << 20,
            memory_bytes: 4 << 30,
        }
    }
}

/// Which limit a count is checked against, named as the setting's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Features,
    Outputs,
    Trees,
    Nodes,
    Depth,
    Categories,
    Memory,
}

impl Limit {
    /// The limit's name, as `LoadLimits`' field and the setting
    /// `FERROSCORE_MODEL_MAX_<NAME>` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Features => "features",
            Limit::Outputs => "outputs",
            Limit::Trees => "trees",
            Limit::Nodes => "nodes",
            Limit::Depth => "depth",
            Limit::Categories => "categories",
            Limit::Memory => "memory_bytes",
        }
    }
}

impl Limit {
    fn noun(self) -> &'static str {
        match self {
            Limit::Features => "features",
            Limit::Outputs => "outputs",
            Limit::Trees => "trees",
            Limit::Nodes => "nodes",
            Limit::Depth => "levels",
            Limit::Categories => "as its largest category code",
            Limit::Memory => "bytes",
        }
    }
}

impl LoadLimits {
    fn value(&self, limit: Limit) -> usize {
        match limit {
            Limit::Features => self.features,
            Limit::Outputs => self.outputs,
            Limit::Trees => self.trees,
            Limit::Nodes => self.nodes,
            Limit::Depth => self.depth,
            Limit::Categories => self.categories,
            Limit::Memory => self.memory_bytes,
        }
    }

    /// Refuses `declared` past `limit`; `field` names where the file declares it.
    pub fn check(&self, limit: Limit, field: &str, declared: u128) -> Result<(), ModelError> {
        let max = self.value(limit);
        if declared <= max as u128 {
            return Ok(());
        }
        Err(too_large(limit, field, declared, max))
    }
}

#[cold]
fn too_large(limit: Limit, field: &str, declared: u128, max: usize) -> ModelError {
    ModelError::TooLarge {
        field: field.to_owned(),
        limit: limit.name(),
        message: format!(
            "{field} gives {declared} {}, past the limit of {max}",
            limit.noun()
        ),
    }
}

/// A vector for `n` values, reserved fallibly: a refusal, not an abort, when the memory is
/// not there.
pub fn reserve<T>(n: usize, field: &str) -> Result<Vec<T>, ModelError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        too_large(
            Limit::Memory,
            field,
            (n as u128) * std::mem::size_of::<T>() as u128,
            0,
        )
    })?;
    Ok(v)
}

/// `n` copies of `value`, reserved fallibly.
pub fn filled<T: Clone>(n: usize, value: T, field: &str) -> Result<Vec<T>, ModelError> {
    let mut v = reserve(n, field)?;
    v.resize(n, value);
    Ok(v)
}

/// Bytes charged against `LoadLimits::memory_bytes` while a model is decoded.
#[derive(Debug)]
pub struct Budget {
    left: usize,
    max: usize,
}

impl Budget {
    pub fn new(limits: &LoadLimits) -> Self {
        Budget {
            left: limits.memory_bytes,
            max: limits.memory_bytes,
        }
    }

    /// Takes `bytes` from the budget, or refuses the model naming `field`.
    pub fn charge(&mut self, bytes: usize, field: &str) -> Result<(), ModelError> {
        match self.left.checked_sub(bytes) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(too_large(
                Limit::Memory,
                field,
                (self.max - self.left) as u128 + bytes as u128,
                self.max,
            )),
        }
    }
}

/// Refuses a number a model cannot be served with: NaN or infinite thresholds and leaf
/// values would score `null`.
pub fn finite<T: Into<f64> + Copy>(values: &[T], field: &str) -> Result<(), ModelError> {
    match values.iter().position(|&v| !v.into().is_finite()) {
        None => Ok(()),
        Some(i) => Err(ModelError::Inconsistent(format!(
            "{field}[{i}] is {}, not a finite number",
            values[i].into()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_past_a_limit_name_their_field() {
        let limits = LoadLimits {
            features: 10,
            ..LoadLimits::default()
        };
        assert!(limits.check(Limit::Features, "num_feature", 10).is_ok());
        let e = limits.check(Limit::Features, "num_feature", 11).err();
        assert!(
            matches!(e, Some(ModelError::TooLarge { ref field, limit: "features", .. }) if field == "num_feature")
        );
    }

    #[test]
    fn an_impossible_reservation_is_an_error() {
        assert!(reserve::<u64>(usize::MAX / 4, "x").is_err());
        assert!(filled(3, 0u8, "x").is_ok_and(|v| v == [0, 0, 0]));
    }

    #[test]
    fn the_budget_refuses_past_its_bytes() {
        let mut b = Budget::new(&LoadLimits {
            memory_bytes: 100,
            ..LoadLimits::default()
        });
        assert!(b.charge(60, "a").is_ok());
        assert!(b.charge(60, "b").is_err());
        assert!(finite(&[1.0f32, f32::NAN], "leaf_value").is_err());
        assert!(finite(&[1.0f64, 2.0], "leaf_value").is_ok());
    }
}
