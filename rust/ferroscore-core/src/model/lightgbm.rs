//! LightGBM text models (model.txt, format v4): numeric and categorical splits, the three
//! missing-value types with LightGBM's 1e-35 zero, linear trees, random-forest averaging,
//! and every built-in objective's output transform, all in float64 as LightGBM computes.

use super::limits::{self, Limit, LoadLimits};
use super::lockstep::{
    Block, Derived, Forest, Node, Row, Rule, Source, BLOCK, NAN_RIGHT, SMALL_BATCH, ZERO_MISSING,
};
use super::treeshap::{self, ShapTree};
use super::{ColumnUse, Model, Output};
use crate::error::ModelError;
use crate::precision::Precision;
use rustc_hash::FxHashMap;

/// |x| at or below this counts as zero, as LightGBM's `kZeroThreshold`.
const ZERO_THRESHOLD: f64 = 1e-35;

const CATEGORICAL: u8 = 1;
const DEFAULT_LEFT: u8 = 2;
/// Bits 2–3 of `decision_type`: 0 None, 1 Zero, 2 NaN.
const MISSING_SHIFT: u8 = 2;
const MISSING_ZERO: u8 = 1;
const MISSING_NAN: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Transform {
    Identity,
    /// binary (σ), multiclassova (σ per class), cross_entropy (σ = 1).
    Sigmoid(f64),
    Softmax,
    /// cross_entropy_lambda: log(1 + e^r).
    Log1pExp,
    /// poisson, gamma, tweedie.
    Exp,
    /// regression with `sqrt`: the model was fit to sign(y)·√|y|.
    SignedSquare,
}

/// An inner node; a negative child `c` is leaf `!c`.
#[derive(Debug, Clone, Copy)]
struct LgbNode {
    threshold: f64,
    left: i32,
    right: i32,
    feature: u32,
    decision_type: u8,
}

/// A linear tree's leaf: its constant and its (feature, coefficient) terms.
#[derive(Debug)]
struct LinearLeaf {
    constant: f64,
    terms: Vec<(u32, f64)>,
}

#[derive(Debug)]
struct Tree {
    /// Inner nodes, root first; one array so a walk touches one cache line per node.
    nodes: Vec<LgbNode>,
    leaf_value: Vec<f64>,
    cat_boundaries: Vec<usize>,
    cat_threshold: Vec<u32>,
    /// Linear trees: one per leaf.
    linear: Option<Vec<LinearLeaf>>,
    /// Training rows through each inner node, then each leaf: TreeSHAP's cover.
    counts: Vec<f64>,
    depth: usize,
    /// Per inner node, for a categorical split in the lock-step layout, the derived input
    /// that holds its outcome (see `Derived`).
    derived: Vec<Option<u32>>,
}

impl Tree {
    fn leaf_index(&self, row: &[f64]) -> usize {
        let inner = self.nodes.len();
        let mut node = 0;
        while node < inner {
            node = self.next(node, row);
        }
        node - inner
    }

    /// The bitset of categorical node `n`: the categories that go left.
    fn bitset(&self, n: usize) -> &[u32] {
        let c = self.nodes[n].threshold as usize;
        &self.cat_threshold[self.cat_boundaries[c]..self.cat_boundaries[c + 1]]
    }

    fn categorical_left(&self, n: usize, x: f64) -> bool {
        in_bitset(self.bitset(n), x)
    }

    /// The next node of inner node `n` for `row`, in TreeSHAP's numbering (leaves after
    /// the inner nodes).
    fn next(&self, n: usize, row: &[f64]) -> usize {
        let node = &self.nodes[n];
        let x = row[node.feature as usize];
        let dt = node.decision_type;
        let left = if dt & CATEGORICAL != 0 {
            self.categorical_left(n, x)
        } else {
            numeric_left(dt, x, node.threshold)
        };
        self.node_id(if left { node.left } else { node.right })
    }

    fn node_id(&self, child: i32) -> usize {
        if child >= 0 {
            child as usize
        } else {
            self.nodes.len() + !child as usize
        }
    }

