//! ReLU, and the residual sum followed by ReLU, as fused CPU ops (f32, f64) with PyTorch's
//! backward: the gradient passes where the output is positive (`threshold_backward` on the
//! result; candle's own ReLU passes it at an input of exactly zero too). Other devices run
//! candle's ops.

use crate::element::Element;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per parallel chunk: below this a chunk stays on one thread.
const CHUNK: usize = 1 << 16;

fn kernel_runs(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// max(x, 0). Differentiable.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    match kernel_runs(x) {
        true => x.contiguous()?.apply_op1(Relu),
        false => x.relu(),
    }
}

/// max(a + b, 0), the end of a residual block. Differentiable in both.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !kernel_runs(a) || a.dtype() != b.dtype() || a.shape() != b.shape() {
        return (a + b)?.relu();
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

fn map<T: Element>(out: &mut [T], f: impl Fn(usize, &mut [T]) + Sync) {
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, chunk)| f(i * CHUNK, chunk));
}

struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "sslbench-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let y = crate::with_element!(s, "relu", |T| {
            let x = T::slice(s, l, "relu", "input")?;
            let mut y = vec![T::default(); x.len()];
            map(&mut y, |at, out| {
                for (o, v) in out.iter_mut().zip(&x[at..]) {
                    if *v > T::default() {
                        *o = *v;
                    }
                }
            });
            T::storage(y)
        });
        Ok((y, l.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            grad.contiguous()?
                .apply_op2_no_bwd(res, &PassWherePositive)?,
        ))
    }
}

struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "sslbench-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let y = crate::with_element!(s1, "add_relu", |T| {
            let (a, b) = (
                T::slice(s1, l1, "add_relu", "lhs")?,
                T::slice(s2, l2, "add_relu", "rhs")?,
            );
            let mut y = vec![T::default(); a.len()];
            map(&mut y, |at, out| {
                for ((o, u), v) in out.iter_mut().zip(&a[at..]).zip(&b[at..]) {
                    let s = *u + *v;
                    if s > T::default() {
                        *o = s;
                    }
                }
            });
            T::storage(y)
        });
        Ok((y, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _: &Tensor,
        _: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad
            .contiguous()?
            .apply_op2_no_bwd(res, &PassWherePositive)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// (grad, output) -> grad where output > 0, else 0.
struct PassWherePositive;

impl CustomOp2 for PassWherePositive {
    fn name(&self) -> &'static str {
        "sslbench-relu-backward"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        ys: &CpuStorage,
        yl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dx = crate::with_element!(gs, "relu", |T| {
            let (g, y) = (
                T::slice(gs, gl, "relu", "output gradient")?,
                T::slice(ys, yl, "relu", "output")?,
            );
            let mut dx = vec![T::default(); g.len()];
            map(&mut dx, |at, out| {
                for ((o, gv), yv) in out.iter_mut().zip(&g[at..]).zip(&y[at..]) {
                    if *yv > T::default() {
                        *o = *gv;
                    }
                }
            });
            T::storage(dx)
        });
        Ok((dx, gl.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Forward equals candle's; the gradient passes exactly where the output is positive, for
    /// both inputs of the residual sum.
    #[test]
    fn relu_and_add_relu_match_their_definition() {
        let dev = Device::Cpu;
        let a = Var::from_vec(vec![-1f32, 0.0, 2.0, 0.5, -3.0, 1.0], (2, 3), &dev).unwrap();
        let b = Var::from_vec(vec![1f32, 0.0, -1.0, 0.5, 1.0, -2.0], (2, 3), &dev).unwrap();
        let r = Tensor::new(&[[1f32, 2.0, 3.0], [4.0, 5.0, 6.0]], &dev).unwrap();
        let y = relu(a.as_tensor()).unwrap();
        assert_eq!(
            y.to_vec2::<f32>().unwrap(),
            vec![vec![0., 0., 2.], vec![0.5, 0., 1.]]
        );
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        // At an input of exactly 0 the output is 0: no gradient (PyTorch's rule).
        assert_eq!(
            g.get(&a).unwrap().to_vec2::<f32>().unwrap(),
            vec![vec![0., 0., 3.], vec![4., 0., 6.]]
        );
        let y = add_relu(a.as_tensor(), b.as_tensor()).unwrap();
        assert_eq!(
            y.to_vec2::<f32>().unwrap(),
            vec![vec![0., 0., 1.], vec![1., 0., 0.]]
        );
        let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let want = vec![vec![0., 0., 3.], vec![4., 0., 0.]];
        assert_eq!(g.get(&a).unwrap().to_vec2::<f32>().unwrap(), want);
        assert_eq!(g.get(&b).unwrap().to_vec2::<f32>().unwrap(), want);
    }
}
