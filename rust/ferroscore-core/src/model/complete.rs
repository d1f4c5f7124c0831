//! The batch kernel for shallow trees. A tree is laid out complete (shallow leaves padded down
//! to the deepest level, both ways below them ending at the same value), so a row walks exactly
//! `depth` levels with no leaf test and the child index computed rather than branched on; rows
//! go through each tree in blocks, in lock step. Callers still add each row's trees in file
//! order, so results are bit-identical to the one-row walk.

/// Trees deeper than this keep the node-by-node walk: a complete layout doubles per level.
pub const MAX_COMPLETE_DEPTH: usize = 10;

/// Rows walked together through one tree.
pub const BLOCK: usize = 64;

/// One inner node's test, in the model's own arithmetic.
pub trait Split: Copy {
    /// What the model compares: float32 for XGBoost, float64 for LightGBM.
    type Input: Copy;
    fn feature(&self) -> usize;
    fn goes_right(&self, x: Self::Input) -> bool;
}

/// What building a complete layout reads of a tree.
pub trait Source<S, L> {
    /// `None` at a leaf, else the node's test and its (left, right) children.
    fn split(&self, node: usize) -> Option<(S, usize, usize)>;
    fn leaf(&self, node: usize) -> L;
}

/// One tree, complete to `depth`: inner node i has children 2i+1 and 2i+2.
#[derive(Debug)]
pub struct Complete<S, L> {
    depth: usize,
    splits: Vec<S>,
    leaves: Vec<L>,
}

impl<S: Split, L: Copy> Complete<S, L> {
    /// `padding` stands in the inner slots below shallow leaves; any test will do there.
    pub fn build(tree: &impl Source<S, L>, depth: usize, padding: S) -> Self {
        let inner = (1usize << depth) - 1;
        // Every bottom slot is written by `fill`; the initial value is never read.
        let mut c = Complete {
            depth,
            splits: vec![padding; inner],
            leaves: vec![tree.leaf(0); inner + 1],
        };
        c.fill(tree, 0, 0, 0);
        c
    }

    fn fill(&mut self, tree: &impl Source<S, L>, node: usize, pos: usize, level: usize) {
        if level == self.depth {
            self.leaves[pos - self.splits.len()] = tree.leaf(node);
            return;
        }
        match tree.split(node) {
            Some((s, l, r)) => {
                self.splits[pos] = s;
                self.fill(tree, l, 2 * pos + 1, level + 1);
                self.fill(tree, r, 2 * pos + 2, level + 1);
            }
            None => {
                self.fill(tree, node, 2 * pos + 1, level + 1);
                self.fill(tree, node, 2 * pos + 2, level + 1);
            }
        }
    }

    /// Walks every row of the block to its leaf: on return `idx[r]` is row r's leaf slot, for
    /// `leaf`. `xs` holds the rows, `width` inputs each.
    #[inline]
    pub fn walk_block(&self, xs: &[S::Input], width: usize, idx: &mut [usize]) {
        idx.fill(0);
        for _ in 0..self.depth {
            for (r, i) in idx.iter_mut().enumerate() {
                let s = self.splits[*i];
                *i = 2 * *i + 1 + usize::from(s.goes_right(xs[r * width + s.feature()]));
            }
        }
    }

    #[inline]
    pub fn leaf(&self, slot: usize) -> L {
        self.leaves[slot - self.splits.len()]
    }

    pub fn heap_bytes(&self) -> usize {
        self.splits.len() * std::mem::size_of::<S>() + self.leaves.len() * std::mem::size_of::<L>()
    }
}