    fn value(&self, row: &[f64]) -> f64 {
        let leaf = self.leaf_index(row);
        match &self.linear {
            None => self.leaf_value[leaf],
            Some(leaves) => {
                let LinearLeaf { constant, terms } = &leaves[leaf];
                let mut out = *constant;
                for &(f, coeff) in terms {
                    let x = row[f as usize];
                    // A missing input falls back to the plain leaf value.
                    if x.is_nan() {
                        return self.leaf_value[leaf];
                    }
                    out += coeff * x;
                }
                out
            }
        }
    }
}

fn numeric_left(dt: u8, x: f64, threshold: f64) -> bool {
    let missing = (dt >> MISSING_SHIFT) & 3;
    let x = if x.is_nan() && missing != MISSING_NAN {
        0.0
    } else {
        x
    };
    let is_missing = match missing {
        MISSING_ZERO => (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x),
        MISSING_NAN => x.is_nan(),
        _ => false,
    };
    if is_missing {
        dt & DEFAULT_LEFT != 0
    } else {
        x <= threshold
    }
}

/// Whether category `x` goes left: its bit is set. NaN, negatives and values past the bitset
/// go right.
fn in_bitset(words: &[u32], x: f64) -> bool {
    // LightGBM truncates to int first: -0.5 is category 0, -1 is negative.
    let t = x.trunc();
    if x.is_nan() || t < 0.0 || t >= f64::from(i32::MAX) {
        return false;
    }
    let category = t as usize;
    words
        .get(category / 32)
        .is_some_and(|w| (w >> (category % 32)) & 1 == 1)
}

/// A categorical split's outcome as a derived input (see `lockstep::Derived`): 0.0 where the
/// category goes left, 1.0 where it goes right; never missing, so the split is `> 0.5`.
fn outcome(words: &[u32], x: f64) -> f64 {
    if in_bitset(words, x) {
        0.0
    } else {
        1.0
    }
}

/// LightGBM's decision in the lock-step layout: `numeric_left` with the missing type worked
/// out at load, so a non-missing input costs one comparison.
#[derive(Debug)]
enum Lgb {}

impl Rule for Lgb {
    type Input = f64;
    type Value = f64;

    #[inline]
    fn goes_right(node: &Node<f64>, x: f64) -> bool {
        let nan_right = node.has(NAN_RIGHT);
        if node.has(ZERO_MISSING) && x.abs() <= ZERO_THRESHOLD {
            return nan_right;
        }
        (x > node.threshold) | (x.is_nan() & nan_right)
    }

    #[inline]
    fn goes_right_present(node: &Node<f64>, x: f64) -> bool {
        x > node.threshold
    }
}

impl Source<Lgb> for Tree {
    fn split(&self, node: usize) -> Option<(Node<f64>, usize, usize)> {
        let n = self.nodes.get(node)?;
        let children = (self.node_id(n.left), self.node_id(n.right));
        if let Some(&Some(input)) = self.derived.get(node) {
            let split = Node::split(0.5, input as usize, 0);
            return Some((split, children.0, children.1));
        }
        let dt = n.decision_type;
        // Where NaN goes: the default side for missing types Zero and NaN, else where 0.0 goes.
        let mut flags = 0;
        if !numeric_left(dt, f64::NAN, n.threshold) {
            flags |= NAN_RIGHT;
        }
        if (dt >> MISSING_SHIFT) & 3 == MISSING_ZERO {
            flags |= ZERO_MISSING;
        }
        let split = Node::split(n.threshold, n.feature as usize, flags);
        Some((split, children.0, children.1))
    }

    fn leaf(&self, node: usize) -> f64 {
        self.leaf_value[node.saturating_sub(self.nodes.len())]
    }
}

impl ShapTree for Tree {
    fn is_leaf(&self, node: usize) -> bool {
        node >= self.nodes.len()
    }

    fn leaf_value(&self, node: usize) -> f64 {
        self.leaf_value[node - self.nodes.len()]
    }

    fn children(&self, node: usize) -> (usize, usize) {
        (
            self.node_id(self.nodes[node].left),
            self.node_id(self.nodes[node].right),
        )
    }

    fn split_feature(&self, node: usize) -> usize {
        self.nodes[node].feature as usize
    }

    fn hot_child(&self, node: usize, row: &[f64]) -> usize {
        self.next(node, row)
    }

    fn cover(&self, node: usize) -> f64 {
        self.counts[node]
    }
}

