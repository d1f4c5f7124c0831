//! XGBoost JSON models (xgboost 2.x and 3.x): gbtree and DART, numeric and categorical splits,
//! scalar or per-output `base_score`, summed in float32 in file order as xgboost does.

use super::limits::{self, Limit, LoadLimits};
use super::lockstep::{
    self, Block, Derived, Forest, Row, Rule, Source, BLOCK, NAN_RIGHT, SMALL_BATCH,
};
use super::objective::Link;
use super::treeshap::{self, ShapTree};
use super::{ColumnUse, Model, Output};
use crate::error::ModelError;
use crate::precision::Precision;
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct File {
    learner: Learner,
}

#[derive(Deserialize)]
struct Learner {
    #[serde(default)]
    feature_names: Vec<String>,
    learner_model_param: LearnerParam,
    objective: ObjectiveSpec,
    gradient_booster: Booster,
}

#[derive(Deserialize)]
struct LearnerParam {
    base_score: String,
    #[serde(default)]
    num_class: Option<String>,
    num_feature: String,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct ObjectiveSpec {
    name: String,
}

/// gbtree keeps its trees under `model`; DART up to 3.2 nests a gbtree under `gbtree` and keeps
/// the tree weights beside it, from 3.3 they live in `model.weight_drop`.
#[derive(Deserialize)]
struct Booster {
    name: String,
    #[serde(default)]
    model: Option<TreeModel>,
    #[serde(default)]
    gbtree: Option<Box<Booster>>,
    #[serde(default)]
    weight_drop: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct TreeModel {
    trees: Vec<JsonTree>,
    tree_info: Vec<usize>,
    #[serde(default)]
    weight_drop: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct JsonTree {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<u64>,
    split_conditions: Box<RawValue>,
    #[serde(default)]
    sum_hessian: Option<Box<RawValue>>,
    default_left: Vec<Flag>,
    #[serde(default)]
    split_type: Vec<u8>,
    #[serde(default)]
    categories: Vec<u32>,
    #[serde(default)]
    categories_nodes: Vec<usize>,
    #[serde(default)]
    categories_segments: Vec<usize>,
    #[serde(default)]
    categories_sizes: Vec<usize>,
    tree_param: TreeParam,
}

#[derive(Deserialize)]
struct TreeParam {
    #[serde(default)]
    size_leaf_vector: Option<String>,
}

/// xgboost writes booleans as 0/1 in JSON.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Int(u8),
    Bool(bool),
}

impl Flag {
    fn get(&self) -> bool {
        match self {
            Flag::Int(i) => *i != 0,
            Flag::Bool(b) => *b,
        }
    }
}

const LEAF: u8 = 1;
const DEFAULT_LEFT: u8 = 2;
const CATEGORICAL: u8 = 4;

/// One node; at a leaf `value` is the leaf weight, elsewhere the split threshold.
#[derive(Debug, Clone, Copy)]
struct Node {
    value: f32,
    feature: u32,
    left: u32,
    right: u32,
    flags: u8,
    /// Categorical nodes: the range of `Tree::categories` holding the right-going set.
    cat_start: u32,
    cat_len: u32,
}

#[derive(Debug)]
struct Tree {
    nodes: Vec<Node>,
    /// The batch layout, for shallow trees without categorical splits.
    /// Training cover (sum of hessians) per node, for TreeSHAP.
    covers: Vec<f64>,
    /// Edges on the longest root-to-leaf path.
    depth: usize,
    /// Sorted per node, so membership is a binary search.
    categories: Vec<u32>,
    /// Per node, for a categorical split in the lock-step layout, the derived input that
    /// holds its outcome (see `lockstep::Derived`).
    derived: Vec<Option<u32>>,
}

impl Tree {
    fn leaf(&self, row: &[f64]) -> f32 {
        let mut i = 0;
        loop {
            let n = &self.nodes[i];
            if n.flags & LEAF != 0 {
                return n.value;
            }
            i = self.next(n, row);
        }
    }

