//! Batch norm in training mode on a channel-major map (C x N x H x W), as one fused op with
//! its backward: each channel's row is contiguous, so the statistics, the normalisation and
//! the three gradients are a few passes over a row, in parallel over channels (so the result
//! does not depend on the thread count). PyTorch's `BatchNorm2d` in `train()`: biased
//! variance in the normalisation; the caller updates its running averages from
//! [`BatchStats`]. Sums run in f64.

use crate::element::Element;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// The statistics of the batch one forward pass normalised by.
#[derive(Clone, Debug, Default)]
pub struct BatchStats {
    /// Per-channel mean.
    pub mean: Vec<f64>,
    /// Per-channel biased variance (divided by the count).
    pub var: Vec<f64>,
    /// Values per channel: N.H.W.
    pub count: usize,
}

/// `x` normalised by its batch statistics, times `gamma`, plus `beta`; differentiable in all
/// three. Returns the output and the statistics used. f32 or f64, on the CPU only (the caller
/// keeps candle ops for other devices).
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, BatchStats)> {
    let stats = Arc::new(Mutex::new(BatchStats::default()));
    let op = BatchNormOp {
        eps,
        stats: stats.clone(),
    };
    let y = x
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let stats = stats
        .lock()
        .map_err(|_| candle_core::Error::Msg("batch norm: poisoned".into()))?
        .clone();
    Ok((y, stats))
}

struct BatchNormOp {
    eps: f64,
    stats: Arc<Mutex<BatchStats>>,
}

/// Mean and biased variance of one row, in f64.
fn moments<T: Element>(row: &[T]) -> (f64, f64) {
    let n = row.len().max(1) as f64;
    let mean = row.iter().map(|v| v.to_f64()).sum::<f64>() / n;
    let var = row.iter().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() / n;
    (mean, var)
}

