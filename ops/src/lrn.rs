//! Local response normalisation across the channels of a channel-major map (C x N x H x W),
//! as PyTorch's `LocalResponseNorm(size, alpha, beta, k)`: y_c = x_c / d_c^beta with
//! d_c = k + alpha / size * (sum of x_j^2 over the `size` channels j around c). The CPU
//! kernel (f32, f64) runs forward and backward in parallel over channels, each channel's row
//! written by one thread; other devices run [`local_response_norm_generic`].

use crate::element::Element;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta`, channels on
/// dimension 0 (channel-major). Differentiable.
pub fn local_response_norm(
    x: &Tensor,
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
) -> Result<Tensor> {
    if size == 0 {
        candle_core::bail!("local_response_norm: size must be at least 1");
    }
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) {
        return local_response_norm_generic(x, size, alpha, beta, k);
    }
    let lrn = Lrn {
        channels: x.dim(0)?,
        size,
        alpha,
        beta,
        k,
    };
    x.contiguous()?.apply_op1(LrnOp(lrn))
}

/// [`local_response_norm`] from candle ops, on any device.
pub fn local_response_norm_generic(
    x: &Tensor,
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
) -> Result<Tensor> {
    let channels = x.dim(0)?;
    let sq = x.sqr()?.pad_with_zeros(0, size / 2, (size - 1) / 2)?;
    let mut sum = sq.narrow(0, 0, channels)?;
    for offset in 1..size {
        sum = (sum + sq.narrow(0, offset, channels)?)?;
    }
    let div = ((sum * (alpha / size as f64))? + k)?.powf(beta)?;
    x / div
}

#[derive(Clone, Copy, Debug)]
struct Lrn {
    channels: usize,
    size: usize,
    alpha: f64,
    beta: f64,
    k: f64,
}

impl Lrn {
    /// The channels whose squares enter d_c.
    fn window(&self, c: usize) -> std::ops::Range<usize> {
        c.saturating_sub(self.size / 2)..(c + (self.size - 1) / 2 + 1).min(self.channels)
    }

    /// d_c^-beta for every position of row `c`.
    fn inverse_power<T: Element>(&self, x: &[T], m: usize, c: usize, out: &mut [T]) {
        let scale = self.alpha / self.size as f64;
        out.fill(T::default());
        for j in self.window(c) {
            for (o, v) in out.iter_mut().zip(&x[j * m..(j + 1) * m]) {
                *o += *v * *v;
            }
        }
        let fast = self.beta == 0.75;
        for o in out.iter_mut() {
            let d = self.k + scale * o.to_f64();
            // Caffe's AlexNet beta, 0.75, as two square roots: d^-0.75 = 1 / (d^0.5 d^0.25).
            *o = T::from_f64(if fast {
                1.0 / (d.sqrt() * d.sqrt().sqrt())
            } else {
                d.powf(-self.beta)
            });
        }
    }

    fn forward<T: Element>(&self, x: &[T]) -> Vec<T> {
        let m = x.len() / self.channels.max(1);
        let mut y = vec![T::default(); x.len()];
        y.par_chunks_mut(m.max(1)).enumerate().for_each(|(c, row)| {
            self.inverse_power(x, m, c, row);
            for (o, v) in row.iter_mut().zip(&x[c * m..(c + 1) * m]) {
                *o = *o * *v;
            }
        });
        y
    }

    /// dx_i = g_i d_i^-beta - 2 alpha beta / size * x_i * sum over the c whose window holds i
    /// of g_c x_c d_c^(-beta-1).
    fn backward<T: Element>(&self, g: &[T], x: &[T]) -> Vec<T> {
        let m = x.len() / self.channels.max(1);
        let scale = self.alpha / self.size as f64;
        // Per channel: d^-beta, and t = g x d^(-beta-1).
        let mut inv = vec![T::default(); x.len()];
        let mut t = vec![T::default(); x.len()];
        inv.par_chunks_mut(m.max(1))
            .zip(t.par_chunks_mut(m.max(1)))
            .enumerate()
            .for_each(|(c, (inv_row, t_row))| {
                self.inverse_power(x, m, c, inv_row);
                let (xr, gr) = (&x[c * m..(c + 1) * m], &g[c * m..(c + 1) * m]);
                for (p, tv) in t_row.iter_mut().enumerate() {
                    // d^(-beta-1) = d^-beta / d, with d recovered from d^-beta's row sums.
                    let mut sq = 0.0;
                    for j in self.window(c) {
                        let v = x[j * m + p].to_f64();
                        sq += v * v;
                    }
                    let d = self.k + scale * sq;
                    *tv = T::from_f64(gr[p].to_f64() * xr[p].to_f64() * inv_row[p].to_f64() / d);
                }
            });
        let coef = 2.0 * self.alpha * self.beta / self.size as f64;
        let mut dx = vec![T::default(); x.len()];
        dx.par_chunks_mut(m.max(1))
            .enumerate()
            .for_each(|(i, row)| {
                // The c whose window holds i: i - (size - 1) / 2 ..= i + size / 2.
                let cs = i.saturating_sub((self.size - 1) / 2)
                    ..(i + self.size / 2 + 1).min(self.channels);
                for (p, o) in row.iter_mut().enumerate() {
                    let mut acc = 0.0;
                    for c in cs.clone() {
                        acc += t[c * m + p].to_f64();
                    }
                    let at = i * m + p;
                    *o = T::from_f64(
                        g[at].to_f64() * inv[at].to_f64() - coef * x[at].to_f64() * acc,
                    );
                }
            });
        dx
    }
}

struct LrnOp(Lrn);

impl CustomOp1 for LrnOp {
    fn name(&self) -> &'static str {
        "sslbench-local-response-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = crate::with_element!(s, "local_response_norm", |T| T::storage(
            self.0
                .forward::<T>(T::slice(s, l, "local_response_norm", "input")?)
        ));
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad.contiguous()?
                .apply_op2_no_bwd(x, &LrnBackward(self.0))?,
        ))
    }
}

/// (dy, x) -> dx.
struct LrnBackward(Lrn);

impl CustomOp2 for LrnBackward {
    fn name(&self) -> &'static str {
        "sslbench-local-response-norm-backward"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dx = crate::with_element!(gs, "local_response_norm", |T| T::storage(
            self.0.backward::<T>(
                T::slice(gs, gl, "local_response_norm", "output gradient")?,
                T::slice(xs, xl, "local_response_norm", "input")?
            )
        ));
        Ok((dx, xl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_diff;
    use candle_core::{Device, Var};

    /// Forward and backward equal the candle-op LRN under autograd, for Caffe's beta (the
    /// square-root path) and another, at sizes 5 and 4 (an asymmetric window).
    #[test]
    fn the_kernel_matches_the_candle_ops() {
        let dev = Device::Cpu;
        let v: Vec<f32> = (0..7 * 2 * 3 * 4)
            .map(|i| (i as f32 * 0.37).sin() * 3.0)
            .collect();
        let x = Var::from_vec(v, (7, 2, 3, 4), &dev).unwrap();
        let r = Tensor::randn(0f32, 1.0, (7, 2, 3, 4), &dev).unwrap();
        for (size, beta) in [(5, 0.75), (4, 0.6)] {
            let run = |f: fn(&Tensor, usize, f64, f64, f64) -> Result<Tensor>| {
                let y = f(x.as_tensor(), size, 0.3, beta, 2.0).unwrap();
                let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                (y, g.get(&x).unwrap().clone())
            };
            let ((y1, g1), (y2, g2)) = (run(local_response_norm), run(local_response_norm_generic));
            let diff = max_diff;
            assert!(diff(&y1, &y2) < 1e-5, "forward, size {size}");
            assert!(
                diff(&g1, &g2) < 1e-4,
                "backward, size {size}: {}",
                diff(&g1, &g2)
            );
        }
    }
}
