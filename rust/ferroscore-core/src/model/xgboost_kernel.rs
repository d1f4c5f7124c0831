//! The batch kernel for XGBoost trees. Shallow numeric trees are laid out complete (leaves
//! padded down to the deepest level), so a row walks exactly `depth` levels with no leaf test
//! and the child index computed, not branched on; rows go through each tree in blocks, in
//! lock step. Every row still adds its trees in file order, in float32: results are
//! bit-identical to the one-row walk.

/// Trees deeper than this keep the node-by-node walk: a complete layout doubles per level.
pub const MAX_COMPLETE_DEPTH: usize = 10;

/// Rows walked together through one tree.
pub const BLOCK: usize = 64;

/// One tree, complete to `depth`: inner node i has children 2i+1 and 2i+2.
#[derive(Debug)]
pub struct Complete {
    depth: usize,
    feature: Vec<u32>,
    threshold: Vec<f32>,
    default_left: Vec<bool>,
    leaves: Vec<f32>,
}

/// What building a complete layout needs to read of a tree.
pub trait Source {
    /// `None` at a leaf, else (feature, threshold, default_left, left, right).
    fn split(&self, node: usize) -> Option<(u32, f32, bool, usize, usize)>;
    fn leaf_value(&self, node: usize) -> f32;
}

impl Complete {
    pub fn build(tree: &impl Source, depth: usize) -> Complete {
        let inner = (1usize << depth) - 1;
        let mut c = Complete {
            depth,
            feature: vec![0; inner],
            threshold: vec![0.0; inner],
            default_left: vec![true; inner],
            leaves: vec![0.0; inner + 1],
        };
        c.fill(tree, 0, 0, 0);
        c
    }

    fn fill(&mut self, tree: &impl Source, node: usize, pos: usize, level: usize) {
        let inner = self.feature.len();
        if level == self.depth {
            self.leaves[pos - inner] = tree.leaf_value(node);
            return;
        }
        match tree.split(node) {
            Some((f, t, dl, l, r)) => {
                (
                    self.feature[pos],
                    self.threshold[pos],
                    self.default_left[pos],
                ) = (f, t, dl);
                self.fill(tree, l, 2 * pos + 1, level + 1);
                self.fill(tree, r, 2 * pos + 2, level + 1);
            }
            // A shallow leaf: both ways below it lead to the same value.
            None => {
                self.fill(tree, node, 2 * pos + 1, level + 1);
                self.fill(tree, node, 2 * pos + 2, level + 1);
            }
        }
    }

    /// Adds this tree's leaf (times `weight`, if any) to `acc[r * stride]` for every row of
    /// the block; `xs` holds the block's rows as float32, `width` values each.
    pub fn add_block(
        &self,
        xs: &[f32],
        width: usize,
        acc: &mut [f32],
        stride: usize,
        weight: Option<f32>,
    ) {
        let n = xs.len() / width;
        let mut idx = [0usize; BLOCK];
        let idx = &mut idx[..n];
        for _ in 0..self.depth {
            for (r, i) in idx.iter_mut().enumerate() {
                let x = xs[r * width + self.feature[*i] as usize];
                let right = if x.is_nan() {
                    !self.default_left[*i]
                } else {
                    x >= self.threshold[*i]
                };
                *i = 2 * *i + 1 + usize::from(right);
            }
        }
        let inner = self.feature.len();
        for (r, &i) in idx.iter().enumerate() {
            let leaf = self.leaves[i - inner];
            acc[r * stride] += match weight {
                Some(w) => leaf * w,
                None => leaf,
            };
        }
    }
}
