//! The tree kernel. Each tree is one array of nodes whose two children sit side by side, so a
//! step is `left + goes_right` with no branch; a leaf is a node whose test always fails and
//! whose left child is itself, so a walk of exactly `depth` steps ends at every row's leaf
//! with no leaf test. Steps then never wait on a guessed branch: a batch walks blocks of rows
//! through each tree in lock step, one row walks several trees in lock step, and the CPU
//! overlaps the independent chains of loads. Callers add each row's trees in file order, so
//! results are bit-identical to the node-by-node walk. Rows with nothing missing take a test
//! of one comparison.

use rustc_hash::FxHashMap;
use std::hash::Hash;

/// Trees deeper than this keep the node-by-node walk: a lock-step walk takes every path as
/// long as the longest.
const MAX_DEPTH: usize = 64;

/// Rows a batch walks through one tree before the next tree (a multiple of `LANES`).
pub const BLOCK: usize = 64;

/// Batches shorter than this are scored row by row: setting up a block costs more than it
/// saves.
pub const SMALL_BATCH: usize = 8;

/// Chains walked at once: rows of a block through one tree, or trees for one row. More would
/// not fit the registers.
pub const LANES: usize = 8;

/// One node of the layout: an inner node's test and children, or a leaf.
// In this order, as written: the order Rust picks for `Node<f64>` walks 5% slower.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Node<T> {
    /// The split's threshold; at a leaf, the leaf's value.
    pub threshold: T,
    /// The input read, with the split's flags (`NAN_RIGHT`, `ZERO_MISSING`) in the top bits.
    bits: u32,
    /// The left child's slot, the right child's being the next one; at a leaf, its own slot.
    left: u32,
}

/// Flag: a missing input goes right.
pub const NAN_RIGHT: u32 = 1 << 31;
/// Flag: |x| <= 1e-35 is missing too (LightGBM's missing type Zero).
pub const ZERO_MISSING: u32 = 1 << 30;
/// The most inputs a node can name (the sentinel after them included); the flags take the
/// bits above.
const MAX_INPUTS: usize = ZERO_MISSING as usize - 1;

impl<T> Node<T> {
    /// An inner node testing input `feature` against `threshold`, with `flags`; `Forest::push`
    /// places its children.
    pub fn split(threshold: T, feature: usize, flags: u32) -> Self {
        Node {
            threshold,
            bits: feature as u32 | flags,
            left: 0,
        }
    }

    #[inline]
    pub fn feature(&self) -> usize {
        self.bits as usize & MAX_INPUTS
    }

    #[inline]
    pub fn has(&self, flag: u32) -> bool {
        self.bits & flag != 0
    }
}

/// A model's arithmetic: what its splits compare, and how.
pub trait Rule {
    /// What the model compares: float32 for XGBoost, float64 for LightGBM.
    type Input: Copy;
    /// Its thresholds and leaf values.
    type Value: Copy;
    /// Whether `x` goes right at `node`. NaN must go left at a node without flags: a leaf is
    /// such a node, reading the NaN after each row (see `Row` and `Block`), and going left
    /// leads back to itself.
    fn goes_right(node: &Node<Self::Value>, x: Self::Input) -> bool;
    /// `goes_right` for an input the model does not count as missing.
    fn goes_right_present(node: &Node<Self::Value>, x: Self::Input) -> bool;
}

#[inline(always)]
fn test<R: Rule, const PRESENT: bool>(node: &Node<R::Value>, x: R::Input) -> bool {
    if PRESENT {
        R::goes_right_present(node, x)
    } else {
        R::goes_right(node, x)
    }
}

/// What building the layout reads of a tree.
pub trait Source<R: Rule> {
    /// `None` at a leaf, else the node's test and its (left, right) children.
    fn split(&self, node: usize) -> Option<(Node<R::Value>, usize, usize)>;
    fn leaf(&self, node: usize) -> R::Value;
}

// Rows and blocks hold NaN up to a power of two, so a walk masks an input's index where it
// would otherwise check it against the length; that takes a tenth off a one-row walk.
const _: () = assert!(LANES.is_power_of_two());

