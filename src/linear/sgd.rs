//! Stochastic gradient descent with momentum (plain or Nesterov) and L2 weight decay, in the
//! form of Caffe2's `MomentumSGDUpdate` (FAIR's solver), and the step learning-rate schedule.
//!
//! The velocity accumulates `lr * gradient`: `v' = m v + lr g`, then the parameter moves by
//! `v'` (plain) or `(1 + m) v' - m v` (Nesterov). With a constant rate this is exactly
//! PyTorch's `torch.optim.SGD`; after a step of the schedule the velocity still carries the
//! old rate's updates for a few iterations, as in Caffe2. Weight decay adds `wd * param` to the
//! gradient of the parameters that take it.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

/// Momentum and weight decay of an [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Momentum (0.9 in the paper).
    pub momentum: f64,
    /// Nesterov's update instead of the plain one.
    pub nesterov: bool,
    /// L2 weight decay added to the gradients of the parameters that take it.
    pub weight_decay: f64,
}

/// One parameter with its velocity.
struct Slot {
    var: Var,
    decay: bool,
    velocity: Tensor,
}

/// SGD over a set of variables.
pub struct Sgd {
    cfg: SgdConfig,
    slots: Vec<Slot>,
}

impl Sgd {
    /// An optimiser with no parameters yet.
    pub fn new(cfg: SgdConfig) -> Self {
        Self {
            cfg,
            slots: Vec::new(),
        }
    }

    /// Adds a parameter; `decay` says whether weight decay applies to it.
    pub fn add(&mut self, var: Var, decay: bool) -> Result<()> {
        let velocity = var.as_tensor().zeros_like()?.detach();
        self.slots.push(Slot {
            var,
            decay,
            velocity,
        });
        Ok(())
    }

    /// One update at learning rate `lr` from the gradients of a `backward` pass. Parameters
    /// without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        let SgdConfig {
            momentum,
            nesterov,
            weight_decay,
        } = self.cfg;
        for slot in &mut self.slots {
            let Some(grad) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let param = slot.var.as_tensor().detach();
            let grad = if slot.decay && weight_decay != 0.0 {
                (grad + param.affine(weight_decay, 0.0)?)?
            } else {
                grad.clone()
            };
            let velocity = ((&slot.velocity * momentum)? + (grad * lr)?)?;
            let update = if nesterov {
                ((&velocity * (1.0 + momentum))? - (&slot.velocity * momentum)?)?
            } else {
                velocity.clone()
            };
            slot.var.set(&(param - update)?)?;
            slot.velocity = velocity.detach();
        }
        Ok(())
    }
}

/// The learning rate at iteration `it` (from 0) of a step schedule: `base * gamma^(it / step)`.
pub fn step_lr(base: f64, gamma: f64, step: usize, it: usize) -> f64 {
    base * crate::train::schedule::Decay::Step { gamma, step }.factor(it, 0)
}