/// A loaded LightGBM model.
#[derive(Debug)]
pub struct LgbModel {
    trees: Vec<Tree>,
    /// Trees per iteration: one per class for multiclass, else one.
    per_iteration: usize,
    average: bool,
    transform: Transform,
    objective: String,
    n_features: usize,
    feature_names: Vec<String>,
    /// The lock-step layout of the trees without linear leaves whose categorical splits (if
    /// any) are derived inputs.
    forest: Forest<Lgb>,
    derived: Derived<Vec<u32>>,
    /// Some split has missing type Zero: near-zero inputs are missing too.
    zero_missing: bool,
    /// Each tree's expected value, for contributions.
    shap_bias: std::sync::OnceLock<Vec<f64>>,
}

impl LgbModel {
    pub fn from_text(bytes: &[u8], limits: &LoadLimits) -> Result<Self, ModelError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| inconsistent("a LightGBM model is text; this is not UTF-8"))?;
        let mut blocks = text.split("\nTree=");
        let header = fields(blocks.next().unwrap_or_default());
        let get = |k: &str| {
            header
                .get(k)
                .copied()
                .ok_or_else(|| inconsistent(&format!("no {k}= line")))
        };
        let per_iteration: u128 = num(get("num_tree_per_iteration")?, "num_tree_per_iteration")?;
        limits.check(Limit::Outputs, "num_tree_per_iteration", per_iteration)?;
        let per_iteration = per_iteration as usize;
        let max_feature_idx: u128 = num(get("max_feature_idx")?, "max_feature_idx")?;
        limits.check(Limit::Features, "max_feature_idx", max_feature_idx + 1)?;
        let n_features = max_feature_idx as usize + 1;
        let objective_line = get("objective")?;
        let (objective, transform) = transform_of(objective_line)?;
        if let Transform::Sigmoid(s) = transform {
            limits::finite(&[s], "objective sigmoid")?;
        }
        let feature_names: Vec<String> = header
            .get("feature_names")
            .map_or_else(Vec::new, |s| s.split(' ').map(str::to_owned).collect());
        if !feature_names.is_empty() && feature_names.len() != n_features {
            return Err(inconsistent("feature_names does not match max_feature_idx"));
        }
        let average = text.lines().any(|l| l.trim() == "average_output");
        let mut trees = Vec::new();
        let mut nodes = 0;
        for block in blocks {
            // The last tree block runs into "end of trees" and the parameters after it.
            let block = block.split("\nend of trees").next().unwrap_or_default();
            let t = trees.len();
            limits.check(Limit::Trees, "Tree=", t as u128 + 1)?;
            let tree = tree(block, n_features, limits).map_err(|e| e.in_tree(t))?;
            nodes += tree.nodes.len() + tree.leaf_value.len();
            limits.check(Limit::Nodes, "num_leaves", nodes as u128)?;
            trees.push(tree);
        }
        if per_iteration == 0 || trees.len() % per_iteration != 0 {
            return Err(inconsistent(
                "the number of trees is not a multiple of the trees per iteration",
            ));
        }
        let zero_missing = trees.iter().flat_map(|t| &t.nodes).any(|n| {
            n.decision_type & CATEGORICAL == 0
                && (n.decision_type >> MISSING_SHIFT) & 3 == MISSING_ZERO
        });
        // Linear trees keep the node-by-node walk: their leaves read the row.
        let (derived, inputs) = Derived::number(
            n_features,
            trees.iter().map(|t| {
                (0..t.nodes.len())
                    .map(|n| {
                        let node = &t.nodes[n];
                        let categorical = node.decision_type & CATEGORICAL != 0;
                        (categorical && t.linear.is_none())
                            .then(|| (node.feature as usize, t.bitset(n).to_vec()))
                    })
                    .collect()
            }),
        );
        for (tree, inputs) in trees.iter_mut().zip(inputs) {
            tree.derived = inputs;
        }
        let width = n_features + derived.len();
        let mut forest = Forest::new();
        for tree in &trees {
            let categorical = |(n, node): (usize, &LgbNode)| {
                node.decision_type & CATEGORICAL != 0
                    && tree.derived.get(n).is_none_or(|d| d.is_none())
            };
            let laid_out = !tree.nodes.iter().enumerate().any(categorical) && tree.linear.is_none();
            forest.push(laid_out.then_some(tree), tree.depth, width);
        }
        Ok(LgbModel {
            shap_bias: std::sync::OnceLock::new(),
            forest,
            derived,
            zero_missing,
            trees,
            per_iteration,
            average,
            transform,
            objective,
            n_features,
            feature_names,
        })
    }

    fn raw(&self, row: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        let k = self.per_iteration;
        let row = &row[..self.n_features];
        let xs = if self.derived.is_empty() {
            Row::new(row, f64::NAN, |x| x)
        } else {
            let mut wide = Vec::with_capacity(self.n_features + self.derived.len());
            self.derived
                .widen(row, self.n_features, &mut wide, |set, x| outcome(set, x));
            Row::new(&wide, f64::NAN, |x| x)
        };
        self.forest.for_each_leaf(
            &xs,
            self.present(row),
            |t| self.trees[t].value(row),
            |t, leaf| out[t % k] += leaf,
        );
        self.average(out);
    }

    /// Whether no input in `xs` is missing to any split: then every split is `x > threshold`.
    fn present(&self, xs: &[f64]) -> bool {
        if self.zero_missing {
            xs.iter().all(|x| x.abs() > ZERO_THRESHOLD)
        } else {
            !xs.iter().any(|x| x.is_nan())
        }
    }

    fn average(&self, raw: &mut [f64]) {
        if self.average {
            let iterations = (self.trees.len() / self.per_iteration).max(1) as f64;
            for o in raw.iter_mut() {
                *o /= iterations;
            }
        }
    }

    /// Raw scores to the requested scale, in place.
    fn finish(&self, out: &mut [f64], output: Output) {
        if output == Output::Margin {
            return;
        }
        match self.transform {
            Transform::Identity => {}
            Transform::Sigmoid(s) => out
                .iter_mut()
                .for_each(|r| *r = 1.0 / (1.0 + (-s * *r).exp())),
            Transform::Log1pExp => out.iter_mut().for_each(|r| *r = r.exp().ln_1p()),
            Transform::Exp => out.iter_mut().for_each(|r| *r = r.exp()),
            Transform::SignedSquare => out.iter_mut().for_each(|r| *r = r.signum() * *r * *r),
            Transform::Softmax => super::softmax(out),
        }
    }
}

