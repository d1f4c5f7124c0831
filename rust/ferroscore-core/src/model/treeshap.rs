//! Exact TreeSHAP (Lundberg, Erion & Lee, arXiv:1802.03888, Algorithm 2): per-feature
//! contributions of one tree to one prediction, weighted by the training cover of each node,
//! as xgboost's `pred_contribs` computes them. Runs in O(L·D²) per tree.

use crate::error::ModelError;

/// What the algorithm needs to know about a tree.
pub(crate) trait ShapTree {
    fn is_leaf(&self, node: usize) -> bool;
    fn leaf_value(&self, node: usize) -> f64;
    fn children(&self, node: usize) -> (usize, usize);
    fn split_feature(&self, node: usize) -> usize;
    /// The child this row goes to (missing values follow the default direction).
    fn hot_child(&self, node: usize, row: &[f64]) -> usize;
    /// Training cover (sum of hessians) of the node.
    fn cover(&self, node: usize) -> f64;
}

/// The tree's expected value: leaves averaged by cover. It goes into the bias column.
/// Iterative, post-order: a tree as deep as its file allows cannot overflow the stack.
pub(crate) fn expected_value(tree: &impl ShapTree, root: usize) -> f64 {
    // (node, whether its children are done); values of finished subtrees on `done`.
    let mut todo = vec![(root, false)];
    let mut done: Vec<f64> = Vec::new();
    while let Some((node, expanded)) = todo.pop() {
        if tree.is_leaf(node) {
            done.push(tree.leaf_value(node));
            continue;
        }
        let (l, r) = tree.children(node);
        if !expanded {
            todo.extend([(node, true), (r, false), (l, false)]);
            continue;
        }
        let (er, el) = (done.pop(), done.pop());
        let (el, er) = (el.unwrap_or_default(), er.unwrap_or_default());
        done.push((el * tree.cover(l) + er * tree.cover(r)) / tree.cover(node));
    }
    done.pop().unwrap_or_default()
}

/// 1/n for the path lengths of trees up to depth 126: the algorithm divides by small
/// integers in its innermost loops, and a multiplication costs a fraction of a division.
const INV: [f64; 128] = {
    let mut table = [0.0; 128];
    let mut n = 1;
    while n < 128 {
        table[n] = 1.0 / n as f64;
        n += 1;
    }
    table
};

#[inline]
fn inv(n: usize) -> f64 {
    match INV.get(n) {
        Some(&x) => x,
        None => 1.0 / n as f64,
    }
}

/// `PathElement::feature` of the root element, which stands for no feature.
const NO_FEATURE: u32 = u32::MAX;

/// 32 bytes: a path is copied at every node of the walk.
#[derive(Debug, Clone, Copy)]
struct PathElement {
    feature: u32,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

/// The paths of one walk, kept across the trees of a row so that a row allocates once.
#[derive(Default)]
pub(crate) struct Scratch(Vec<PathElement>);

impl Default for PathElement {
    fn default() -> Self {
        PathElement {
            feature: NO_FEATURE,
            zero_fraction: 0.0,
            one_fraction: 0.0,
            pweight: 0.0,
        }
    }
}

/// Adds `scale` × each feature's contribution to `phi` (one slot per feature).
pub(crate) fn add_contributions(
    tree: &impl ShapTree,
    row: &[f64],
    phi: &mut [f64],
    scale: f64,
    depth: usize,
    scratch: &mut Scratch,
) -> Result<(), ModelError> {
    // Each level of recursion copies its parent's path; depth + 2 levels at most. The load
    // bounded the depth; the buffers are still reserved fallibly (depth² × 32 bytes).
    let levels = depth + 2;
    let needed = levels * (levels + 1) / 2;
    if scratch.0.len() < needed {
        let more = needed - scratch.0.len();
        scratch.0.try_reserve_exact(more).map_err(|_| {
            ModelError::Unsupported(format!("contributions of a tree {depth} deep"))
        })?;
        scratch.0.resize(needed, PathElement::default());
    }
    let mut shap = Shap {
        tree,
        row,
        phi,
        scale,
    };
    shap.recurse(0, &mut scratch.0, 0, 0, 1.0, 1.0, NO_FEATURE);
    Ok(())
}

/// Each tree's expected value (its bias column), computed on the first call for contributions
/// and kept: it depends on the model alone.
pub(crate) fn expected_values<'a, T: ShapTree + 'a>(
    cache: &'a std::sync::OnceLock<Vec<f64>>,
    trees: impl Iterator<Item = &'a T>,
) -> &'a [f64] {
    cache.get_or_init(|| trees.map(|t| expected_value(t, 0)).collect())
}