    /// The child of inner node `n` that `row` goes to.
    #[inline]
    fn next(&self, n: &Node, row: &[f64]) -> usize {
        // xgboost reads its input as float32 before comparing.
        let x = row[n.feature as usize] as f32;
        let left = if x.is_nan() {
            n.flags & DEFAULT_LEFT != 0
        } else if n.flags & CATEGORICAL != 0 {
            !self.goes_right(n, x)
        } else {
            x < n.value
        };
        (if left { n.left } else { n.right }) as usize
    }

    fn goes_right(&self, n: &Node, x: f32) -> bool {
        in_set(self.set(n), x)
    }

    /// The categories that go right at categorical node `n`, sorted.
    fn set(&self, n: &Node) -> &[u32] {
        &self.categories[n.cat_start as usize..(n.cat_start + n.cat_len) as usize]
    }
}

/// Right iff the category is in the set; negatives and values past 2^24 go left.
fn in_set(set: &[u32], x: f32) -> bool {
    (0.0..16_777_216.0).contains(&x) && set.binary_search(&(x as u32)).is_ok()
}

/// A categorical split's outcome as a derived input (see `lockstep::Derived`): 1.0 where the
/// category goes right, 0.0 where it goes left, NaN where it is missing (the split's flags
/// send it to the default side), so the split is `>= 0.5`.
fn outcome(set: &[u32], x: f64) -> f64 {
    // xgboost reads its input as float32 before testing it.
    let x = x as f32;
    if x.is_nan() {
        f64::NAN
    } else if in_set(set, x) {
        1.0
    } else {
        0.0
    }
}

/// xgboost's decision in the lock-step layout: float32 `x < threshold` goes left, NaN to the
/// default side.
#[derive(Debug)]
enum Xgb {}

impl Rule for Xgb {
    type Input = f32;
    type Value = f32;

    #[inline]
    fn goes_right(node: &lockstep::Node<f32>, x: f32) -> bool {
        (x >= node.threshold) | (x.is_nan() & node.has(NAN_RIGHT))
    }

    #[inline]
    fn goes_right_present(node: &lockstep::Node<f32>, x: f32) -> bool {
        x >= node.threshold
    }
}

impl Source<Xgb> for Tree {
    fn split(&self, node: usize) -> Option<(lockstep::Node<f32>, usize, usize)> {
        let n = &self.nodes[node];
        let flags = if n.flags & DEFAULT_LEFT == 0 {
            NAN_RIGHT
        } else {
            0
        };
        let split = match self.derived.get(node) {
            Some(&Some(input)) => lockstep::Node::split(0.5, input as usize, flags),
            _ => lockstep::Node::split(n.value, n.feature as usize, flags),
        };
        (n.flags & LEAF == 0).then_some((split, n.left as usize, n.right as usize))
    }

    fn leaf(&self, node: usize) -> f32 {
        self.nodes[node].value
    }
}

impl ShapTree for Tree {
    fn is_leaf(&self, node: usize) -> bool {
        self.nodes[node].flags & LEAF != 0
    }

    fn leaf_value(&self, node: usize) -> f64 {
        f64::from(self.nodes[node].value)
    }

    fn children(&self, node: usize) -> (usize, usize) {
        let n = &self.nodes[node];
        (n.left as usize, n.right as usize)
    }

    fn split_feature(&self, node: usize) -> usize {
        self.nodes[node].feature as usize
    }

    fn hot_child(&self, node: usize, row: &[f64]) -> usize {
        self.next(&self.nodes[node], row)
    }