/// One row as `Forest::for_each_leaf` reads it: its inputs, converted, then NaN up to a power
/// of two. Leaves read the NaN after the inputs.
pub struct Row<I>(Vec<I>);

impl<I: Copy> Row<I> {
    pub fn new<T: Copy>(row: &[T], nan: I, convert: impl Fn(T) -> I) -> Self {
        let len = (row.len() + 1).next_power_of_two();
        let mut xs = Vec::with_capacity(len);
        xs.extend(row.iter().map(|&x| convert(x)));
        xs.resize(len, nan);
        Row(xs)
    }
}

/// A block of rows as `Forest::walk_block` reads it: in groups of `LANES` rows, input by
/// input, the group's `LANES` values of an input side by side, then NaN up to a power of two.
/// Leaves read the NaN after the last input. A short last group repeats its last row.
pub struct Block<I> {
    xs: Vec<I>,
    rows: usize,
    /// Values per group: a power of two.
    stride: usize,
}

impl<I: Copy> Block<I> {
    pub fn new() -> Self {
        Block {
            xs: Vec::new(),
            rows: 0,
            stride: LANES,
        }
    }

    /// Lays out `rows`, `width` inputs each, each converted by `convert`.
    pub fn fill<T: Copy>(&mut self, rows: &[T], width: usize, nan: I, convert: impl Fn(T) -> I) {
        self.xs.clear();
        self.rows = rows.len() / width;
        self.stride = (width + 1).next_power_of_two() * LANES;
        for first in (0..self.rows).step_by(LANES) {
            let last = self.rows - 1;
            let at: [usize; LANES] = std::array::from_fn(|l| (first + l).min(last) * width);
            for f in 0..width {
                self.xs.extend(at.iter().map(|&row| convert(rows[row + f])));
            }
            let end = self.xs.len() + self.stride - width * LANES;
            self.xs.resize(end, nan);
        }
    }
}

/// Where a tree starts in the forest and how many steps reach all its leaves.
#[derive(Debug, Clone, Copy)]
struct Root {
    at: u32,
    depth: u32,
}

/// Every tree of a model in the lock-step layout, in one node array: a lane of a walk holds
/// only its node's index, so `LANES` walks fit in the registers.
#[derive(Debug)]
pub struct Forest<R: Rule> {
    nodes: Vec<Node<R::Value>>,
    /// Per tree, in file order; `None` for a tree that is walked node by node.
    roots: Vec<Option<Root>>,
}

impl<R: Rule> Forest<R> {
    pub fn new() -> Self {
        Forest {
            nodes: Vec::new(),
            roots: Vec::new(),
        }
    }

    /// Adds the next tree: laid out when `tree` is given (its longest path has `depth`
    /// splits, its rows `n_features` inputs) and fits the layout, else left to the caller's
    /// node-by-node walk.
    pub fn push(&mut self, tree: Option<&impl Source<R>>, depth: usize, n_features: usize) {
        let tree = tree.filter(|_| depth <= MAX_DEPTH && n_features <= MAX_INPUTS);
        let Some(tree) = tree else {
            return self.roots.push(None);
        };
        let base = self.nodes.len();
        let mut slots: Vec<Option<Node<R::Value>>> = vec![None];
        let mut todo = vec![(0, 0)];
        while let Some((node, slot)) = todo.pop() {
            slots[slot] = Some(match tree.split(node) {
                Some((s, left, right)) => {
                    let at = slots.len();
                    slots.extend([None, None]);
                    todo.push((right, at + 1));
                    todo.push((left, at));
                    Node {
                        left: (base + at) as u32,
                        ..s
                    }
                }
                None => Node {
                    threshold: tree.leaf(node),
                    bits: n_features as u32,
                    left: (base + slot) as u32,
                },
            });
        }
        if base + slots.len() > u32::MAX as usize {
            return self.roots.push(None);
        }
        // Every slot was filled: each was pushed to `todo` when it was made.
        self.nodes.extend(slots.into_iter().flatten());
        self.roots.push(Some(Root {
            at: base as u32,
            depth: depth as u32,
        }));
    }

