//! Pools: a max-pool with a backward pass for any kernel, stride and padding, the padded
//! average pool and the global average pool of the trunks.
//!
//! candle's own `max_pool2d` differentiates only when kernel == stride, which the ResNet stem (3x3,
//! stride 2, padding 1) is not (dependencies.md). Here the pool is the element-wise maximum
//! of the kernel's k x k shifted, strided views of the padded input, so autograd goes through
//! `maximum` (a tie shares the gradient between its arguments; PyTorch gives it all to the
//! first, which is an equally valid subgradient).

use crate::pool_cpu::{AvgPoolOp, MaxPoolOp, Pool};
use candle_core::{DType, Result, Tensor, D};

/// `x` (N x C x H x W) padded by `pad` on each side of H and W with `value`.
fn pad_with(x: &Tensor, pad: usize, value: f64) -> Result<Tensor> {
    if pad == 0 {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let side = |rows: usize, cols: usize| {
        Tensor::full(value, (n, c, rows, cols), x.device())?.to_dtype(x.dtype())
    };
    let x = Tensor::cat(&[&side(h, pad)?, x, &side(h, pad)?], 3)?;
    let wide = w + 2 * pad;
    Tensor::cat(&[&side(pad, wide)?, &x, &side(pad, wide)?], 2)
}

/// Rows `start, start + stride, ...` (`count` of them) of dimension `dim`, by narrowing to a
/// multiple of the stride, splitting it, and keeping the first of each group.
fn strided(x: &Tensor, dim: usize, start: usize, stride: usize, count: usize) -> Result<Tensor> {
    let avail = x.dim(dim)? - start;
    // The last group may be cut short: pad the view up to count * stride by narrowing less.
    let len = (count * stride).min(avail);
    let mut v = x.narrow(dim, start, len)?;
    if len < count * stride {
        let mut shape = v.dims().to_vec();
        shape[dim] = count * stride - len;
        let filler = Tensor::zeros(shape, v.dtype(), v.device())?;
        v = Tensor::cat(&[&v, &filler], dim)?;
    }
    let mut shape = v.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    v.reshape(shape)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

/// Max-pool of `x` (N x C x H x W, or C x N x H x W: any two leading dimensions) with a
/// square `kernel`, `stride` and `pad` (padding never wins: it is minus infinity), output size
/// floor((H + 2 pad - kernel) / stride) + 1 as PyTorch's `MaxPool2d`. Differentiable; f32 and
/// f64 on the CPU run the engine's kernel (`pool_cpu`), which routes a window's gradient
/// to its first maximum as PyTorch does.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
    let pool = Pool::fit("max_pool2d", x.dims4()?, kernel, stride, pad)?;
    if x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64) && pad < kernel {
        return x.contiguous()?.apply_op1(MaxPoolOp(pool));
    }
    max_pool2d_generic(x, kernel, stride, pad, pool.oh, pool.ow)
}

/// [`max_pool2d`] from candle ops: the element-wise maximum of the window's shifted views
/// (any device; a tie shares the gradient between its arguments, where PyTorch and the CPU
/// kernel give it all to the first).
fn max_pool2d_generic(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
) -> Result<Tensor> {
    let lowest = match x.dtype() {
        DType::F64 => f64::MIN,
        _ => f32::MIN as f64,
    };
    let xp = pad_with(x, pad, lowest)?;
    let mut out: Option<Tensor> = None;
    for ky in 0..kernel {
        let rows = strided(&xp, 2, ky, stride, oh)?;
        for kx in 0..kernel {
            let view = strided(&rows, 3, kx, stride, ow)?;
            out = Some(match out {
                None => view,
                Some(m) => m.maximum(&view)?,
            });
        }
    }
    out.ok_or_else(|| candle_core::Error::Msg("max_pool2d: empty kernel".into()))
}

/// Average pool that counts padding as zeros (PyTorch `count_include_pad=True`); f32 and f64
/// on the CPU run the engine's kernel, other devices candle's pool on a zero-padded map.
pub fn avg_pool_padded(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
    let pool = Pool::fit("avg_pool2d", x.dims4()?, kernel, stride, pad)?;
    if !x.device().is_cpu() || !matches!(x.dtype(), DType::F32 | DType::F64) {
        return crate::layout::pad_spatial(x, pad)?.avg_pool2d_with_stride(kernel, stride);
    }
    x.contiguous()?.apply_op1(AvgPoolOp(pool))
}