    fn cover(&self, node: usize) -> f64 {
        self.covers[node]
    }
}

/// A loaded XGBoost tree ensemble.
#[derive(Debug)]
pub struct XgbModel {
    trees: Vec<Tree>,
    /// The lock-step layout of the trees whose categorical splits (if any) are derived inputs.
    forest: Forest<Xgb>,
    derived: Derived<Vec<u32>>,
    tree_group: Vec<u32>,
    tree_weight: Option<Vec<f32>>,
    base_margin: Vec<f32>,
    link: Link,
    objective: String,
    n_features: usize,
    feature_names: Vec<String>,
    /// "xgboost-json" or "xgboost-ubjson": how the artifact was encoded.
    pub(crate) format: &'static str,
    /// Each tree's expected value, for contributions.
    shap_bias: std::sync::OnceLock<Vec<f64>>,
}

impl XgbModel {
    pub fn from_json(bytes: &[u8], limits: &LoadLimits) -> Result<Self, ModelError> {
        let file: File = serde_json::from_slice(bytes)?;
        let learner = file.learner;
        let param = &learner.learner_model_param;
        let n_features: usize = parse_num(&param.num_feature, "num_feature")?;
        if n_features == 0 {
            return Err(inconsistent("num_feature is 0".into()));
        }
        limits.check(Limit::Features, "num_feature", n_features as u128)?;
        let num_class: usize = param
            .num_class
            .as_deref()
            .map_or(Ok(0), |s| parse_num(s, "num_class"))?;
        let num_target: usize = param
            .num_target
            .as_deref()
            .map_or(Ok(1), |s| parse_num(s, "num_target"))?;
        let n_groups = num_class.max(num_target).max(1);
        let field = if num_class >= num_target {
            "num_class"
        } else {
            "num_target"
        };
        limits.check(Limit::Outputs, field, n_groups as u128)?;
        let link = Link::of(&learner.objective.name)?;

        let base = parse_f32_list(&param.base_score)?;
        limits::finite(&base, "base_score")?;
        let base_margin = match base.len() {
            1 => vec![link.base_margin(base[0]); n_groups],
            n if n == n_groups => base.iter().map(|&b| link.base_margin(b)).collect(),
            n => {
                return Err(inconsistent(format!(
                    "base_score has {n} values for {n_groups} outputs"
                )))
            }
        };

        let booster = learner.gradient_booster;
        let (model, weights) = match booster.name.as_str() {
            "gbtree" => (booster.model, None),
            "dart" => match booster.gbtree {
                Some(inner) => (inner.model, booster.weight_drop),
                None => (booster.model, None),
            },
            other => return Err(ModelError::Unsupported(format!("booster \"{other}\""))),
        };
        let model = model.ok_or_else(|| inconsistent("the booster holds no trees".into()))?;
        let weights = match weights.or(model.weight_drop) {
            Some(raw) => Some(parse_f32_array(raw.get())?),
            None => None,
        };
        limits::finite(weights.as_deref().unwrap_or_default(), "weight_drop")?;
        limits.check(Limit::Trees, "trees", model.trees.len() as u128)?;
        let nodes: usize = model.trees.iter().map(|t| t.left_children.len()).sum();
        limits.check(Limit::Nodes, "the trees' nodes", nodes as u128)?;
        if model.tree_info.len() != model.trees.len()
            || weights
                .as_ref()
                .is_some_and(|w| w.len() != model.trees.len())
        {
            return Err(inconsistent(
                "tree_info or weight_drop does not match the trees".into(),
            ));
        }
        let mut tree_group = Vec::with_capacity(model.trees.len());
        for &g in &model.tree_info {
            if g >= n_groups {
                return Err(inconsistent(format!(
                    "a tree feeds output {g} of {n_groups}"
                )));
            }
            tree_group.push(g as u32);
        }
        let trees = model
            .trees
            .into_iter()
            .enumerate()
            .map(|(t, tree)| build_tree(tree, n_features, limits).map_err(|e| e.in_tree(t)))
            .collect::<Result<Vec<_>, _>>()?;

        let feature_names = learner.feature_names;
        if !feature_names.is_empty() && feature_names.len() != n_features {
            return Err(inconsistent(
                "feature_names does not match num_feature".into(),
            ));
        }
        let mut trees = trees;
        let (derived, inputs) = Derived::number(
            n_features,
            trees.iter().map(|t| {
                let split = |n: &Node| (n.feature as usize, t.set(n).to_vec());
                let categorical = |n: &&Node| n.flags & (CATEGORICAL | LEAF) == CATEGORICAL;
                t.nodes
                    .iter()
                    .map(|n| Some(n).filter(categorical).map(split))
                    .collect()
            }),
        );
        for (tree, inputs) in trees.iter_mut().zip(inputs) {
            tree.derived = inputs;
        }
        let mut forest = Forest::new();
        for tree in &trees {
            let laid_out = tree.nodes.iter().enumerate().all(|(i, n)| {
                n.flags & (CATEGORICAL | LEAF) != CATEGORICAL
                    || tree.derived.get(i).is_some_and(Option::is_some)
            });
            forest.push(
                laid_out.then_some(tree),
                tree.depth,
                n_features + derived.len(),
            );
        }
        Ok(XgbModel {
            shap_bias: std::sync::OnceLock::new(),
            forest,
            derived,
            trees,
            tree_group,
            tree_weight: weights,
            base_margin,
            link,
            objective: learner.objective.name,
            n_features,
            feature_names,
            format: "xgboost-json",
        })
    }

