//! Gradient-boosted regression trees (squared loss, histogram splits) and exact path-dependent
//! TreeSHAP (Lundberg et al. 2018, Algorithm 2).
//!
//! Trees are stored flat (pre-order) with each node's training cover, which TreeSHAP needs.
//! A split sends `x[feature] <= threshold` to the left child.

use serde::{Deserialize, Serialize};

/// Largest supported tree depth (TreeSHAP uses a fixed stack buffer sized from it).
pub const MAX_DEPTH: usize = 8;

/// One node of a tree. `feature < 0` marks a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Split feature, -1 for a leaf.
    #[serde(rename = "f")]
    pub feature: i32,
    /// Split threshold: `x <= threshold` goes left.
    #[serde(rename = "t", default)]
    pub threshold: f64,
    /// Left child index.
    #[serde(rename = "l", default)]
    pub left: u32,
    /// Right child index.
    #[serde(rename = "r", default)]
    pub right: u32,
    /// Leaf value (0 on inner nodes).
    #[serde(rename = "v", default)]
    pub value: f64,
    /// Number of training samples that reached the node.
    #[serde(rename = "c")]
    pub cover: f64,
}

/// A regression tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Nodes in pre-order; index 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The tree's output for `x`.
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0usize;
        loop {
            let Some(n) = self.nodes.get(i) else {
                return 0.0;
            };
            if n.feature < 0 {
                return n.value;
            }
            let v = x.get(n.feature as usize).copied().unwrap_or(0.0);
            i = if v <= n.threshold {
                n.left as usize
            } else {
                n.right as usize
            };
        }
    }

    /// Cover-weighted mean output (the tree's expected value under the training distribution).
    pub fn expected_value(&self) -> f64 {
        let root = self.nodes.first().map_or(0.0, |n| n.cover);
        if root <= 0.0 {
            return 0.0;
        }
        self.nodes
            .iter()
            .filter(|n| n.feature < 0)
            .map(|n| n.value * n.cover)
            .sum::<f64>()
            / root
    }

    fn depth_from(&self, i: usize) -> usize {
        match self.nodes.get(i) {
            Some(n) if n.feature >= 0 => {
                1 + self
                    .depth_from(n.left as usize)
                    .max(self.depth_from(n.right as usize))
            }
            _ => 0,
        }
    }

    /// Structural checks: children in range and after their parent, covers consistent.
    pub fn validate(&self, n_features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("empty tree".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.value.is_finite() || !n.threshold.is_finite() || !n.cover.is_finite() {
                return Err(format!("node {i}: non-finite value"));
            }
            if n.feature >= 0 {
                let (l, r) = (n.left as usize, n.right as usize);
                if n.feature as usize >= n_features {
                    return Err(format!("node {i}: feature {} out of range", n.feature));
                }
                if l <= i || r <= i || l >= self.nodes.len() || r >= self.nodes.len() {
                    return Err(format!("node {i}: bad children"));
                }
            }
        }
        if self.depth_from(0) > MAX_DEPTH {
            return Err(format!("tree deeper than {MAX_DEPTH}"));
        }
        Ok(())
    }
}

/// A boosted ensemble: `base + Σ trees`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gbt {
    /// Number of input features.
    pub n_features: usize,
    /// Constant start value.
    pub base: f64,
    /// The trees (already multiplied by the learning rate).
    pub trees: Vec<Tree>,
}

impl Gbt {
    /// An ensemble that always predicts `base`.
    pub fn constant(n_features: usize, base: f64) -> Self {
        Gbt {
            n_features,
            base,
            trees: Vec::new(),
        }
    }

