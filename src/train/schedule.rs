//! Learning-rate schedules: step, multi-step, cosine and polynomial decay, each with an
//! optional linear warm-up, as a function of the iteration.

use serde::{Deserialize, Serialize};

/// The decay after warm-up, as a factor of the base rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decay {
    /// `gamma^(it / step)` (Caffe2's "step" policy).
    Step {
        /// Factor at each drop.
        gamma: f64,
        /// Iterations between drops.
        step: usize,
    },
    /// `gamma^(number of milestones passed)`.
    MultiStep {
        /// Factor at each drop.
        gamma: f64,
        /// Iterations of the drops, ascending.
        milestones: Vec<usize>,
    },
    /// Half a cosine from 1 down to `floor` at the last iteration.
    Cosine {
        /// Final factor.
        #[serde(default)]
        floor: f64,
    },
    /// `(1 - it / total)^power`.
    Poly {
        /// The exponent.
        power: f64,
    },
}

impl Decay {
    /// The factor at iteration `it` of `total`.
    pub fn factor(&self, it: usize, total: usize) -> f64 {
        let progress = if total == 0 {
            1.0
        } else {
            (it as f64 / total as f64).min(1.0)
        };
        match self {
            Decay::Step { gamma, step } => {
                gamma.powi(i32::try_from(it / (*step).max(1)).unwrap_or(i32::MAX))
            }
            Decay::MultiStep { gamma, milestones } => {
                let passed = milestones.iter().filter(|&&m| it >= m).count();
                gamma.powi(i32::try_from(passed).unwrap_or(i32::MAX))
            }
            Decay::Cosine { floor } => {
                floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Decay::Poly { power } => (1.0 - progress).powf(*power),
        }
    }
}

/// A base rate, its decay over `total` iterations, and a linear warm-up over the first
/// `warmup` iterations from `warmup_factor x` the scheduled rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The base learning rate.
    pub base: f64,
    /// The decay.
    pub decay: Decay,
    /// Iterations in all (a pretext run sets it to its `train.steps` when left out).
    #[serde(default)]
    pub total: usize,
    /// Warm-up iterations (0: none).
    #[serde(default)]
    pub warmup: usize,
    /// Factor at iteration 0 of the warm-up.
    #[serde(default)]
    pub warmup_factor: f64,
}

impl LrSchedule {
    /// The learning rate at iteration `it` (from 0).
    pub fn at(&self, it: usize) -> f64 {
        let scheduled = self.base * self.decay.factor(it, self.total);
        if it < self.warmup {
            let t = it as f64 / self.warmup as f64;
            scheduled * (self.warmup_factor + (1.0 - self.warmup_factor) * t)
        } else {
            scheduled
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn decays_by_hand() {
        let step = Decay::Step {
            gamma: 0.1,
            step: 40,
        };
        assert!(close(step.factor(39, 140), 1.0) && close(step.factor(40, 140), 0.1));
        assert!(close(step.factor(139, 140), 1e-3));
        let multi = Decay::MultiStep {
            gamma: 0.1,
            milestones: vec![4, 8, 12],
        };
        assert!(close(multi.factor(3, 14), 1.0) && close(multi.factor(8, 14), 0.01));
        let cosine = Decay::Cosine { floor: 0.0 };
        assert!(close(cosine.factor(0, 100), 1.0) && close(cosine.factor(50, 100), 0.5));
        assert!(close(cosine.factor(100, 100), 0.0));
        let poly = Decay::Poly { power: 2.0 };
        assert!(close(poly.factor(50, 100), 0.25));
    }

    #[test]
    fn warmup_is_linear_then_hands_over() {
        let s = LrSchedule {
            base: 0.1,
            decay: Decay::Cosine { floor: 0.0 },
            total: 100,
            warmup: 10,
            warmup_factor: 0.0,
        };
        assert!(close(s.at(0), 0.0));
        assert!(close(
            s.at(5),
            0.5 * 0.1 * Decay::Cosine { floor: 0.0 }.factor(5, 100)
        ));
        assert!(close(
            s.at(10),
            0.1 * Decay::Cosine { floor: 0.0 }.factor(10, 100)
        ));
    }

    #[test]
    fn reads_from_toml() {
        let s: LrSchedule = toml::from_str(
            "base = 0.01\ntotal = 140000\n[decay]\nkind = \"step\"\ngamma = 0.1\nstep = 40000\n",
        )
        .unwrap();
        assert!(close(s.at(80_000), 1e-4));
    }
}
