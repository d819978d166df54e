//! Where a backbone's parameters come from: a checkpoint, checked name by name and shape by
//! shape, or a seeded random initialisation.

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::Init;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal, Uniform};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// Checkpoint tensors served to a model being built. Every request is recorded; a missing
/// name or a wrong shape does not stop the build (a zero tensor stands in), so that one
/// report can list every problem at once. Clones share the tensors and the report.
#[derive(Clone)]
pub struct CheckedTensors {
    tensors: Arc<HashMap<String, Tensor>>,
    report: Arc<Mutex<FitReport>>,
}

/// What did not fit between a checkpoint and an architecture.
#[derive(Debug, Default)]
pub struct FitReport {
    /// Names the architecture asked for and the checkpoint lacks.
    pub missing: Vec<String>,
    /// Names with the wrong shape: (name, checkpoint shape, expected shape).
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Names the architecture requested, in order.
    pub used: BTreeSet<String>,
}

impl CheckedTensors {
    /// Wraps the tensors of a checkpoint.
    pub fn new(tensors: HashMap<String, Tensor>) -> Self {
        Self {
            tensors: Arc::new(tensors),
            report: Arc::new(Mutex::new(FitReport::default())),
        }
    }

    /// The report so far, and the checkpoint names never requested (`ignore` filters out
    /// those that are expected to be left over, such as a classifier head).
    pub fn finish(&self, ignore: impl Fn(&str) -> bool) -> (FitReport, Vec<String>) {
        let report = std::mem::take(&mut *self.report.lock().unwrap_or_else(|e| e.into_inner()));
        let mut unexpected: Vec<String> = self
            .tensors
            .keys()
            .filter(|k| !report.used.contains(*k) && !ignore(k))
            .cloned()
            .collect();
        unexpected.sort();
        (report, unexpected)
    }
}

impl SimpleBackend for CheckedTensors {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.used.insert(name.to_string());
        match self.tensors.get(name) {
            Some(t) if t.shape() == &s => t.to_dtype(dtype)?.to_device(dev),
            Some(t) => {
                report
                    .mismatched
                    .push((name.to_string(), t.dims().to_vec(), s.dims().to_vec()));
                Tensor::zeros(s, dtype, dev)
            }
            None => {
                report.missing.push(name.to_string());
                Tensor::zeros(s, dtype, dev)
            }
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        match self.tensors.get(name) {
            Some(t) => t.to_dtype(dtype)?.to_device(dev),
            None => candle_core::bail!("no tensor `{name}` in the checkpoint"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }
}

/// Seeded random initialisation following each parameter's init hint. Every parameter
/// draws from its own generator, seeded by the run seed and the parameter name, so the
/// weights do not depend on the order in which modules are built.
pub struct RandomInit {
    seed: u64,
}

impl RandomInit {
    /// A random-initialised parameter source for `seed`.
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }
}

fn name_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a over the name, mixed with the seed: stable across platforms and releases.
    name.bytes().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl SimpleBackend for RandomInit {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let n = s.elem_count();
        let mut rng = rand::rngs::StdRng::seed_from_u64(name_seed(self.seed, name));
        let values: Vec<f32> = match h {
            Init::Const(c) => vec![c as f32; n],
            Init::Randn { mean, stdev } => {
                let d = Normal::new(mean, stdev).map_err(candle_core::Error::wrap)?;
                (0..n).map(|_| d.sample(&mut rng) as f32).collect()
            }
            Init::Uniform { lo, up } => {
                let d = Uniform::new(lo, up).map_err(candle_core::Error::wrap)?;
                (0..n).map(|_| d.sample(&mut rng) as f32).collect()
            }
            Init::Kaiming { .. } => {
                candle_core::bail!("use an explicit Randn/Uniform init for `{name}`")
            }
        };
        Tensor::from_vec(values, s, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        candle_core::bail!("random init cannot serve `{name}` without a shape")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}