impl Model for LgbModel {
    fn n_features(&self) -> usize {
        self.n_features
    }

    fn column_uses(&self) -> Vec<ColumnUse> {
        let mut uses = vec![ColumnUse::default(); self.n_features];
        for t in &self.trees {
            for n in &t.nodes {
                if let Some(u) = uses.get_mut(n.feature as usize) {
                    if n.decision_type & CATEGORICAL != 0 {
                        u.categorical = true;
                    } else {
                        u.numeric = true;
                    }
                }
            }
            // A linear leaf's terms read their columns as numbers.
            let terms = t.linear.iter().flatten().flat_map(|l| &l.terms);
            for &(f, _) in terms {
                if let Some(u) = uses.get_mut(f as usize) {
                    u.numeric = true;
                }
            }
        }
        uses
    }

    fn n_outputs(&self, _: Output) -> usize {
        self.per_iteration
    }

    fn feature_names(&self) -> Option<&[String]> {
        (!self.feature_names.is_empty()).then_some(self.feature_names.as_slice())
    }

    fn format(&self) -> &'static str {
        "lightgbm-text"
    }

    fn precision(&self) -> Precision {
        Precision::F64
    }

    fn objective(&self) -> &str {
        &self.objective
    }

    fn footprint(&self) -> (usize, usize) {
        let nodes: usize = self
            .trees
            .iter()
            .map(|t| t.nodes.len() + t.leaf_value.len())
            .sum();
        let bytes = self
            .trees
            .iter()
            .map(|t| {
                t.nodes.len() * std::mem::size_of::<LgbNode>()
                    + t.leaf_value.len() * 8
                    + t.counts.len() * 8
                    + (t.cat_boundaries.len() + t.cat_threshold.len()) * 4
                    + t.linear
                        .as_ref()
                        .map_or(0, |l| l.iter().map(|leaf| 8 + leaf.terms.len() * 16).sum())
                    + std::mem::size_of::<Tree>()
            })
            .sum::<usize>()
            + self.forest.heap_bytes();
        (bytes, nodes)
    }

    fn contributions(&self, row: &[f64], out: &mut [f64]) -> Result<(), ModelError> {
        if self.average || self.trees.iter().any(|t| t.linear.is_some()) {
            return Err(ModelError::Unsupported(
                "contributions of random-forest or linear-tree LightGBM models".into(),
            ));
        }
        let width = self.n_features + 1;
        let lacks_counts = |t: &Tree| !t.nodes.is_empty() && t.counts.iter().all(|&c| c == 0.0);
        if self.trees.iter().any(lacks_counts) {
            return Err(ModelError::Unsupported(
                "contributions need leaf_count and internal_count, which this model lacks".into(),
            ));
        }
        out.fill(0.0);
        let bias = treeshap::expected_values(&self.shap_bias, self.trees.iter());
        let mut scratch = treeshap::Scratch::default();
        for (t, tree) in self.trees.iter().enumerate() {
            let group = &mut out[(t % self.per_iteration) * width..][..width];
            if tree.nodes.is_empty() {
                group[self.n_features] += tree.leaf_value[0];
                continue;
            }
            treeshap::add_contributions(tree, row, group, 1.0, tree.depth, &mut scratch)?;
            group[self.n_features] += bias[t];
        }
        Ok(())
    }

    fn predict_rows(&self, rows: &[f64], output: Output, out: &mut [f64]) {
        let (width, k) = (self.n_features, self.per_iteration);
        if rows.len() < SMALL_BATCH * width {
            for (row, dst) in rows.chunks_exact(width).zip(out.chunks_exact_mut(k)) {
                self.predict_row(row, output, dst);
            }
            return;
        }
        let mut xs = Block::new();
        let mut wide = Vec::new();
        for (block, dst) in rows.chunks(BLOCK * width).zip(out.chunks_mut(BLOCK * k)) {
            dst.fill(0.0);
            let present = self.present(block);
            if self.derived.is_empty() {
                xs.fill(block, width, f64::NAN, |x| x);
            } else {
                self.derived
                    .widen(block, width, &mut wide, |set, x| outcome(set, x));
                xs.fill(&wide, width + self.derived.len(), f64::NAN, |x| x);
            }
            for (t, tree) in self.trees.iter().enumerate() {
                let g = t % k;
                self.forest.walk_block(
                    t,
                    &xs,
                    present,
                    |r| tree.value(&block[r * width..(r + 1) * width]),
                    |r, leaf| dst[r * k + g] += leaf,
                );
            }
            for raw in dst.chunks_exact_mut(k) {
                self.average(raw);
                self.finish(raw, output);
            }
        }
    }

    fn predict_row(&self, row: &[f64], output: Output, out: &mut [f64]) {
        assert!(
            row.len() >= self.n_features,
            "row shorter than the model's features"
        );
        self.raw(row, out);
        self.finish(out, output);
    }
}