    /// The block's rows through tree `t`: row r's leaf value goes to `add(r, value)` in row
    /// order. A laid-out tree is walked `LANES` rows at a time, another by `walk(r)`; `present`
    /// promises no input is missing.
    #[inline]
    pub fn walk_block(
        &self,
        t: usize,
        block: &Block<R::Input>,
        present: bool,
        walk: impl Fn(usize) -> R::Value,
        mut add: impl FnMut(usize, R::Value),
    ) {
        match self.roots[t] {
            Some(root) if present => self.walk_block_with::<true>(root, block, add),
            Some(root) => self.walk_block_with::<false>(root, block, add),
            None => (0..block.rows).for_each(|r| add(r, walk(r))),
        }
    }

    #[inline(always)]
    fn walk_block_with<const PRESENT: bool>(
        &self,
        root: Root,
        block: &Block<R::Input>,
        mut add: impl FnMut(usize, R::Value),
    ) {
        let mask = block.stride - 1;
        // `LANES` rows at a time, their positions held in registers through every level.
        for (g, group) in block.xs.chunks_exact(block.stride).enumerate() {
            let group = &group[..=mask];
            let mut lane = [root.at as usize; LANES];
            for _ in 0..root.depth {
                for (l, i) in lane.iter_mut().enumerate() {
                    let s = self.nodes[*i];
                    let x = group[(s.feature() * LANES + l) & mask];
                    *i = s.left as usize + usize::from(test::<R, PRESENT>(&s, x));
                }
            }
            let first = g * LANES;
            for (l, &i) in lane.iter().enumerate().take(block.rows - first) {
                add(first + l, self.value(i));
            }
        }
    }

    /// One row through every tree: each tree's leaf value goes to `add(t, value)` in file
    /// order. Laid-out trees are walked `LANES` at a time, the others by `walk(t)`; `present`
    /// promises no input of `x` is missing.
    pub fn for_each_leaf(
        &self,
        x: &Row<R::Input>,
        present: bool,
        walk: impl Fn(usize) -> R::Value,
        mut add: impl FnMut(usize, R::Value),
    ) {
        for (c, chunk) in self.roots.chunks(LANES).enumerate() {
            let first = c * LANES;
            match lanes(chunk) {
                Some(roots) => {
                    let leaves = if present {
                        self.walk_lanes::<true>(roots, x)
                    } else {
                        self.walk_lanes::<false>(roots, x)
                    };
                    for (t, leaf) in leaves.into_iter().take(chunk.len()).enumerate() {
                        add(first + t, leaf);
                    }
                }
                None => {
                    for t in first..first + chunk.len() {
                        add(t, walk(t));
                    }
                }
            }
        }
    }

    /// One row's leaf value in each of `LANES` trees, walked level by level in lock step; a
    /// tree that reaches its leaves first stays there.
    #[inline(always)]
    fn walk_lanes<const PRESENT: bool>(
        &self,
        roots: [Root; LANES],
        x: &Row<R::Input>,
    ) -> [R::Value; LANES] {
        let mut idx = roots.map(|r| r.at as usize);
        let depth = roots.iter().map(|r| r.depth).max().unwrap_or(0);
        let mask = x.0.len() - 1;
        let x = &x.0[..=mask];
        for _ in 0..depth {
            for i in &mut idx {
                let s = self.nodes[*i];
                *i = s.left as usize + usize::from(test::<R, PRESENT>(&s, x[s.feature() & mask]));
            }
        }
        idx.map(|i| self.value(i))
    }

    /// The value of the leaf at `slot`, as a walk left it.
    #[inline]
    fn value(&self, slot: usize) -> R::Value {
        self.nodes[slot].threshold
    }

    pub fn heap_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<Node<R::Value>>()
            + self.roots.len() * std::mem::size_of::<Option<Root>>()
    }
}

/// The roots of up to `LANES` trees, if every one is laid out; a short chunk's spare lanes
/// walk its first tree again.
fn lanes(chunk: &[Option<Root>]) -> Option<[Root; LANES]> {
    let mut roots = [(*chunk.first()?)?; LANES];
    for (root, tree) in roots.iter_mut().zip(chunk) {
        *root = (*tree)?;
    }
    Some(roots)
}

