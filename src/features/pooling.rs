//! Pooling of tap maps to ~9k dims (protocols.md section 1), or dense maps kept whole.

use crate::backbone::{Family, Tap};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One average pool: kernel, stride and zero padding counted in the average.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Square kernel.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
}

/// What is stored per tap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PoolMode {
    /// The protocol's average pool, flattened.
    Avg,
    /// The unpooled map (C x H x W), for dense tasks.
    Dense,
}

/// The pooling of one architecture family: a mode and a table from taps to pools.
#[derive(Clone, Debug, PartialEq)]
pub struct Pooling {
    /// Pooled or dense.
    pub mode: PoolMode,
    /// Average pool per spatial tap; taps that are already vectors (pool5) are absent.
    pub table: BTreeMap<String, PoolSpec>,
}

impl Pooling {
    /// Reads `[pooling]` and `[pooling.<family>]` from a config document.
    pub fn from_doc(doc: &toml::Table, family: Family) -> Result<Self> {
        let section = doc
            .get("pooling")
            .and_then(|v| v.as_table())
            .context("config has no [pooling] section")?;
        let mode = section
            .get("mode")
            .cloned()
            .context("[pooling] has no `mode`")?
            .try_into()
            .context("pooling.mode must be \"avg\" or \"dense\"")?;
        let table = match section.get(family.name()) {
            Some(t) => t
                .clone()
                .try_into()
                .with_context(|| format!("invalid [pooling.{}]", family.name()))?,
            None => BTreeMap::new(),
        };
        Ok(Self { mode, table })
    }

    /// The paper's pooling for `family`, from the shipped `tasks/extract.toml`.
    pub fn protocol(family: Family) -> Self {
        let doc = crate::config::shipped("extract.toml").expect("tasks/extract.toml is shipped");
        Self::from_doc(&doc, family).expect("tasks/extract.toml is valid")
    }

    /// The pool for `tap`: `None` for vector taps and in dense mode.
    pub fn get(&self, tap: Tap) -> Option<PoolSpec> {
        match self.mode {
            PoolMode::Dense => None,
            PoolMode::Avg => self.table.get(tap.name()).copied(),
        }
    }

    /// A readable description of what `tap` gets, for cache keys: `avg:10/10/4`, `dense`,
    /// `flat`.
    pub fn describe(&self, tap: Tap) -> String {
        match (self.mode, self.get(tap)) {
            (PoolMode::Dense, _) => "dense".into(),
            (PoolMode::Avg, Some(p)) => format!("avg:{}/{}/{}", p.kernel, p.stride, p.pad),
            (PoolMode::Avg, None) => "flat".into(),
        }
    }

    /// Checks that every spatial tap of `taps` has a pool in avg mode.
    pub fn check(&self, family: Family, taps: &[Tap]) -> Result<()> {
        for &tap in taps {
            if self.mode == PoolMode::Avg && tap != Tap::Pool5 && self.get(tap).is_none() {
                bail!(
                    "no pooling for tap {tap}: add `{tap} = {{ kernel = .., stride = .., pad = .. }}` \
                     under [pooling.{}]",
                    family.name()
                );
            }
        }
        Ok(())
    }
}

/// Pools one tap's NCHW map and flattens it to N x D (`None` keeps it whole: dense maps stay
/// N x C x H x W, vectors stay N x D).
pub fn pool(map: &Tensor, spec: Option<PoolSpec>) -> Result<Tensor> {
    match spec {
        Some(p) => {
            let (_, _, h, w) = map
                .dims4()
                .context("pooling expects an N x C x H x W map")?;
            if h + 2 * p.pad < p.kernel || w + 2 * p.pad < p.kernel {
                bail!(
                    "a {h}x{w} map is smaller than the {}-pixel pooling kernel: check the input size",
                    p.kernel
                );
            }
            Ok(sslbench_ops::avg_pool_padded(map, p.kernel, p.stride, p.pad)?.flatten_from(1)?)
        }
        None => Ok(map.clone()),
    }
}