struct Shap<'t, 'r, 'p, T> {
    tree: &'t T,
    row: &'r [f64],
    phi: &'p mut [f64],
    scale: f64,
}

impl<T: ShapTree> Shap<'_, '_, '_, T> {
    #[allow(clippy::too_many_arguments)] // the algorithm's own parameters, as in the paper
    fn recurse(
        &mut self,
        node: usize,
        paths: &mut [PathElement],
        parent_start: usize,
        mut depth: usize,
        zero_fraction: f64,
        one_fraction: f64,
        feature: u32,
    ) {
        // This level's path lives right after the parent's, which has `depth` elements.
        let start = parent_start + depth;
        paths.copy_within(parent_start..parent_start + depth, start);
        let path = &mut paths[start..];
        extend(path, depth, zero_fraction, one_fraction, feature);
        let tree = self.tree;
        if tree.is_leaf(node) {
            let value = tree.leaf_value(node) * self.scale;
            // Every element the row does not follow (one = 0) has the same unwound sum up to
            // its zero fraction, so its term, -zero × sum / zero, is one sum for them all.
            let mut cold = None;
            for i in 1..=depth {
                let el = path[i];
                if el.feature == NO_FEATURE {
                    continue;
                }
                let term = if el.one_fraction != 0.0 {
                    unwound_sum(path, depth, i) * (el.one_fraction - el.zero_fraction)
                } else if el.zero_fraction != 0.0 {
                    -*cold.get_or_insert_with(|| cold_sum(path, depth))
                } else {
                    0.0
                };
                self.phi[el.feature as usize] += term * value;
            }
            return;
        }
        // Feature indices are u32 in every model format.
        let split = tree.split_feature(node) as u32;
        let hot = tree.hot_child(node, self.row);
        let (l, r) = tree.children(node);
        let cold = if hot == l { r } else { l };
        let cover = tree.cover(node);
        let (hot_zero, cold_zero) = (tree.cover(hot) / cover, tree.cover(cold) / cover);
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        // A feature split on higher up: undo that split and redo it here.
        if let Some(k) = (1..=depth).find(|&k| path[k].feature == split) {
            incoming_zero = path[k].zero_fraction;
            incoming_one = path[k].one_fraction;
            unwind(path, depth, k);
            depth -= 1;
        }
        self.recurse(
            hot,
            paths,
            start,
            depth + 1,
            hot_zero * incoming_zero,
            incoming_one,
            split,
        );
        self.recurse(
            cold,
            paths,
            start,
            depth + 1,
            cold_zero * incoming_zero,
            0.0,
            split,
        );
    }
}

fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: u32) {
    path[depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d = depth as f64;
    let inv_d1 = inv(depth + 1);
    for i in (0..depth).rev() {
        let fi = i as f64;
        path[i + 1].pweight += one * path[i].pweight * (fi + 1.0) * inv_d1;
        path[i].pweight = zero * path[i].pweight * (d - fi) * inv_d1;
    }
}

fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
    let (one, zero) = (path[index].one_fraction, path[index].zero_fraction);
    let d = depth as f64;
    let (inv_d1, inv_one, inv_zero) = (inv(depth + 1), 1.0 / one, 1.0 / zero);
    let mut next_one = path[depth].pweight;
    for i in (0..depth).rev() {
        let fi = i as f64;
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one * (d + 1.0) * inv(i + 1) * inv_one;
            next_one = tmp - path[i].pweight * zero * (d - fi) * inv_d1;
        } else {
            path[i].pweight = path[i].pweight * (d + 1.0) * inv_zero * inv(depth - i);
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

/// `unwound_sum` × zero fraction of any element with one fraction 0: the same for them all.
fn cold_sum(path: &[PathElement], depth: usize) -> f64 {
    let d1 = depth as f64 + 1.0;
    (0..depth)
        .map(|i| path[i].pweight * d1 * inv(depth - i))
        .sum()
}

/// The total weight the path would have with element `index` unwound, without unwinding it.
fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let (one, zero) = (path[index].one_fraction, path[index].zero_fraction);
    let d = depth as f64;
    let inv_d1 = inv(depth + 1);
    let mut next_one = path[depth].pweight;
    let mut total = 0.0;
    if one != 0.0 {
        let scale = (d + 1.0) / one;
        for i in (0..depth).rev() {
            let tmp = next_one * scale * inv(i + 1);
            total += tmp;
            next_one = path[i].pweight - tmp * zero * ((d - i as f64) * inv_d1);
        }
    } else if zero != 0.0 {
        let scale = (d + 1.0) / zero;
        for i in (0..depth).rev() {
            total += path[i].pweight * scale * inv(depth - i);
        }
    }
    total
}