/// Categorical splits brought into the layout. Each distinct (column, set) of a model's
/// categorical splits becomes a derived input after the row's own, holding the split's outcome
/// as a number the model's rule computes once per row; the split becomes a numeric one on it.
/// A row then pays one set lookup per distinct split instead of a node-by-node walk of every
/// tree that has one.
#[derive(Debug)]
pub struct Derived<K> {
    splits: Vec<(usize, K)>,
}

impl<K: Eq + Hash + Clone> Derived<K> {
    /// More distinct splits than this would cost a row more lookups than walking saves.
    pub const MAX: usize = 256;

    /// Numbers the distinct `(column, set)` splits after the `n_features` inputs. `trees`
    /// gives each tree's nodes, `Some((column, set))` for a categorical split; the result
    /// gives each such node's derived input. None at all when there are more than `MAX`.
    pub fn number(
        n_features: usize,
        trees: impl Iterator<Item = Vec<Option<(usize, K)>>>,
    ) -> (Self, Vec<Vec<Option<u32>>>) {
        let mut index: FxHashMap<(usize, K), u32> = FxHashMap::default();
        let mut splits = Vec::new();
        let mut inputs = Vec::new();
        for nodes in trees {
            let tree = nodes.into_iter().map(|key| {
                let key = key?;
                let next = (n_features + splits.len()) as u32;
                Some(*index.entry(key.clone()).or_insert_with(|| {
                    splits.push(key);
                    next
                }))
            });
            inputs.push(tree.collect::<Vec<_>>());
        }
        if splits.len() > Self::MAX {
            inputs.iter_mut().for_each(Vec::clear);
            splits.clear();
        }
        (Derived { splits }, inputs)
    }

    pub fn len(&self) -> usize {
        self.splits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.splits.is_empty()
    }