/// The objective's name and its transform, from e.g. `binary sigmoid:1`.
fn transform_of(line: &str) -> Result<(String, Transform), ModelError> {
    let mut tokens = line.split_whitespace();
    let name = tokens.next().unwrap_or_default().to_owned();
    let params: Vec<&str> = tokens.collect();
    let sigmoid = params
        .iter()
        .find_map(|p| p.strip_prefix("sigmoid:"))
        .map_or(Ok(1.0), |s| num::<f64>(s, "sigmoid"))?;
    let transform = match name.as_str() {
        "binary" | "multiclassova" => Transform::Sigmoid(sigmoid),
        "cross_entropy" | "xentropy" => Transform::Sigmoid(1.0),
        "cross_entropy_lambda" | "xentlambda" => Transform::Log1pExp,
        "multiclass" | "softmax" => Transform::Softmax,
        "poisson" | "gamma" | "tweedie" => Transform::Exp,
        "regression" | "regression_l2" | "l2" | "mean_squared_error" | "mse" | "regression_l1"
        | "l1" | "huber" | "fair" | "quantile" | "mape" => {
            if params.contains(&"sqrt") {
                Transform::SignedSquare
            } else {
                Transform::Identity
            }
        }
        "lambdarank" | "rank_xendcg" | "custom" | "none" => Transform::Identity,
        other => {
            return Err(ModelError::Unsupported(format!(
                "LightGBM objective \"{other}\""
            )))
        }
    };
    Ok((name, transform))
}

fn fields(block: &str) -> FxHashMap<&str, &str> {
    block.lines().filter_map(|l| l.split_once('=')).collect()
}

