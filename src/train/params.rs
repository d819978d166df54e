//! The parameters of a model being trained, by their published names: every tensor a model
//! asks its `VarBuilder` for becomes a `Var` recorded here, so the optimiser, the checkpoint
//! and the frozen benchmark trunk all address the same names.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What a recorded tensor is to the optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A weight matrix or kernel: trained, weight decay applies.
    Weight,
    /// A bias or a batch-norm scale or shift (any 1-D parameter): trained, decay optional.
    Vector,
    /// A batch-norm running statistic: updated by the forward pass, never by the optimiser.
    Buffer,
}

impl ParamKind {
    /// The kind of a tensor from its name and rank.
    pub fn of(name: &str, rank: usize) -> Self {
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            ParamKind::Buffer
        } else if rank <= 1 {
            ParamKind::Vector
        } else {
            ParamKind::Weight
        }
    }
}

/// The named variables of a model, in the order the model asked for them. Clones share them.
#[derive(Clone, Default)]
pub struct Params {
    entries: Arc<Mutex<Vec<(String, Var)>>>,
}

impl Params {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `VarBuilder` whose tensors come from `source` (a seeded random init or a
    /// checkpoint) and are recorded here as variables.
    pub fn var_builder(
        &self,
        source: Box<dyn SimpleBackend + 'static>,
        device: &Device,
    ) -> VarBuilder<'static> {
        self.var_builder_as(source, DType::F32, device)
    }

    /// [`Params::var_builder`] with the variables in `dtype`.
    pub fn var_builder_as(
        &self,
        source: Box<dyn SimpleBackend + 'static>,
        dtype: DType,
        device: &Device,
    ) -> VarBuilder<'static> {
        let recorder = Recorder {
            source,
            params: self.clone(),
        };
        VarBuilder::from_backend(Box::new(recorder), dtype, device.clone())
    }

    /// Records an existing variable under `name` (a model built without a `VarBuilder`).
    pub fn insert(&self, name: &str, var: Var) {
        self.lock().push((name.to_string(), var));
    }

    /// Every (name, variable, kind), in creation order.
    pub fn all(&self) -> Vec<(String, Var, ParamKind)> {
        self.lock()
            .iter()
            .map(|(n, v)| (n.clone(), v.clone(), ParamKind::of(n, v.rank())))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, Var)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of trained scalars (buffers excluded).
    pub fn trained_count(&self) -> usize {
        self.all()
            .iter()
            .filter(|(_, _, k)| *k != ParamKind::Buffer)
            .map(|(_, v, _)| v.elem_count())
            .sum()
    }

    /// The current values by name (on the CPU), e.g. to write a checkpoint.
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        self.lock()
            .iter()
            .map(|(n, v)| Ok((n.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
            .collect()
    }

    /// Sets every variable from `tensors`, which must hold each name with its shape; names
    /// `tensors` has beyond the model's are an error too (a checkpoint of another model).
    pub fn load(&self, tensors: &HashMap<String, Tensor>, origin: &Path) -> Result<()> {
        let entries = self.lock();
        let mut problems = Vec::new();
        for (name, var) in entries.iter() {
            match tensors.get(name) {
                Some(t) if t.dims() == var.dims() => var
                    .set(&t.to_dtype(var.dtype())?.to_device(var.device())?)
                    .with_context(|| format!("cannot set `{name}`"))?,
                Some(t) => problems.push(format!(
                    "`{name}`: checkpoint {:?} vs model {:?}",
                    t.dims(),
                    var.dims()
                )),
                None => problems.push(format!("`{name}` missing")),
            }
        }
        let known: std::collections::HashSet<&str> =
            entries.iter().map(|(n, _)| n.as_str()).collect();
        problems.extend(
            tensors
                .keys()
                .filter(|k| !known.contains(k.as_str()))
                .map(|k| format!("`{k}` unexpected")),
        );
        if !problems.is_empty() {
            problems.sort();
            bail!(
                "{} does not fit this model: {}; fix: resume with the config that wrote it",
                origin.display(),
                short_list(&problems, 8)
            );
        }
        Ok(())
    }
}

/// The backend of [`Params::var_builder`].
struct Recorder {
    source: Box<dyn SimpleBackend>,
    params: Params,
}

impl SimpleBackend for Recorder {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let t = self.source.get(s, name, h, dtype, dev)?;
        let var = Var::from_tensor(&t.contiguous()?)?;
        let mut entries = self.params.lock();
        if entries.iter().any(|(n, _)| n == name) {
            candle_core::bail!("parameter `{name}` requested twice");
        }
        entries.push((name.to_string(), var.clone()));
        Ok(var.as_tensor().clone())
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.source.get_unchecked(name, dtype, dev)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.source.contains_tensor(name)
    }
}

/// The first `shown` of `items`, comma-separated, then `(+N more)` for the rest: how a "does
/// not fit" message lists names.
pub fn short_list(items: &[String], shown: usize) -> String {
    let more = items.len().saturating_sub(shown);
    let head: Vec<&str> = items.iter().take(shown).map(String::as_str).collect();
    match more {
        0 => head.join(", "),
        n => format!("{} (+{n} more)", head.join(", ")),
    }
}