    /// Each row of `rows` (`width` inputs) followed by its derived inputs, into `out`.
    pub fn widen(
        &self,
        rows: &[f64],
        width: usize,
        out: &mut Vec<f64>,
        outcome: impl Fn(&K, f64) -> f64,
    ) {
        out.clear();
        for row in rows.chunks_exact(width) {
            out.extend_from_slice(row);
            out.extend(self.splits.iter().map(|(c, set)| outcome(set, row[*c])));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x > threshold`, NaN left: the simplest model.
    enum Gt {}

    impl Rule for Gt {
        type Input = f64;
        type Value = f64;
        fn goes_right(node: &Node<f64>, x: f64) -> bool {
            x > node.threshold
        }
        fn goes_right_present(node: &Node<f64>, x: f64) -> bool {
            x > node.threshold
        }
    }

    /// Nodes as (feature, threshold, left, right) or a leaf value; node 0 is the root.
    enum N {
        Split(u32, f64, usize, usize),
        Leaf(f64),
    }

    impl Source<Gt> for Vec<N> {
        fn split(&self, node: usize) -> Option<(Node<f64>, usize, usize)> {
            match self[node] {
                N::Split(feature, threshold, l, r) => {
                    Some((Node::split(threshold, feature as usize, 0), l, r))
                }
                N::Leaf(_) => None,
            }
        }
        fn leaf(&self, node: usize) -> f64 {
            match self[node] {
                N::Leaf(v) => v,
                N::Split(..) => unreachable!("not a leaf"),
            }
        }
    }

    /// A lopsided tree of depth 3: x0 > 0 ? (x1 > 0 ? (x0 > 5 ? 4 : 3) : 2) : 1.
    fn lopsided() -> Vec<N> {
        vec![
            N::Split(0, 0.0, 1, 2),
            N::Leaf(1.0),
            N::Split(1, 0.0, 3, 4),
            N::Leaf(2.0),
            N::Split(0, 5.0, 5, 6),
            N::Leaf(3.0),
            N::Leaf(4.0),
        ]
    }

    fn reference(x: &[f64]) -> f64 {
        match (x[0] > 0.0, x[1] > 0.0, x[0] > 5.0) {
            (false, _, _) => 1.0,
            (true, false, _) => 2.0,
            (true, true, false) => 3.0,
            (true, true, true) => 4.0,
        }
    }

    const ROWS: [[f64; 2]; 11] = [
        [-1.0, 0.0],
        [1.0, -1.0],
        [1.0, 1.0],
        [6.0, 1.0],
        [f64::NAN, 1.0],
        [6.0, f64::NAN],
        [0.0, 0.0],
        [5.0, 2.0],
        [7.0, 0.5],
        [-3.0, 9.0],
        [2.0, 2.0],
    ];

    #[test]
    fn rows_reach_their_leaves_however_deep() {
        let mut forest = Forest::<Gt>::new();
        forest.push(Some(&lopsided()), 3, 2);
        forest.push(None::<&Vec<N>>, 0, 2);
        forest.push(Some(&vec![N::Leaf(7.0)]), 0, 2);
        let flat: Vec<f64> = ROWS.iter().flatten().copied().collect();
        let mut block = Block::new();
        block.fill(&flat, 2, f64::NAN, |x| x);
        // Two groups of LANES rows, 2 inputs and NaN up to 4: the short one repeats row 10.
        assert_eq!((block.rows, block.xs.len()), (ROWS.len(), 2 * 4 * LANES));
        assert_eq!(block.xs[4 * LANES + LANES - 1], 2.0);
        assert!(block.xs[4 * LANES + 2 * LANES..].iter().all(|x| x.is_nan()));

        let expected: Vec<(usize, f64)> = ROWS.iter().map(|r| reference(r)).enumerate().collect();
        for (t, expected) in [
            (0, expected),
            (1, (0..ROWS.len()).map(|r| (r, 100.0)).collect()),
        ] {
            let mut seen = vec![];
            forest.walk_block(t, &block, false, |_| 100.0, |r, v| seen.push((r, v)));
            assert_eq!(seen, expected, "tree {t}");
        }

        // A chunk with a tree that is not laid out is walked node by node, in file order.
        for row in ROWS {
            let mut leaves = vec![];
            let x = Row::new(&row, f64::NAN, |x| x);
            let walk = |t: usize| [reference(&row), 100.0, 7.0][t];
            forest.for_each_leaf(&x, false, walk, |t, v| leaves.push((t, v)));
            assert_eq!(leaves, [(0, reference(&row)), (1, 100.0), (2, 7.0)]);
        }
    }

    #[test]
    fn one_row_walks_each_tree_to_its_leaf() {
        let mut forest = Forest::<Gt>::new();
        for _ in 0..3 {
            forest.push(Some(&lopsided()), 3, 2);
            forest.push(Some(&vec![N::Leaf(7.0)]), 0, 2);
        }
        for row in ROWS {
            let mut leaves = vec![];
            let x = Row::new(&row, f64::NAN, |x| x);
            forest.for_each_leaf(&x, false, |_| f64::NAN, |t, v| leaves.push((t, v)));
            let r = reference(&row);
            assert_eq!(
                leaves,
                [(0, r), (1, 7.0), (2, r), (3, 7.0), (4, r), (5, 7.0)]
            );
        }
    }

    #[test]
    fn chunks_of_lanes_keep_file_order() {
        let mut forest = Forest::<Gt>::new();
        let n = 2 * LANES + 3;
        for t in 0..n {
            let tree = vec![
                N::Split(0, t as f64, 1, 2),
                N::Leaf(-(t as f64)),
                N::Leaf(t as f64),
            ];
            forest.push(Some(&tree), 1, 1);
        }
        let x = Row::new(&[LANES as f64], f64::NAN, |x| x);
        let mut leaves = vec![];
        forest.for_each_leaf(&x, true, |_| f64::NAN, |t, v| leaves.push((t, v)));
        let expected: Vec<(usize, f64)> = (0..n)
            .map(|t| (t, if LANES > t { t as f64 } else { -(t as f64) }))
            .collect();
        assert_eq!(leaves, expected);
    }
}