fn list<T: std::str::FromStr>(f: &FxHashMap<&str, &str>, key: &str) -> Result<Vec<T>, ModelError> {
    f.get(key)
        .map_or("", |s| s)
        .split_whitespace()
        .map(|t| {
            t.parse()
                .map_err(|_| inconsistent(&format!("{key} holds {t:.40}, not a number")))
        })
        .collect()
}

fn tree(block: &str, n_features: usize, limits: &LoadLimits) -> Result<Tree, ModelError> {
    let f = fields(block);
    let num_leaves: usize = f
        .get("num_leaves")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| inconsistent("no num_leaves"))?;
    let leaf_value: Vec<f64> = list(&f, "leaf_value")?;
    if num_leaves == 0 || leaf_value.len() != num_leaves {
        return Err(inconsistent("leaf_value does not hold num_leaves values"));
    }
    limits::finite(&leaf_value, "leaf_value")?;
    let inner = num_leaves - 1;
    let split_feature: Vec<u32> = list(&f, "split_feature")?;
    let threshold: Vec<f64> = list(&f, "threshold")?;
    let decision_type: Vec<u8> = list(&f, "decision_type")?;
    let left: Vec<i32> = list(&f, "left_child")?;
    let right: Vec<i32> = list(&f, "right_child")?;
    if [
        split_feature.len(),
        threshold.len(),
        decision_type.len(),
        left.len(),
        right.len(),
    ]
    .iter()
    .any(|&n| n != inner)
    {
        return Err(inconsistent(
            "node arrays do not hold num_leaves - 1 values",
        ));
    }
    if let Some(&bad) = split_feature.iter().find(|&&s| s as usize >= n_features) {
        return Err(inconsistent(&format!(
            "a split on feature {bad} of {n_features}"
        )));
    }
    let cat_boundaries: Vec<usize> = list(&f, "cat_boundaries")?;
    let cat_threshold: Vec<u32> = list(&f, "cat_threshold")?;
    for (n, &dt) in decision_type.iter().enumerate() {
        let c = threshold[n];
        if dt & CATEGORICAL == 0 {
            // ±inf is a threshold LightGBM writes (every value on one side); NaN is none.
            if c.is_nan() {
                return Err(inconsistent(&format!("threshold[{n}] is NaN")));
            }
            continue;
        }
        let ok = c >= 0.0
            && c.fract() == 0.0
            && (c as usize)
                .checked_add(1)
                .is_some_and(|end| end < cat_boundaries.len())
            && cat_boundaries[c as usize] <= cat_boundaries[c as usize + 1]
            && cat_boundaries[c as usize + 1] <= cat_threshold.len();
        if !ok {
            return Err(inconsistent(&format!(
                "categorical node {n} points outside its bitsets"
            )));
        }
        // A bitset of w words tests categories up to 32·w − 1.
        let words = cat_boundaries[c as usize + 1] - cat_boundaries[c as usize];
        limits.check(
            Limit::Categories,
            "cat_threshold",
            (words as u128 * 32).saturating_sub(1),
        )?;
    }
    let depth = check_is_tree(&left, &right, num_leaves).map_err(|e| inconsistent(&e))?;
    limits.check(Limit::Depth, "the tree's depth", depth as u128)?;
    let mut counts: Vec<f64> = list(&f, "internal_count")?;
    counts.extend(list::<f64>(&f, "leaf_count")?);
    if counts.len() != inner + num_leaves {
        // Older or stripped files: prediction works, contributions will say what is missing.
        counts = vec![0.0; inner + num_leaves];
    }
    let linear = if f.get("is_linear").is_some_and(|s| s.trim() == "1") {
        Some(linear_leaves(&f, num_leaves, n_features)?)
    } else {
        None
    };
    let nodes = (0..inner)
        .map(|n| LgbNode {
            threshold: threshold[n],
            left: left[n],
            right: right[n],
            feature: split_feature[n],
            decision_type: decision_type[n],
        })
        .collect();
    let tree = Tree {
        nodes,
        leaf_value,
        cat_boundaries,
        cat_threshold,
        linear,
        counts,
        depth,
        derived: Vec::new(),
    };
    Ok(tree)
}