    /// Prediction for one input row.
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.base + self.trees.iter().map(|t| t.predict(x)).sum::<f64>()
    }

    /// Expected value of the prediction over the training distribution (the SHAP base value).
    pub fn expected_value(&self) -> f64 {
        self.base + self.trees.iter().map(Tree::expected_value).sum::<f64>()
    }

    /// Checks every tree.
    pub fn validate(&self) -> Result<(), String> {
        if !self.base.is_finite() {
            return Err("non-finite base".into());
        }
        self.trees.iter().enumerate().try_for_each(|(i, t)| {
            t.validate(self.n_features)
                .map_err(|e| format!("tree {i}: {e}"))
        })
    }

    /// Exact TreeSHAP: adds each feature's contribution to `phi` (length `n_features`).
    /// `Σ phi = predict(x) − expected_value()`.
    pub fn shap(&self, x: &[f64], phi: &mut [f64]) {
        let mut buf = [PathElem::default(); (MAX_DEPTH + 2) * (MAX_DEPTH + 3) / 2];
        for t in &self.trees {
            if t.nodes.first().is_some_and(|n| n.cover > 0.0) {
                tree_shap(t, x, phi, 0, 0, &mut buf, 0, 1.0, 1.0, -1);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct PathElem {
    feature: i32,
    zero: f64,
    one: f64,
    w: f64,
}

fn extend_path(p: &mut [PathElem], depth: usize, zero: f64, one: f64, feature: i32) {
    p[depth] = PathElem {
        feature,
        zero,
        one,
        w: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        p[i + 1].w += one * p[i].w * (i + 1) as f64 / d1;
        p[i].w = zero * p[i].w * (depth - i) as f64 / d1;
    }
}

fn unwind_path(p: &mut [PathElem], depth: usize, idx: usize) {
    let one = p[idx].one;
    let zero = p[idx].zero;
    let mut next = p[depth].w;
    let d1 = (depth + 1) as f64;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = p[i].w;
            p[i].w = next * d1 / ((i + 1) as f64 * one);
            next = tmp - p[i].w * zero * (depth - i) as f64 / d1;
        } else {
            p[i].w = p[i].w * d1 / (zero * (depth - i) as f64);
        }
    }
    for i in idx..depth {
        p[i].feature = p[i + 1].feature;
        p[i].zero = p[i + 1].zero;
        p[i].one = p[i + 1].one;
    }
}

fn unwound_sum(p: &[PathElem], depth: usize, idx: usize) -> f64 {
    let one = p[idx].one;
    let zero = p[idx].zero;
    let mut next = p[depth].w;
    let d1 = (depth + 1) as f64;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = next * d1 / ((i + 1) as f64 * one);
            total += tmp;
            next = p[i].w - tmp * zero * ((depth - i) as f64 / d1);
        } else if zero != 0.0 {
            total += (p[i].w / zero) / ((depth - i) as f64 / d1);
        }
    }
    total
}

/// Recursive step of Algorithm 2. `buf[off..]` holds the parent's path of `depth` elements
/// (the new frame is written right after it).
#[allow(clippy::too_many_arguments)]
fn tree_shap(
    t: &Tree,
    x: &[f64],
    phi: &mut [f64],
    node: usize,
    mut depth: usize,
    buf: &mut [PathElem],
    parent_off: usize,
    pzero: f64,
    pone: f64,
    pfeature: i32,
) {
    // The frame of this node starts after the parent's `depth` elements (+1 for the root frame).
    let off = if node == 0 && depth == 0 {
        0
    } else {
        parent_off + depth
    };
    if off + depth + 1 > buf.len() {
        return;
    }
    if off != parent_off {
        buf.copy_within(parent_off..parent_off + depth, off);
    }
    let p = &mut buf[off..];
    extend_path(p, depth, pzero, pone, pfeature);
    let Some(n) = t.nodes.get(node) else {
        return;
    };
    if n.feature < 0 {
        for i in 1..=depth {
            let w = unwound_sum(p, depth, i);
            let el = p[i];
            if let Some(slot) = usize::try_from(el.feature)
                .ok()
                .and_then(|f| phi.get_mut(f))
            {
                *slot += w * (el.one - el.zero) * n.value;
            }
        }
        return;
    }
    let f = n.feature as usize;
    let xv = x.get(f).copied().unwrap_or(0.0);
    let (hot, cold) = if xv <= n.threshold {
        (n.left as usize, n.right as usize)
    } else {
        (n.right as usize, n.left as usize)
    };
    let cover = n.cover;
    let hot_cover = t.nodes.get(hot).map_or(0.0, |c| c.cover);
    let cold_cover = t.nodes.get(cold).map_or(0.0, |c| c.cover);
    if cover <= 0.0 {
        return;
    }
    let mut iz = 1.0;
    let mut io = 1.0;
    if let Some(k) = (0..=depth).find(|&k| p[k].feature == n.feature) {
        iz = p[k].zero;
        io = p[k].one;
        unwind_path(p, depth, k);
        depth -= 1;
    }
    // Children copy `depth + 1` elements of this frame.
    tree_shap(
        t,
        x,
        phi,
        hot,
        depth + 1,
        buf,
        off,
        hot_cover / cover * iz,
        io,
        n.feature,
    );
    tree_shap(
        t,
        x,
        phi,
        cold,
        depth + 1,
        buf,
        off,
        cold_cover / cover * iz,
        0.0,
        n.feature,
    );
}

