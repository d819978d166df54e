//! Optimisers: SGD with momentum (plain or Nesterov) in the form of Caffe2's
//! `MomentumSGDUpdate` (FAIR's solver), and AdamW; L2 weight decay on the parameters that take
//! it (by default not the biases and batch-norm vectors); clipping by global gradient norm;
//! and the moments as named tensors, so a checkpoint resumes the run exactly.
//!
//! SGD's velocity accumulates `lr * gradient`: `v' = m v + lr g`, then the parameter moves by
//! `v'` (plain) or `(1 + m) v' - m v` (Nesterov). With a constant rate this is exactly
//! PyTorch's `torch.optim.SGD`; after a step of the schedule the velocity still carries the
//! old rate's updates for a few iterations, as in Caffe2. Weight decay adds `wd * param` to
//! the gradient. AdamW follows Loshchilov and Hutter (PyTorch's `AdamW`): the decay
//! `lr * wd * param` is applied apart from the bias-corrected Adam step.

use anyhow::{bail, Context, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The update rule and its own constants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Method {
    /// SGD with momentum.
    Sgd {
        /// Momentum (0.9 in the paper).
        momentum: f64,
        /// Nesterov's update instead of the plain one.
        nesterov: bool,
    },
    /// AdamW.
    Adamw {
        /// Decay of the first moment.
        beta1: f64,
        /// Decay of the second moment.
        beta2: f64,
        /// Added to the root of the second moment.
        eps: f64,
    },
}

/// An optimiser's configuration (the `[optimizer]` table of a pretext config).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// The update rule.
    pub method: Method,
    /// Weight decay.
    pub weight_decay: f64,
    /// Whether the decay also applies to 1-D parameters (biases, batch-norm scales and
    /// shifts); FAIR's and VISSL's pretext runs leave them out.
    pub decay_vectors: bool,
    /// Rescale the gradients so their global L2 norm is at most this (absent: no clipping).
    #[serde(default)]
    pub clip_norm: Option<f64>,
}

/// One parameter with its moments.
struct Slot {
    name: String,
    var: Var,
    decay: bool,
    /// The parameter's rate as a multiple of the schedule's (Detectron's biases: 2).
    lr_mult: f64,
    first: Tensor,
    second: Option<Tensor>,
}

/// An optimiser over a set of named variables.
pub struct Optimizer {
    cfg: OptimizerConfig,
    slots: Vec<Slot>,
    steps: usize,
}