    fn margins(&self, row: &[f64], m: &mut [f32]) {
        m.copy_from_slice(&self.base_margin);
        // xgboost reads its input as float32.
        let row = &row[..self.n_features];
        let xs = if self.derived.is_empty() {
            Row::new(row, f32::NAN, |x| x as f32)
        } else {
            let mut wide = Vec::with_capacity(self.n_features + self.derived.len());
            self.derived
                .widen(row, self.n_features, &mut wide, |set, x| outcome(set, x));
            Row::new(&wide, f32::NAN, |x| x as f32)
        };
        self.forest.for_each_leaf(
            &xs,
            !row.iter().any(|x| x.is_nan()),
            |t| self.trees[t].leaf(row),
            |t, leaf| {
                let g = self.tree_group[t] as usize;
                m[g] += self.tree_weight.as_ref().map_or(leaf, |w| leaf * w[t]);
            },
        );
    }
}

/// Outputs up to this many are scored without touching the heap.
const INLINE_OUTPUTS: usize = 16;

impl Model for XgbModel {
    fn n_features(&self) -> usize {
        self.n_features
    }

    fn column_uses(&self) -> Vec<ColumnUse> {
        let mut uses = vec![ColumnUse::default(); self.n_features];
        let inner = self.trees.iter().flat_map(|t| &t.nodes);
        for n in inner.filter(|n| n.flags & LEAF == 0) {
            if let Some(u) = uses.get_mut(n.feature as usize) {
                if n.flags & CATEGORICAL != 0 {
                    u.categorical = true;
                } else {
                    u.numeric = true;
                }
            }
        }
        uses
    }

    fn n_outputs(&self, output: Output) -> usize {
        match output {
            Output::Margin => self.base_margin.len(),
            Output::Response => self.link.n_responses(self.base_margin.len()),
        }
    }

    fn feature_names(&self) -> Option<&[String]> {
        (!self.feature_names.is_empty()).then_some(self.feature_names.as_slice())
    }

    fn format(&self) -> &'static str {
        self.format
    }

    fn precision(&self) -> Precision {
        Precision::F32
    }

    fn objective(&self) -> &str {
        &self.objective
    }

    fn footprint(&self) -> (usize, usize) {
        let nodes: usize = self.trees.iter().map(|t| t.nodes.len()).sum();
        let bytes = self
            .trees
            .iter()
            .map(|t| {
                t.nodes.len() * std::mem::size_of::<Node>()
                    + t.covers.len() * 8
                    + t.categories.len() * 4
            })
            .sum::<usize>()
            + self.trees.len() * (std::mem::size_of::<Tree>() + 8)
            + self.forest.heap_bytes();
        (bytes, nodes)
    }

    fn contributions(&self, row: &[f64], out: &mut [f64]) -> Result<(), ModelError> {
        let width = self.n_features + 1;
        if self.trees.iter().any(|t| t.covers.is_empty()) {
            return Err(ModelError::Unsupported(
                "contributions need node covers (sum_hessian), which this model lacks".into(),
            ));
        }
        out.fill(0.0);
        let bias = treeshap::expected_values(&self.shap_bias, self.trees.iter());
        let mut scratch = treeshap::Scratch::default();
        for (t, tree) in self.trees.iter().enumerate() {
            let weight = self.tree_weight.as_ref().map_or(1.0, |w| f64::from(w[t]));
            let group = &mut out[self.tree_group[t] as usize * width..][..width];
            treeshap::add_contributions(tree, row, group, weight, tree.depth, &mut scratch)?;
            group[self.n_features] += bias[t] * weight;
        }
        for (g, &base) in self.base_margin.iter().enumerate() {
            out[g * width + self.n_features] += f64::from(base);
        }
        Ok(())
    }