/// An ensemble compiled for fast inference: every tree padded to a complete tree of the
/// ensemble's depth (a leaf above the bottom becomes splits with threshold +∞ that always go
/// left), traversed without branches; plus per-leaf TreeSHAP tables (see [`FastGbt::shap`]).
#[derive(Debug, Clone, Default)]
pub struct FastGbt {
    base: f64,
    depth: usize,
    n_trees: usize,
    split: Vec<Split>,
    leaf: Vec<f64>,
    expected: f64,
    shap: Vec<TreeTable>,
}

/// A split of a compiled tree: `x[feature] > threshold` goes right.
#[derive(Debug, Clone, Copy)]
struct Split {
    threshold: f64,
    feature: u32,
}

/// TreeSHAP tables of one tree.
#[derive(Debug, Clone, Default)]
struct TreeTable {
    /// Original inner nodes: (index in `nodes`, feature, threshold).
    inner: Vec<(usize, u32, f64)>,
    leaves: Vec<LeafTable>,
}

/// One leaf: its path's unique features and, for every pattern of which of them `x` follows,
/// the exact contribution to each (value × (o − z) × unwound path weight).
#[derive(Debug, Clone, Default)]
struct LeafTable {
    /// Path conditions: (position in `inner`, went left, slot of the unique feature).
    conds: Vec<(u16, bool, u8)>,
    /// Unique features by slot.
    feats: Vec<u32>,
    /// `2^U × U` contributions, pattern-major.
    table: Vec<f64>,
}

impl FastGbt {
    /// Compiles `g` (its trees must pass [`Gbt::validate`]).
    pub fn build(g: &Gbt) -> FastGbt {
        let depth = g
            .trees
            .iter()
            .map(|t| t.depth_from(0))
            .max()
            .unwrap_or(0)
            .min(MAX_DEPTH);
        let n_inner = (1usize << depth) - 1;
        let n_leaf = 1usize << depth;
        let mut f = FastGbt {
            base: g.base,
            depth,
            n_trees: g.trees.len(),
            split: vec![
                Split {
                    threshold: f64::INFINITY,
                    feature: 0,
                };
                n_inner * g.trees.len()
            ],
            leaf: vec![0.0; n_leaf * g.trees.len()],
            expected: g.expected_value(),
            shap: Vec::with_capacity(g.trees.len()),
        };
        for (ti, t) in g.trees.iter().enumerate() {
            if !t.nodes.is_empty() {
                f.fill(t, ti, 0, 0, 0);
            }
            f.shap.push(TreeTable::build(t));
        }
        f
    }

    fn fill(&mut self, t: &Tree, ti: usize, node: usize, pos: usize, level: usize) {
        let n_inner = (1usize << self.depth) - 1;
        let Some(n) = t.nodes.get(node) else {
            return;
        };
        if level == self.depth {
            if let Some(slot) = self.leaf.get_mut(ti * (n_inner + 1) + pos - n_inner) {
                *slot = n.value;
            }
            return;
        }
        let k = ti * n_inner + pos;
        if n.feature < 0 {
            self.split[k] = Split {
                threshold: f64::INFINITY,
                feature: 0,
            };
            self.fill(t, ti, node, 2 * pos + 1, level + 1);
            self.fill(t, ti, node, 2 * pos + 2, level + 1);
        } else {
            self.split[k] = Split {
                threshold: n.threshold,
                feature: n.feature as u32,
            };
            self.fill(t, ti, n.left as usize, 2 * pos + 1, level + 1);
            self.fill(t, ti, n.right as usize, 2 * pos + 2, level + 1);
        }
    }