impl Optimizer {
    /// An optimiser with no parameters yet.
    pub fn new(cfg: OptimizerConfig) -> Self {
        Self {
            cfg,
            slots: Vec::new(),
            steps: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OptimizerConfig {
        &self.cfg
    }

    /// Adds a parameter under `name`; `decay` says whether weight decay applies to it.
    pub fn add(&mut self, name: &str, var: Var, decay: bool) -> candle_core::Result<()> {
        self.add_scaled(name, var, decay, 1.0)
    }

    /// [`Optimizer::add`] for a parameter that trains at `lr_mult` times the rate.
    pub fn add_scaled(
        &mut self,
        name: &str,
        var: Var,
        decay: bool,
        lr_mult: f64,
    ) -> candle_core::Result<()> {
        let first = var.as_tensor().zeros_like()?.detach();
        let second = match self.cfg.method {
            Method::Adamw { .. } => Some(first.clone()),
            Method::Sgd { .. } => None,
        };
        self.slots.push(Slot {
            name: name.to_string(),
            var,
            decay,
            lr_mult,
            first,
            second,
        });
        Ok(())
    }

    /// The global L2 norm of the gradients of this optimiser's parameters.
    pub fn grad_norm(&self, grads: &GradStore) -> candle_core::Result<f64> {
        let mut total = 0.0;
        for slot in &self.slots {
            if let Some(g) = grads.get(slot.var.as_tensor()) {
                total += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
            }
        }
        Ok(total.sqrt())
    }

    /// One update at learning rate `lr` from the gradients of a `backward` pass, clipped
    /// first when `clip_norm` is set. Parameters without a gradient are left alone. Returns
    /// the gradient norm before clipping when clipping is on.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> candle_core::Result<Option<f64>> {
        let (norm, scale) = match self.cfg.clip_norm {
            Some(max) => {
                let norm = self.grad_norm(grads)?;
                (
                    Some(norm),
                    if norm > max { max / (norm + 1e-6) } else { 1.0 },
                )
            }
            None => (None, 1.0),
        };
        self.steps += 1;
        let t = self.steps as i32;
        let wd = self.cfg.weight_decay;
        for slot in &mut self.slots {
            let Some(grad) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let grad = if scale == 1.0 {
                grad.clone()
            } else {
                (grad * scale)?
            };
            let param = slot.var.as_tensor().detach();
            let decay = slot.decay && wd != 0.0;
            let lr = lr * slot.lr_mult;
            let next = match self.cfg.method {
                Method::Sgd { momentum, nesterov } if fused_runs(&param, &slot.first, &grad) => {
                    let coef = SgdCoefficients {
                        lr,
                        momentum,
                        nesterov,
                        decay: if decay { wd } else { 0.0 },
                    };
                    let (next, velocity) = sgd_fused(&param, &slot.first, &grad, coef)?;
                    slot.first = velocity;
                    next
                }
                Method::Sgd { momentum, nesterov } => {
                    let grad = if decay {
                        (grad + param.affine(wd, 0.0)?)?
                    } else {
                        grad
                    };
                    let velocity = ((&slot.first * momentum)? + (grad * lr)?)?;
                    let update = if nesterov {
                        ((&velocity * (1.0 + momentum))? - (&slot.first * momentum)?)?
                    } else {
                        velocity.clone()
                    };
                    slot.first = velocity.detach();
                    (param - update)?
                }
                Method::Adamw { beta1, beta2, eps } => {
                    let second = slot.second.as_ref().unwrap_or(&slot.first);
                    let m = ((&slot.first * beta1)? + (&grad * (1.0 - beta1))?)?;
                    let v = ((second * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
                    let m_hat = (&m / (1.0 - beta1.powi(t)))?;
                    let v_hat = (&v / (1.0 - beta2.powi(t)))?;
                    let step = (m_hat / (v_hat.sqrt()? + eps)?)?;
                    let param = if decay {
                        param.affine(1.0 - lr * wd, 0.0)?
                    } else {
                        param
                    };
                    slot.first = m.detach();
                    slot.second = Some(v.detach());
                    (param - (step * lr)?)?
                }
            };
            slot.var.set(&next)?;
        }
        Ok(norm)
    }

    /// Multiplies every SGD velocity by `factor`: Detectron's `SCALE_MOMENTUM`, which keeps
    /// the velocity (it carries `lr * gradient`) in step with a new rate.
    pub fn scale_velocity(&mut self, factor: f64) -> candle_core::Result<()> {
        if matches!(self.cfg.method, Method::Sgd { .. }) {
            for slot in &mut self.slots {
                slot.first = (&slot.first * factor)?.detach();
            }
        }
        Ok(())
    }

    /// Updates taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The moments by name (`first.<param>`, `second.<param>`), for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for slot in &self.slots {
            out.insert(format!("first.{}", slot.name), slot.first.clone());
            if let Some(s) = &slot.second {
                out.insert(format!("second.{}", slot.name), s.clone());
            }
        }
        out
    }

    /// Restores the moments written by [`Optimizer::state`] and the step count.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, steps: usize) -> Result<()> {
        for slot in &mut self.slots {
            let get = |kind: &str| -> Result<Tensor> {
                let key = format!("{kind}.{}", slot.name);
                let t = state
                    .get(&key)
                    .with_context(|| format!("optimiser state lacks `{key}`"))?;
                if t.dims() != slot.var.dims() {
                    bail!(
                        "optimiser state `{key}` has shape {:?}, the parameter {:?}",
                        t.dims(),
                        slot.var.dims()
                    );
                }
                Ok(t.to_device(slot.var.device())?.to_dtype(slot.var.dtype())?)
            };
            slot.first = get("first")?;
            if slot.second.is_some() {
                slot.second = Some(get("second")?);
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// The SGD step's numbers, for [`sgd_fused`].
#[derive(Clone, Copy, Debug)]
struct SgdCoefficients {
    lr: f64,
    momentum: f64,
    nesterov: bool,
    /// Weight decay, 0 for a parameter that is not decayed.
    decay: f64,
}

/// Whether [`sgd_fused`] can run: contiguous f32 tensors on the CPU.
fn fused_runs(param: &Tensor, first: &Tensor, grad: &Tensor) -> bool {
    [param, first, grad]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
}

/// The SGD step in one pass over the parameter, its velocity and its gradient, in the same
/// f32 operations, in the same order, as the chain of candle ops it replaces (which allocates
/// and sweeps 25M-element tensors six times on a ResNet-50), so the result is bit-identical:
/// g' = g + decay.w; v' = momentum.v + lr.g'; w' = w - v' (Nesterov: w - ((1 + momentum).v' -
/// momentum.v)). Returns (w', v').
fn sgd_fused(
    param: &Tensor,
    first: &Tensor,
    grad: &Tensor,
    c: SgdCoefficients,
) -> candle_core::Result<(Tensor, Tensor)> {
    use candle_core::{CpuStorage, Storage};
    use rayon::prelude::*;
    let n = param.elem_count();
    let (sw, lw) = param.storage_and_layout();
    let (sv, lv) = first.storage_and_layout();
    let (sg, lg) = grad.storage_and_layout();
    let (
        Storage::Cpu(CpuStorage::F32(w)),
        Storage::Cpu(CpuStorage::F32(v)),
        Storage::Cpu(CpuStorage::F32(g)),
    ) = (&*sw, &*sv, &*sg)
    else {
        candle_core::bail!("sgd_fused: f32 CPU tensors only");
    };
    if first.elem_count() != n || grad.elem_count() != n {
        candle_core::bail!("sgd_fused: parameter, velocity and gradient differ in size");
    }
    let w = &w[lw.start_offset()..lw.start_offset() + n];
    let v = &v[lv.start_offset()..lv.start_offset() + n];
    let g = &g[lg.start_offset()..lg.start_offset() + n];
    let (lr, mu, wd, mu1) = (
        c.lr as f32,
        c.momentum as f32,
        c.decay as f32,
        (1.0 + c.momentum) as f32,
    );
    let mut next = vec![0f32; w.len()];
    let mut velocity = vec![0f32; w.len()];
    next.par_chunks_mut(1 << 14)
        .zip(velocity.par_chunks_mut(1 << 14))
        .enumerate()
        .for_each(|(i, (nw, nv))| {
            let at = i << 14;
            for j in 0..nw.len() {
                let (wj, vj, gj) = (w[at + j], v[at + j], g[at + j]);
                let gj = if c.decay != 0.0 {
                    gj + (wj * wd + 0.0)
                } else {
                    gj
                };
                let vel = vj * mu + gj * lr;
                let update = if c.nesterov { vel * mu1 - vj * mu } else { vel };
                nw[j] = wj - update;
                nv[j] = vel;
            }
        });
    drop((sw, sv, sg));
    Ok((
        Tensor::from_vec(next, param.shape(), param.device())?,
        Tensor::from_vec(velocity, first.shape(), first.device())?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn sgd(nesterov: bool) -> OptimizerConfig {
        OptimizerConfig {
            method: Method::Sgd {
                momentum: 0.9,
                nesterov,
            },
            weight_decay: 0.1,
            decay_vectors: false,
            clip_norm: None,
        }
    }

    /// The fused SGD step is bit-identical to the candle-op chain it replaces, plain and
    /// Nesterov, with and without decay.
    #[test]
    fn fused_sgd_equals_the_op_chain() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, 1000, &dev).unwrap();
        let v = Tensor::randn(0f32, 0.1, 1000, &dev).unwrap();
        let g = Tensor::randn(0f32, 0.5, 1000, &dev).unwrap();
        for (nesterov, decay) in [(false, 0.0), (false, 1e-4), (true, 5e-4)] {
            let (lr, momentum) = (0.05, 0.9);
            let c = SgdCoefficients {
                lr,
                momentum,
                nesterov,
                decay,
            };
            let (fw, fv) = sgd_fused(&w, &v, &g, c).unwrap();
            let gd = if decay != 0.0 {
                (&g + w.affine(decay, 0.0).unwrap()).unwrap()
            } else {
                g.clone()
            };
            let vel = ((&v * momentum).unwrap() + (gd * lr).unwrap()).unwrap();
            let update = if nesterov {
                ((&vel * (1.0 + momentum)).unwrap() - (&v * momentum).unwrap()).unwrap()
            } else {
                vel.clone()
            };
            let cw = (&w - update).unwrap();
            assert_eq!(fw.to_vec1::<f32>().unwrap(), cw.to_vec1::<f32>().unwrap());
            assert_eq!(fv.to_vec1::<f32>().unwrap(), vel.to_vec1::<f32>().unwrap());
        }
    }

    /// The gradients of `loss = sum(c * w)` (gradient `c`).
    fn linear_grads(w: &Var, c: &Tensor) -> GradStore {
        (w.as_tensor() * c)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    /// Two steps on `loss = sum(c * w)` (gradient `c`) at lr 0.1.
    fn two_steps(cfg: OptimizerConfig, decay: bool) -> Vec<f32> {
        let w = Var::from_tensor(&Tensor::new(&[1.0f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let c = Tensor::new(&[0.5f32, 3.0], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(cfg);
        opt.add("w", w.clone(), decay).unwrap();
        for _ in 0..2 {
            let grads = linear_grads(&w, &c);
            opt.step(&grads, 0.1).unwrap();
        }
        w.as_tensor().to_vec1().unwrap()
    }

    fn close(got: &[f32], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-6,
                "got {got:?}, want {want:?}"
            );
        }
    }

    #[test]
    fn sgd_matches_hand_computed_updates() {
        // g1 = c + 0.1 w0 = [0.6, 2.8]; v1 = 0.1 g1; w1 = w0 - v1 = [0.94, -2.28];
        // g2 = c + 0.1 w1 = [0.594, 2.772]; v2 = 0.9 v1 + 0.1 g2 = [0.1134, 0.5292].
        close(&two_steps(sgd(false), true), &[0.8266, -2.8092]);
        // Nesterov: w1 = w0 - 1.9 v1 = [0.886, -2.532]; g2 = [0.5886, 2.7468];
        // v2 = [0.11286, 0.52668]; w2 = w1 - (1.9 v2 - 0.9 v1).
        close(&two_steps(sgd(true), true), &[0.725566, -3.280692]);
        // Without decay: v1 = [0.05, 0.3], v2 = 0.9 v1 + 0.1 c = [0.095, 0.57].
        close(&two_steps(sgd(false), false), &[0.855, -2.87]);
    }

    #[test]
    fn adamw_matches_hand_computed_updates() {
        let cfg = OptimizerConfig {
            method: Method::Adamw {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
            ..sgd(false)
        };
        // A constant gradient makes m_hat / sqrt(v_hat) = sign(c) = 1 at every step, so each
        // step is w <- w (1 - lr wd) - lr: w1 = 0.99 w0 - 0.1, w2 = 0.99 w1 - 0.1.
        let want = |w0: f64| 0.99 * (0.99 * w0 - 0.1) - 0.1;
        close(&two_steps(cfg, true), &[want(1.0), want(-2.0)]);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let w = Var::from_tensor(&Tensor::new(&[0.0f32, 0.0], &Device::Cpu).unwrap()).unwrap();
        let c = Tensor::new(&[3.0f32, 4.0], &Device::Cpu).unwrap();
        let mut cfg = sgd(false);
        cfg.clip_norm = Some(1.0);
        let mut opt = Optimizer::new(cfg);
        opt.add("w", w.clone(), false).unwrap();
        let grads = linear_grads(&w, &c);
        let norm = opt.step(&grads, 1.0).unwrap();
        assert!((norm.unwrap() - 5.0).abs() < 1e-6);
        // The step is the unit vector along -c.
        close(&w.as_tensor().to_vec1().unwrap(), &[-0.6, -0.8]);
    }
}