    fn predict_rows(&self, rows: &[f64], output: Output, out: &mut [f64]) {
        let (width, groups) = (self.n_features.max(1), self.base_margin.len());
        let k = self.n_outputs(output);
        if rows.len() < SMALL_BATCH * width {
            for (row, dst) in rows.chunks_exact(width).zip(out.chunks_exact_mut(k)) {
                self.predict_row(row, output, dst);
            }
            return;
        }
        let mut xs = Block::new();
        let mut wide = Vec::new();
        let mut acc = vec![0f32; BLOCK * groups];
        for (block, dst) in rows.chunks(BLOCK * width).zip(out.chunks_mut(BLOCK * k)) {
            let n = block.len() / width;
            // xgboost reads its input as float32: convert each value once per block.
            if self.derived.is_empty() {
                xs.fill(block, width, f32::NAN, |x| x as f32);
            } else {
                self.derived
                    .widen(block, width, &mut wide, |set, x| outcome(set, x));
                xs.fill(&wide, width + self.derived.len(), f32::NAN, |x| x as f32);
            }
            let present = !block.iter().any(|x| x.is_nan());
            let acc = &mut acc[..n * groups];
            for m in acc.chunks_exact_mut(groups) {
                m.copy_from_slice(&self.base_margin);
            }
            for (t, tree) in self.trees.iter().enumerate() {
                let g = self.tree_group[t] as usize;
                let weight = self.tree_weight.as_ref().map(|w| w[t]);
                self.forest.walk_block(
                    t,
                    &xs,
                    present,
                    |r| tree.leaf(&block[r * width..(r + 1) * width]),
                    |r, leaf| acc[r * groups + g] += weight.map_or(leaf, |w| leaf * w),
                );
            }
            for (m, o) in acc.chunks_exact(groups).zip(dst.chunks_exact_mut(k)) {
                match output {
                    Output::Margin => o.iter_mut().zip(m).for_each(|(o, &x)| *o = f64::from(x)),
                    Output::Response => self.link.respond(m, o),
                }
            }
        }
    }