impl CustomOp3 for BatchNormOp {
    fn name(&self) -> &'static str {
        "sslbench-batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let c = xl.dims()[0];
        let (y, per_channel) = crate::with_element!(xs, "batch norm", |T| {
            let (x, gamma, beta) = (
                T::slice(xs, xl, "batch norm", "input")?,
                T::slice(gs, gl, "batch norm", "weight")?,
                T::slice(bs, bl, "batch norm", "bias")?,
            );
            if gamma.len() != c || beta.len() != c || x.len() % c.max(1) != 0 {
                bail!(
                    "batch norm: input {:?} against {} weights and {} biases",
                    xl.dims(),
                    gamma.len(),
                    beta.len()
                );
            }
            let (y, stats) = normalise(x, gamma, beta, self.eps);
            (T::storage(y), stats)
        });
        let mut stats = self
            .stats
            .lock()
            .map_err(|_| candle_core::Error::Msg("batch norm: poisoned".into()))?;
        *stats = BatchStats {
            mean: per_channel.iter().map(|s| s.0).collect(),
            var: per_channel.iter().map(|s| s.1).collect(),
            count: xl.shape().elem_count() / c.max(1),
        };
        Ok((y, xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = x.dim(0)?;
        let all = grad.contiguous()?.apply_op2_no_bwd(
            x,
            &BatchNormBackward {
                eps: self.eps,
                gamma: gamma.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?,
            },
        )?;
        let n = x.elem_count();
        let dx = all.narrow(0, 0, n)?.reshape(x.shape())?;
        let dgamma = all.narrow(0, n, c)?;
        let dbeta = all.narrow(0, n + c, c)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// (dy, x) -> [dx, dgamma, dbeta] flattened into one vector.
struct BatchNormBackward {
    eps: f64,
    gamma: Vec<f64>,
}

impl candle_core::CustomOp2 for BatchNormBackward {
    fn name(&self) -> &'static str {
        "sslbench-batch-norm-train-backward"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = crate::with_element!(gs, "batch norm", |T| T::storage(backward(
            T::slice(gs, gl, "batch norm", "output gradient")?,
            T::slice(xs, xl, "batch norm", "input")?,
            &self.gamma,
            self.eps
        )));
        let len = xl.shape().elem_count() + 2 * self.gamma.len();
        Ok((out, Shape::from(len)))
    }
}

/// y = (x - mean) / sqrt(var + eps) * gamma + beta per channel row, and each row's
/// (mean, biased variance).
fn normalise<T: Element>(x: &[T], gamma: &[T], beta: &[T], eps: f64) -> (Vec<T>, Vec<(f64, f64)>) {
    let m = (x.len() / gamma.len().max(1)).max(1);
    let mut y = vec![T::default(); x.len()];
    let stats = y
        .par_chunks_mut(m)
        .zip(x.par_chunks(m))
        .enumerate()
        .map(|(ch, (out, row))| {
            let (mean, var) = moments(row);
            // Centre first, as PyTorch does: x * scale + (beta - mean * scale) would cancel
            // catastrophically in a channel whose mean is large against its spread.
            let scale = T::from_f64(gamma[ch].to_f64() / (var + eps).sqrt());
            let (centre, shift) = (T::from_f64(mean), beta[ch]);
            for (o, v) in out.iter_mut().zip(row) {
                *o = (*v - centre) * scale + shift;
            }
            (mean, var)
        })
        .collect();
    (y, stats)
}

/// [dx, dgamma, dbeta] of the normalisation, flattened: per channel row,
/// dx = gamma / sigma (dy - mean(dy) - xhat mean(dy xhat)), dgamma = sum(dy xhat),
/// dbeta = sum(dy).
fn backward<T: Element>(dy: &[T], x: &[T], gamma: &[f64], eps: f64) -> Vec<T> {
    let c = gamma.len();
    let m = (x.len() / c.max(1)).max(1);
    let mut out = vec![T::default(); x.len() + 2 * c];
    let (dx, rest) = out.split_at_mut(x.len());
    let sums: Vec<(f64, f64)> = dx
        .par_chunks_mut(m)
        .zip(x.par_chunks(m).zip(dy.par_chunks(m)))
        .enumerate()
        .map(|(ch, (dxr, (xr, dyr)))| {
            let (mean, var) = moments(xr);
            let invstd = 1.0 / (var + eps).sqrt();
            let sum_dy: f64 = dyr.iter().map(|v| v.to_f64()).sum();
            let sum_dy_xhat = dyr
                .iter()
                .zip(xr)
                .map(|(g, v)| g.to_f64() * (v.to_f64() - mean))
                .sum::<f64>()
                * invstd;
            let k = gamma[ch] * invstd;
            let (a, b) = (sum_dy / m as f64, sum_dy_xhat / m as f64);
            for ((o, g), v) in dxr.iter_mut().zip(dyr).zip(xr) {
                let xhat = (v.to_f64() - mean) * invstd;
                *o = T::from_f64(k * (g.to_f64() - a - xhat * b));
            }
            (sum_dy_xhat, sum_dy)
        })
        .collect();
    for (ch, (dg, db)) in sums.into_iter().enumerate() {
        rest[ch] = T::from_f64(dg);
        rest[c + ch] = T::from_f64(db);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_diff;
    use candle_core::{Device, Var};

    /// The same batch norm from candle ops, differentiated by autograd.
    fn reference(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
        let c = x.dim(0)?;
        let flat = x.reshape((c, ()))?;
        let mean = flat.mean_keepdim(1)?;
        let centred = flat.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(1)?;
        let scale = (var.affine(1.0, eps)?.sqrt()?.recip()? * gamma.reshape((c, 1))?)?;
        centred
            .broadcast_mul(&scale)?
            .broadcast_add(&beta.reshape((c, 1))?)?
            .reshape(x.shape())
    }

    /// Output, statistics and the three gradients equal those of the candle-op batch norm.
    #[test]
    fn fused_batch_norm_matches_autograd() {
        let dev = Device::Cpu;
        let (c, n, h, w) = (3, 2, 5, 4);
        let vals = |len: usize, p: f32| {
            (0..len)
                .map(|i| (i as f32 * 0.61 + p).sin() * 2.0 + p)
                .collect::<Vec<f32>>()
        };
        let x = Var::from_vec(vals(c * n * h * w, 0.3), (c, n, h, w), &dev).unwrap();
        let gamma = Var::from_vec(vals(c, 1.0), c, &dev).unwrap();
        let beta = Var::from_vec(vals(c, -0.5), c, &dev).unwrap();
        let r = Tensor::from_vec(vals(c * n * h * w, 2.0), (c, n, h, w), &dev).unwrap();
        let (fused, stats) = batch_norm_train(&x, &gamma, &beta, 1e-5).unwrap();
        let plain = reference(&x, &gamma, &beta, 1e-5).unwrap();
        let gf = (&fused * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gp = (&plain * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let diff = max_diff;
        assert!(diff(&fused, &plain) < 1e-5);
        for v in [&x, &gamma, &beta] {
            let d = diff(gf.get(v).unwrap(), gp.get(v).unwrap());
            assert!(d < 1e-4, "gradient differs by {d}");
        }
        let row0 = &vals(c * n * h * w, 0.3)[..n * h * w];
        let mean0 = row0.iter().sum::<f32>() / row0.len() as f32;
        assert!((stats.mean[0] - mean0 as f64).abs() < 1e-5 && stats.count == n * h * w);
    }
}