    /// Prediction; `x` must be finite (a missing feature index reads as 0).
    #[inline]
    pub fn predict(&self, x: &[f64]) -> f64 {
        const LANES: usize = 8;
        let n_inner = (1usize << self.depth) - 1;
        let xv = |f: u32| x.get(f as usize).copied().unwrap_or(0.0);
        let mut sum = self.base;
        let mut t = 0usize;
        // Several trees at once: independent chains of loads keep the core busy.
        while t + LANES <= self.n_trees {
            let mut idx = [0usize; LANES];
            for _ in 0..self.depth {
                for (k, i) in idx.iter_mut().enumerate() {
                    let s = &self.split[(t + k) * n_inner + *i];
                    *i = 2 * *i + 1 + usize::from(xv(s.feature) > s.threshold);
                }
            }
            for (k, i) in idx.iter().enumerate() {
                sum += self.leaf[(t + k) * (n_inner + 1) + *i - n_inner];
            }
            t += LANES;
        }
        while t < self.n_trees {
            let mut i = 0usize;
            for _ in 0..self.depth {
                let s = &self.split[t * n_inner + i];
                i = 2 * i + 1 + usize::from(xv(s.feature) > s.threshold);
            }
            sum += self.leaf[t * (n_inner + 1) + i - n_inner];
            t += 1;
        }
        sum
    }

    /// Expected value (SHAP base value).
    pub fn expected_value(&self) -> f64 {
        self.expected
    }

    /// Exact path-dependent TreeSHAP from the precomputed leaf tables: adds to `phi`.
    /// Identical to [`Gbt::shap`] (tested), several times faster.
    pub fn shap(&self, x: &[f64], phi: &mut [f64]) {
        let mut dec = [false; 1 << MAX_DEPTH];
        for t in &self.shap {
            for (d, (_, f, th)) in dec.iter_mut().zip(&t.inner) {
                *d = x.get(*f as usize).copied().unwrap_or(0.0) <= *th;
            }
            for l in &t.leaves {
                let u = l.feats.len();
                if u == 0 {
                    continue;
                }
                let mut ones = u32::MAX;
                for &(i, left, slot) in &l.conds {
                    if dec[i as usize] != left {
                        ones &= !(1u32 << slot);
                    }
                }
                let pattern = (ones & ((1u32 << u) - 1)) as usize;
                let row = &l.table[pattern * u..(pattern + 1) * u];
                for (f, w) in l.feats.iter().zip(row) {
                    if let Some(p) = phi.get_mut(*f as usize) {
                        *p += w;
                    }
                }
            }
        }
    }
}

impl TreeTable {
    fn build(t: &Tree) -> TreeTable {
        let inner: Vec<(usize, u32, f64)> = t
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.feature >= 0)
            .map(|(i, n)| (i, n.feature as u32, n.threshold))
            .collect();
        let mut tt = TreeTable {
            inner,
            leaves: Vec::new(),
        };
        if t.nodes.first().is_some_and(|n| n.cover > 0.0) {
            let mut path = Vec::new();
            tt.walk(t, 0, &mut path);
        }
        tt
    }

    /// Depth-first walk; `path` holds (inner position, feature, went left, cover ratio).
    fn walk(&mut self, t: &Tree, node: usize, path: &mut Vec<(u16, u32, bool, f64)>) {
        let Some(n) = t.nodes.get(node) else {
            return;
        };
        if n.feature < 0 {
            self.leaves.push(LeafTable::build(path, n.value));
            return;
        }
        let pos = self.inner.iter().position(|e| e.0 == node).unwrap_or(0) as u16;
        for (child, left) in [(n.left as usize, true), (n.right as usize, false)] {
            let cc = t.nodes.get(child).map_or(0.0, |c| c.cover);
            let ratio = if n.cover > 0.0 { cc / n.cover } else { 0.0 };
            path.push((pos, n.feature as u32, left, ratio));
            self.walk(t, child, path);
            path.pop();
        }
    }
}