    fn predict_row(&self, row: &[f64], output: Output, out: &mut [f64]) {
        assert!(
            row.len() >= self.n_features,
            "row shorter than the model's features"
        );
        let n = self.base_margin.len();
        let mut inline = [0f32; INLINE_OUTPUTS];
        let mut heap = Vec::new();
        let m = if n <= INLINE_OUTPUTS {
            &mut inline[..n]
        } else {
            heap.resize(n, 0f32);
            &mut heap[..]
        };
        self.margins(row, m);
        match output {
            Output::Margin => {
                for (o, &x) in out.iter_mut().zip(m.iter()) {
                    *o = f64::from(x);
                }
            }
            Output::Response => self.link.respond(m, out),
        }
    }
}

// xgboost stores a tree as parallel arrays indexed by node id; one index reads them best.
#[allow(clippy::needless_range_loop)]
fn build_tree(t: JsonTree, n_features: usize, limits: &LoadLimits) -> Result<Tree, ModelError> {
    let values = parse_f32_array(t.split_conditions.get())?;
    let n = t.left_children.len();
    if [
        t.right_children.len(),
        t.split_indices.len(),
        values.len(),
        t.default_left.len(),
    ]
    .iter()
    .any(|&len| len != n)
        || (!t.split_type.is_empty() && t.split_type.len() != n)
        || n == 0
    {
        return Err(inconsistent("node arrays differ in length".into()));
    }
    if t.tree_param
        .size_leaf_vector
        .as_deref()
        .is_some_and(|s| s != "1" && s != "0")
    {
        return Err(ModelError::Unsupported(
            "multi-target (vector-leaf) trees".into(),
        ));
    }
    let mut nodes = limits::reserve(n, "the tree's nodes")?;
    for i in 0..n {
        let (l, r) = (t.left_children[i], t.right_children[i]);
        let mut node = Node {
            value: values[i],
            feature: 0,
            left: 0,
            right: 0,
            flags: if t.default_left[i].get() {
                DEFAULT_LEFT
            } else {
                0
            },
            cat_start: 0,
            cat_len: 0,
        };
        if l == -1 && r == -1 {
            node.flags |= LEAF;
        } else {
            let child = |c: i64| u32::try_from(c).ok().filter(|&c| (c as usize) < n);
            let out_of_range = || inconsistent(format!("node {i}: a child index out of range"));
            node.left = child(l).ok_or_else(out_of_range)?;
            node.right = child(r).ok_or_else(out_of_range)?;
            let f = t.split_indices[i];
            if f >= n_features as u64 {
                return Err(inconsistent(format!(
                    "node {i} splits on feature {f} of {n_features}"
                )));
            }
            node.feature = f as u32;
        }
        nodes.push(node);
    }
    if let Some(&c) = t.categories.iter().max() {
        limits.check(Limit::Categories, "categories", u128::from(c))?;
    }
    let mut categories = limits::reserve(t.categories.len(), "categories")?;
    let cat_lists = t.categories_nodes.len();
    if t.categories_segments.len() != cat_lists || t.categories_sizes.len() != cat_lists {
        return Err(inconsistent("categorical arrays differ in length".into()));
    }
    for k in 0..cat_lists {
        let (node, start, size) = (
            t.categories_nodes[k],
            t.categories_segments[k],
            t.categories_sizes[k],
        );
        let set = start
            .checked_add(size)
            .and_then(|end| t.categories.get(start..end))
            .ok_or_else(|| inconsistent(format!("category segment {k} out of range")))?;
        let node = nodes
            .get_mut(node)
            .ok_or_else(|| inconsistent(format!("categorical node {node} out of range")))?;
        node.flags |= CATEGORICAL;
        node.cat_start = categories.len() as u32;
        node.cat_len = size as u32;
        let mut set = set.to_vec();
        set.sort_unstable();
        categories.extend(set);
    }
    for (i, &st) in t.split_type.iter().enumerate() {
        if st == 1 && nodes[i].flags & (CATEGORICAL | LEAF) == 0 {
            return Err(inconsistent(format!(
                "categorical node {i} has no category set"
            )));
        }
    }
    // A leaf must be a finite value; a threshold may be ±inf (every value on one side), not
    // NaN; a categorical split's condition is not compared with anything.
    let unservable = |n: &Node| {
        if n.flags & LEAF != 0 {
            !n.value.is_finite()
        } else {
            n.flags & CATEGORICAL == 0 && n.value.is_nan()
        }
    };
    if let Some(i) = nodes.iter().position(unservable) {
        let what = if nodes[i].flags & LEAF != 0 {
            "leaf value"
        } else {
            "threshold"
        };
        return Err(inconsistent(format!(
            "split_conditions[{i}], a {what}, is {}, which cannot be scored",
            nodes[i].value
        )));
    }
    let depth = check_is_tree(&nodes).map_err(inconsistent)?;
    limits.check(Limit::Depth, "the tree's depth", depth as u128)?;
    let covers = match &t.sum_hessian {
        Some(raw) => parse_f32_array(raw.get())?,
        None => Vec::new(),
    };
    let covers = covers.into_iter().map(f64::from).collect::<Vec<_>>();
    if !covers.is_empty() && covers.len() != n {
        return Err(inconsistent("sum_hessian does not match the nodes".into()));
    }
    Ok(Tree {
        nodes,
        covers,
        depth,
        categories,
        derived: Vec::new(),
    })
}

/// Every node reachable once from the root, so traversal always ends at a leaf; returns the
/// tree's depth.
fn check_is_tree(nodes: &[Node]) -> Result<usize, String> {
    let mut seen = vec![false; nodes.len()];
    let mut stack = vec![(0usize, 0usize)];
    let mut depth = 0;
    while let Some((i, d)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            return Err(format!("node {i} is reached twice"));
        }
        depth = depth.max(d);
        let n = nodes[i];
        if n.flags & LEAF == 0 {
            stack.push((n.left as usize, d + 1));
            stack.push((n.right as usize, d + 1));
        }
    }
    Ok(depth)
}

/// Reads floats as float32 straight from their decimal text, never via f64 (no double rounding).
fn parse_f32_array(text: &str) -> Result<Vec<f32>, ModelError> {
    let inner = text
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| inconsistent(format!("expected a list of numbers, got {:.40}", text)))?;
    if inner.trim().is_empty() {
        return Ok(Vec::new());
    }
    inner
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<f32>()
                .map_err(|_| inconsistent(format!("bad number {s:.40}")))
        })
        .collect()
}