fn linear_leaves(
    f: &FxHashMap<&str, &str>,
    num_leaves: usize,
    n_features: usize,
) -> Result<Vec<LinearLeaf>, ModelError> {
    let constants: Vec<f64> = list(f, "leaf_const")?;
    let counts: Vec<usize> = list(f, "num_features")?;
    let features: Vec<u32> = list(f, "leaf_features")?;
    let coeffs: Vec<f64> = list(f, "leaf_coeff")?;
    if constants.len() != num_leaves || counts.len() != num_leaves {
        return Err(inconsistent("linear leaves do not match num_leaves"));
    }
    let terms = counts.iter().try_fold(0usize, |sum, &k| sum.checked_add(k));
    if terms != Some(features.len()) || features.len() != coeffs.len() {
        return Err(inconsistent(
            "leaf_features and leaf_coeff do not match num_features",
        ));
    }
    if !constants.iter().chain(&coeffs).all(|x| x.is_finite()) {
        return Err(inconsistent(
            "leaf_const or leaf_coeff holds a number that is not finite",
        ));
    }
    if features.iter().any(|&x| x as usize >= n_features) {
        return Err(inconsistent(
            "a linear leaf reads a feature the model does not have",
        ));
    }
    let mut at = 0;
    Ok(constants
        .into_iter()
        .zip(counts)
        .map(|(constant, k)| {
            let terms = features[at..at + k]
                .iter()
                .copied()
                .zip(coeffs[at..at + k].iter().copied())
                .collect();
            at += k;
            LinearLeaf { constant, terms }
        })
        .collect())
}

/// Every node reached once from the root, every leaf index in range, so walks always end;
/// returns the depth.
fn check_is_tree(left: &[i32], right: &[i32], num_leaves: usize) -> Result<usize, String> {
    if left.is_empty() {
        return Ok(0);
    }
    let mut seen = vec![false; left.len()];
    let mut leaves = vec![false; num_leaves];
    let mut stack = vec![(0i32, 0usize)];
    let mut depth = 0;
    while let Some((c, d)) = stack.pop() {
        depth = depth.max(d);
        if c >= 0 {
            let n = c as usize;
            if n >= left.len() || std::mem::replace(&mut seen[n], true) {
                return Err(format!("node {n} is out of range or reached twice"));
            }
            stack.push((left[n], d + 1));
            stack.push((right[n], d + 1));
        } else {
            let leaf = !c as usize;
            if leaf >= num_leaves || std::mem::replace(&mut leaves[leaf], true) {
                return Err(format!("leaf {leaf} is out of range or reached twice"));
            }
        }
    }
    Ok(depth)
}

fn num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ModelError> {
    s.trim()
        .parse()
        .map_err(|_| inconsistent(&format!("{what} is not a number: {s:.40}")))
}

#[cold]
fn inconsistent(msg: &str) -> ModelError {
    ModelError::Inconsistent(msg.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_types_follow_lightgbm() {
        let (none, zero, nan) = (
            0u8,
            MISSING_ZERO << MISSING_SHIFT,
            MISSING_NAN << MISSING_SHIFT,
        );
        // None: NaN is 0, compared as a number.
        assert!(numeric_left(none, f64::NAN, 0.5));
        assert!(!numeric_left(none, f64::NAN, -0.5));
        // Zero: NaN and |x| <= 1e-35 take the default direction.
        assert!(!numeric_left(zero, 1e-36, 0.5));
        assert!(numeric_left(zero | DEFAULT_LEFT, f64::NAN, -0.5));
        assert!(numeric_left(zero, 0.25, 0.5));
        // NaN: only NaN takes the default; zero is a number.
        assert!(numeric_left(nan | DEFAULT_LEFT, f64::NAN, -0.5));
        assert!(!numeric_left(nan, f64::NAN, 0.5));
        assert!(numeric_left(nan, 0.0, 0.0));
    }

    #[test]
    fn objectives_map_to_transforms() {
        assert_eq!(
            transform_of("binary sigmoid:2").ok().map(|t| t.1),
            Some(Transform::Sigmoid(2.0))
        );
        assert_eq!(
            transform_of("regression sqrt").ok().map(|t| t.1),
            Some(Transform::SignedSquare)
        );
        assert_eq!(
            transform_of("multiclass num_class:3").ok().map(|t| t.1),
            Some(Transform::Softmax)
        );
        assert!(transform_of("mystery").is_err());
    }
}