impl LeafTable {
    fn build(path: &[(u16, u32, bool, f64)], value: f64) -> LeafTable {
        let mut feats: Vec<u32> = Vec::new();
        let mut zero: Vec<f64> = Vec::new();
        let mut conds = Vec::with_capacity(path.len());
        for &(pos, f, left, ratio) in path {
            let slot = match feats.iter().position(|g| *g == f) {
                Some(s) => {
                    zero[s] *= ratio;
                    s
                }
                None => {
                    feats.push(f);
                    zero.push(ratio);
                    feats.len() - 1
                }
            };
            conds.push((pos, left, slot as u8));
        }
        let u = feats.len();
        let mut table = vec![0.0; (1usize << u) * u];
        let mut p = [PathElem::default(); MAX_DEPTH + 2];
        for pattern in 0..(1usize << u) {
            extend_path(&mut p, 0, 1.0, 1.0, -1);
            for k in 0..u {
                let one = if pattern & (1 << k) != 0 { 1.0 } else { 0.0 };
                extend_path(&mut p, k + 1, zero[k], one, feats[k] as i32);
            }
            for k in 0..u {
                let w = unwound_sum(&p, u, k + 1);
                let el = p[k + 1];
                table[pattern * u + k] = w * (el.one - el.zero) * value;
            }
        }
        LeafTable {
            conds,
            feats,
            table,
        }
    }
}

/// Training parameters of one ensemble.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbtParams {
    /// Boosting rounds.
    pub rounds: usize,
    /// Tree depth (1..=8).
    pub max_depth: usize,
    /// Shrinkage.
    pub learning_rate: f64,
    /// Minimum samples per leaf.
    pub min_leaf: usize,
    /// L2 penalty on leaf values.
    pub lambda: f64,
    /// Row subsample per round (0..1].
    pub subsample: f64,
    /// Histogram bins per feature (2..=255).
    pub n_bins: usize,
    /// Seed of the row subsampling.
    pub seed: u64,
}

impl Default for GbtParams {
    fn default() -> Self {
        GbtParams {
            rounds: 120,
            max_depth: 4,
            learning_rate: 0.1,
            min_leaf: 20,
            lambda: 1.0,
            subsample: 0.8,
            n_bins: 64,
            seed: 7,
        }
    }
}

/// Row-major training matrix.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    /// Number of columns.
    pub n_cols: usize,
    /// Values, row-major.
    pub data: Vec<f64>,
}

impl Matrix {
    /// An empty matrix with `n_cols` columns.
    pub fn new(n_cols: usize) -> Self {
        Matrix {
            n_cols,
            data: Vec::new(),
        }
    }
    /// Appends a row (shorter rows are padded with 0, longer ones cut).
    pub fn push(&mut self, row: &[f64]) {
        for j in 0..self.n_cols {
            let v = row.get(j).copied().unwrap_or(0.0);
            self.data.push(if v.is_finite() { v } else { 0.0 });
        }
    }
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.data.len().checked_div(self.n_cols).unwrap_or(0)
    }
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }
}

struct Binned {
    n: usize,
    /// Column-major bin indices.
    bins: Vec<u8>,
    /// Cut values per feature (bin b ⇔ cuts[b-1] < v <= cuts[b]).
    cuts: Vec<Vec<f64>>,
}

fn bin_matrix(x: &Matrix, n_bins: usize) -> Binned {
    let n = x.n_rows();
    let nb = n_bins.clamp(2, 255);
    let mut cuts = Vec::with_capacity(x.n_cols);
    let mut bins = vec![0u8; n * x.n_cols];
    let mut col = Vec::with_capacity(n);
    for j in 0..x.n_cols {
        col.clear();
        col.extend((0..n).map(|i| x.data[i * x.n_cols + j]));
        col.sort_by(f64::total_cmp);
        col.dedup();
        let mut c: Vec<f64> = Vec::new();
        if col.len() <= nb {
            // Midpoints between consecutive unique values.
            c.extend(col.windows(2).map(|w| 0.5 * (w[0] + w[1])));
        } else {
            for k in 1..nb {
                let i = k * col.len() / nb;
                let v = 0.5 * (col[i - 1] + col[i]);
                if c.last().is_none_or(|l| *l < v) {
                    c.push(v);
                }
            }
        }
        for i in 0..n {
            let v = x.data[i * x.n_cols + j];
            bins[j * n + i] = c.partition_point(|cut| *cut < v) as u8;
        }
        cuts.push(c);
    }
    Binned { n, bins, cuts }
}