/// `base_score`: a scalar up to xgboost 3.0, a bracketed vector from 3.1.
fn parse_f32_list(text: &str) -> Result<Vec<f32>, ModelError> {
    if text.trim_start().starts_with('[') {
        parse_f32_array(text)
    } else {
        Ok(vec![parse_num(text, "base_score")?])
    }
}

fn parse_num<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ModelError> {
    s.trim()
        .parse()
        .map_err(|_| inconsistent(format!("{what} is not a number: {s:.40}")))
}

#[cold]
fn inconsistent(msg: String) -> ModelError {
    ModelError::Inconsistent(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two trees by hand: a numeric stump and a categorical stump, base_score 0.5 on the logit.
    const MODEL: &str = r#"{"learner": {
        "feature_names": ["x", "c"],
        "learner_model_param": {"base_score": "[5E-1]", "num_class": "0", "num_feature": "2", "num_target": "1"},
        "objective": {"name": "binary:logistic"},
        "gradient_booster": {"name": "gbtree", "model": {"tree_info": [0, 0], "trees": [
          {"left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [0, 0, 0],
           "split_conditions": [0.5, -1.0, 1.0], "default_left": [1, 0, 0], "split_type": [0, 0, 0],
           "tree_param": {"size_leaf_vector": "1"}},
          {"left_children": [1, -1, -1], "right_children": [2, -1, -1], "split_indices": [1, 0, 0],
           "split_conditions": [0.0, 0.25, -0.25], "default_left": [0, 0, 0], "split_type": [1, 0, 0],
           "categories": [3, 1], "categories_nodes": [0], "categories_segments": [0], "categories_sizes": [2],
           "tree_param": {"size_leaf_vector": "1"}}
        ]}}}, "version": [3, 1, 0]}"#;

    fn margin(row: [f64; 2]) -> f64 {
        let m = XgbModel::from_json(MODEL.as_bytes(), &LoadLimits::default()).expect("model");
        let mut out = [0.0];
        m.predict_row(&row, Output::Margin, &mut out);
        out[0]
    }

    #[test]
    fn numeric_splits_are_strict_and_nan_takes_the_default() {
        assert_eq!(margin([0.4, 0.0]), -1.0 + 0.25);
        assert_eq!(margin([0.5, 0.0]), 1.0 + 0.25);
        assert_eq!(margin([f64::NAN, 0.0]), -1.0 + 0.25);
    }

    #[test]
    fn categories_in_the_set_go_right() {
        assert_eq!(margin([0.0, 3.0]), -1.0 - 0.25);
        assert_eq!(margin([0.0, 1.0]), -1.0 - 0.25);
        assert_eq!(margin([0.0, 2.0]), -1.0 + 0.25);
        assert_eq!(margin([0.0, -1.0]), -1.0 + 0.25);
        assert_eq!(margin([0.0, f64::NAN]), -1.0 - 0.25);
    }

    #[test]
    fn responses_apply_the_link() {
        let m = XgbModel::from_json(MODEL.as_bytes(), &LoadLimits::default()).expect("model");
        let mut p = [0.0];
        m.predict_row(&[1.0, 2.0], Output::Response, &mut p);
        assert!((p[0] - 1.0 / (1.0 + (-1.25f64).exp())).abs() < 1e-6);
        assert_eq!(
            m.feature_names(),
            Some(&["x".to_string(), "c".to_string()][..])
        );
    }

    #[test]
    fn cycles_and_bad_indices_are_refused() {
        let cyclic = MODEL.replacen(
            "\"left_children\": [1, -1, -1]",
            "\"left_children\": [0, -1, -1]",
            1,
        );
        assert!(XgbModel::from_json(cyclic.as_bytes(), &LoadLimits::default()).is_err());
        let bad_feature = MODEL.replacen(
            "\"split_indices\": [0, 0, 0]",
            "\"split_indices\": [7, 0, 0]",
            1,
        );
        assert!(XgbModel::from_json(bad_feature.as_bytes(), &LoadLimits::default()).is_err());
    }
}