/// Global average pool of a map over its two spatial dimensions (C x N x H x W -> C x N).
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn input(n: usize, c: usize, h: usize, w: usize) -> Tensor {
        // Distinct values (no ties), reproducible.
        let v: Vec<f32> = (0..n * c * h * w)
            .map(|i| ((i as f32 * 0.7341).sin() * 1000.0).fract())
            .collect();
        Tensor::from_vec(v, (n, c, h, w), &Device::Cpu).unwrap()
    }

    /// Brute force of PyTorch's MaxPool2d windows: for every output of every N x C plane of
    /// `x`, the flat indices of its in-bounds inputs.
    fn windows(x: &Tensor, k: usize, s: usize, p: usize) -> Vec<Vec<usize>> {
        let (n, c, h, w) = x.dims4().unwrap();
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let mut out = Vec::new();
        for b in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut window = Vec::new();
                    for ky in 0..k {
                        for kx in 0..k {
                            let (y, xx) = (oy * s + ky, ox * s + kx);
                            if y >= p && xx >= p && y - p < h && xx - p < w {
                                window.push(b * h * w + (y - p) * w + xx - p);
                            }
                        }
                    }
                    out.push(window);
                }
            }
        }
        out
    }

    fn values(x: &Tensor) -> Vec<f32> {
        x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    #[test]
    fn forward_matches_pytorch_semantics() {
        for (h, w, k, s, p) in [
            (9, 7, 3, 2, 1),
            (8, 8, 2, 2, 0),
            (11, 10, 3, 1, 1),
            (13, 13, 3, 2, 0),
        ] {
            let x = input(2, 3, h, w);
            let y = max_pool2d(&x, k, s, p).unwrap();
            let v = values(&x);
            let expected: Vec<f32> = windows(&x, k, s, p)
                .iter()
                .map(|win| win.iter().map(|&i| v[i]).fold(f32::MIN, f32::max))
                .collect();
            assert_eq!(values(&y), expected, "{h}x{w} k{k} s{s} p{p}");
        }
    }

    #[test]
    fn gradient_goes_to_each_window_maximum() {
        // The ResNet stem's pool: 3x3, stride 2, padding 1.
        let x = Var::from_tensor(&input(1, 2, 9, 9)).unwrap();
        let y = max_pool2d(x.as_tensor(), 3, 2, 1).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g = values(grads.get(&x).unwrap());
        // Without ties, each output sends 1 to its window's arg-max: the gradient counts how
        // many windows an input wins.
        let v = values(x.as_tensor());
        let mut wins = vec![0f32; v.len()];
        for win in windows(x.as_tensor(), 3, 2, 1) {
            let best = win
                .iter()
                .copied()
                .fold(win[0], |b, i| if v[i] > v[b] { i } else { b });
            wins[best] += 1.0;
        }
        assert_eq!(g, wins);
    }

    /// A flat region ties: the CPU kernel gives a window's whole gradient to its first
    /// maximum in row-major order (PyTorch's rule); the candle-op path, for other devices,
    /// agrees with it on the forward and on the gradient's total.
    #[test]
    fn a_tie_sends_the_gradient_to_the_first_maximum() {
        let x = Var::from_tensor(
            &Tensor::ones((1, 1, 4, 4), DType::F32, &candle_core::Device::Cpu).unwrap(),
        )
        .unwrap();
        let y = max_pool2d(x.as_tensor(), 2, 2, 0).unwrap();
        let g = values(y.sum_all().unwrap().backward().unwrap().get(&x).unwrap());
        let first = [
            1., 0., 1., 0., 0., 0., 0., 0., 1., 0., 1., 0., 0., 0., 0., 0.,
        ];
        assert_eq!(g, first);
        let (oh, ow) = (2, 2);
        let generic = max_pool2d_generic(x.as_tensor(), 2, 2, 0, oh, ow).unwrap();
        assert_eq!(values(&generic), values(&y));
        let gg = values(
            generic
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
                .get(&x)
                .unwrap(),
        );
        assert_eq!(gg.iter().sum::<f32>(), g.iter().sum::<f32>());
    }

    /// The average pool equals candle's on a zero-padded map, forward at overlapping,
    /// padded windows (the protocol's), and backward where candle's has one (kernel ==
    /// stride).
    #[test]
    fn average_pool_matches_candle() {
        let dev = candle_core::Device::Cpu;
        for (h, w, k, s, p) in [(13, 11, 10, 10, 4), (56, 56, 16, 8, 0), (9, 9, 3, 2, 1)] {
            let x = input(2, 3, h, w);
            let ours = avg_pool_padded(&x, k, s, p).unwrap();
            let theirs = crate::layout::pad_spatial(&x, p)
                .unwrap()
                .avg_pool2d_with_stride(k, s)
                .unwrap();
            let d = (ours - theirs)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0);
            assert!(
                d.unwrap().to_scalar::<f32>().unwrap() < 1e-5,
                "{h}x{w} k{k} s{s} p{p}"
            );
        }
        let x = Var::from_tensor(&input(2, 3, 8, 6)).unwrap();
        let r = Tensor::arange(0f32, 24.0, &dev)
            .unwrap()
            .reshape((2, 3, 4, 1))
            .unwrap();
        let grad = |y: Tensor| {
            let g = (y.broadcast_mul(&r).unwrap())
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            values(g.get(&x).unwrap())
        };
        let ours = grad(
            avg_pool_padded(x.as_tensor(), 2, 2, 0)
                .unwrap()
                .narrow(3, 0, 1)
                .unwrap(),
        );
        let theirs = grad(
            x.as_tensor()
                .avg_pool2d_with_stride(2, 2)
                .unwrap()
                .narrow(3, 0, 1)
                .unwrap(),
        );
        assert_eq!(ours, theirs);
    }
}