struct Lcg(u64);
impl Lcg {
    fn next_f64(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Fits an ensemble to `y` (squared loss). `progress` is called once per round.
pub fn fit(x: &Matrix, y: &[f64], p: &GbtParams, progress: &mut dyn FnMut()) -> Gbt {
    let n = x.n_rows().min(y.len());
    if n == 0 {
        return Gbt::constant(x.n_cols, 0.0);
    }
    let base = y[..n].iter().sum::<f64>() / n as f64;
    let mut g = Gbt::constant(x.n_cols, base);
    let binned = bin_matrix(x, p.n_bins);
    let mut pred = vec![base; n];
    let mut resid = vec![0.0; n];
    let mut rng = Lcg(p.seed ^ 0x9E37_79B9_7F4A_7C15);
    let depth = p.max_depth.clamp(1, MAX_DEPTH);
    let mut idx: Vec<u32> = Vec::with_capacity(n);
    for _ in 0..p.rounds {
        for i in 0..n {
            resid[i] = y[i] - pred[i];
        }
        idx.clear();
        let sub = p.subsample.clamp(0.05, 1.0);
        idx.extend((0..n as u32).filter(|_| sub >= 1.0 || rng.next_f64() < sub));
        if idx.len() < 2 * p.min_leaf.max(1) {
            idx.clear();
            idx.extend(0..n as u32);
        }
        let mut nodes = Vec::new();
        grow(&binned, &resid, &mut idx, depth, p, &mut nodes);
        let tree = Tree { nodes };
        for (i, pr) in pred.iter_mut().enumerate() {
            *pr += tree.predict(x.row(i));
        }
        g.trees.push(tree);
        progress();
    }
    g
}

fn grow(b: &Binned, r: &[f64], idx: &mut [u32], depth: usize, p: &GbtParams, out: &mut Vec<Node>) {
    let me = out.len();
    let cnt = idx.len() as f64;
    let sum: f64 = idx.iter().map(|&i| r[i as usize]).sum();
    out.push(Node {
        feature: -1,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: p.learning_rate * sum / (cnt + p.lambda),
        cover: cnt,
    });
    let min_leaf = p.min_leaf.max(1);
    if depth == 0 || idx.len() < 2 * min_leaf {
        return;
    }
    let parent_score = sum * sum / (cnt + p.lambda);
    let mut best: Option<(f64, usize, usize)> = None;
    let mut hs = [0.0f64; 256];
    let mut hc = [0u32; 256];
    for (f, cuts) in b.cuts.iter().enumerate() {
        if cuts.is_empty() {
            continue;
        }
        let nb = cuts.len() + 1;
        hs[..nb].fill(0.0);
        hc[..nb].fill(0);
        let col = &b.bins[f * b.n..(f + 1) * b.n];
        for &i in idx.iter() {
            let k = col[i as usize] as usize;
            hs[k] += r[i as usize];
            hc[k] += 1;
        }
        let (mut sl, mut nl) = (0.0, 0usize);
        for k in 0..cuts.len() {
            sl += hs[k];
            nl += hc[k] as usize;
            let nr = idx.len() - nl;
            if nl < min_leaf {
                continue;
            }
            if nr < min_leaf {
                break;
            }
            let sr = sum - sl;
            let gain =
                sl * sl / (nl as f64 + p.lambda) + sr * sr / (nr as f64 + p.lambda) - parent_score;
            if gain > best.map_or(1e-12, |b| b.0) {
                best = Some((gain, f, k));
            }
        }
    }
    let Some((_, f, k)) = best else {
        return;
    };
    let col = &b.bins[f * b.n..(f + 1) * b.n];
    // Partition in place: left = bin <= k.
    let mut lo = 0usize;
    for j in 0..idx.len() {
        if (col[idx[j] as usize] as usize) <= k {
            idx.swap(lo, j);
            lo += 1;
        }
    }
    let (li, ri) = idx.split_at_mut(lo);
    let left = out.len();
    grow(b, r, li, depth - 1, p, out);
    let right = out.len();
    grow(b, r, ri, depth - 1, p, out);
    let node = &mut out[me];
    node.feature = f as i32;
    node.threshold = b.cuts[f][k];
    node.left = left as u32;
    node.right = right as u32;
    node.value = 0.0;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Matrix, Vec<f64>) {
        let mut x = Matrix::new(4);
        let mut y = Vec::new();
        let mut r = Lcg(3);
        for _ in 0..2000 {
            let a = r.next_f64();
            let b = r.next_f64();
            let c = r.next_f64();
            let d = r.next_f64();
            x.push(&[a, b, c, d]);
            y.push(3.0 * a + if b > 0.5 { 2.0 * c } else { -1.0 } + 0.1 * d);
        }
        (x, y)
    }

    #[test]
    fn fits_a_simple_function() {
        let (x, y) = toy();
        let p = GbtParams {
            rounds: 150,
            ..GbtParams::default()
        };
        let g = fit(&x, &y, &p, &mut || {});
        g.validate().unwrap();
        let mse: f64 = (0..x.n_rows())
            .map(|i| (g.predict(x.row(i)) - y[i]).powi(2))
            .sum::<f64>()
            / x.n_rows() as f64;
        assert!(mse < 0.02, "mse {mse}");
    }

    #[test]
    fn shap_is_additive_and_matches_brute_force() {
        let (x, y) = toy();
        let p = GbtParams {
            rounds: 30,
            max_depth: 5,
            ..GbtParams::default()
        };
        let g = fit(&x, &y, &p, &mut || {});
        for i in [0usize, 17, 999] {
            let row = x.row(i);
            let mut phi = vec![0.0; 4];
            g.shap(row, &mut phi);
            let sum: f64 = phi.iter().sum();
            let want = g.predict(row) - g.expected_value();
            assert!((sum - want).abs() < 1e-9, "sum {sum} want {want}");
            let fast = FastGbt::build(&g);
            let mut phi2 = vec![0.0; 4];
            fast.shap(row, &mut phi2);
            assert!((fast.predict(row) - g.predict(row)).abs() < 1e-9);
            assert!((fast.expected_value() - g.expected_value()).abs() < 1e-12);
            for f in 0..4 {
                assert!(
                    (phi[f] - phi2[f]).abs() < 1e-9,
                    "fast f{f}: {} vs {}",
                    phi[f],
                    phi2[f]
                );
            }
            // Brute force Shapley values on the path-dependent value function.
            let brute = brute_shap(&g, row);
            for f in 0..4 {
                assert!(
                    (phi[f] - brute[f]).abs() < 1e-9,
                    "f{f}: {} vs {}",
                    phi[f],
                    brute[f]
                );
            }
        }
    }

    /// E[f(x) | x_S] with the path-dependent (cover-weighted) rule, per tree.
    fn cond_exp(t: &Tree, x: &[f64], s: u32, i: usize) -> f64 {
        let n = t.nodes[i];
        if n.feature < 0 {
            return n.value;
        }
        let f = n.feature as usize;
        if s & (1 << f) != 0 {
            let next = if x[f] <= n.threshold { n.left } else { n.right } as usize;
            cond_exp(t, x, s, next)
        } else {
            let l = &t.nodes[n.left as usize];
            let r = &t.nodes[n.right as usize];
            (l.cover * cond_exp(t, x, s, n.left as usize)
                + r.cover * cond_exp(t, x, s, n.right as usize))
                / n.cover
        }
    }

    fn brute_shap(g: &Gbt, x: &[f64]) -> Vec<f64> {
        let m = 4usize;
        let v = |s: u32| g.trees.iter().map(|t| cond_exp(t, x, s, 0)).sum::<f64>();
        let fact = |k: usize| (1..=k).product::<usize>().max(1) as f64;
        let mut phi = vec![0.0; m];
        for f in 0..m {
            for s in 0u32..(1 << m) {
                if s & (1 << f) != 0 {
                    continue;
                }
                let k = s.count_ones() as usize;
                let w = fact(k) * fact(m - k - 1) / fact(m);
                phi[f] += w * (v(s | (1 << f)) - v(s));
            }
        }
        phi
    }
}
