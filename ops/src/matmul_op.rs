//! The 2-D matrix product of tensors, differentiable, through [`crate::gemm::matmul`] on the
//! CPU (f32, f64) so that, like the convolutions, it sums in fixed blocks and gives the same
//! bits at any thread count and on any cache size; candle's `matmul` elsewhere. Operands may
//! be strided views (a transposed weight is read in place).

use crate::element::Element;
use crate::gemm::{matmul, MatMut, MatRef};
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};

/// `a (m x k) x b (k x n)`. Differentiable in both.
pub fn mm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let kernel = a.device().is_cpu()
        && matches!(a.dtype(), DType::F32 | DType::F64)
        && b.dtype() == a.dtype();
    if !kernel {
        return a.matmul(b);
    }
    let ((m, k), (k2, n)) = (a.dims2()?, b.dims2()?);
    if k != k2 {
        bail!("mm: {:?} x {:?} do not fit", a.dims(), b.dims());
    }
    a.apply_op2(b, MatMulOp { m, k, n })
}

struct MatMulOp {
    m: usize,
    k: usize,
    n: usize,
}

/// A 2-D storage as a strided matrix view.
fn view<'a, T: Element>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<MatRef<'a, T>> {
    let (dims, stride) = (l.dims(), l.stride());
    if dims.len() != 2 {
        bail!("mm: {what} is not 2-D");
    }
    let data = &T::buffer(s, "mm", what)?[l.start_offset()..];
    Ok(MatRef::strided(
        data, dims[0], dims[1], stride[0], stride[1],
    ))
}

impl CustomOp2 for MatMulOp {
    fn name(&self) -> &'static str {
        "sslbench-mm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = crate::with_element!(s1, "mm", |T| {
            let (a, b) = (view::<T>(s1, l1, "lhs")?, view::<T>(s2, l2, "rhs")?);
            let mut c = vec![T::default(); self.m * self.n];
            matmul(MatMut::rows(&mut c, self.m, self.n, self.n), false, a, b);
            T::storage(c)
        });
        Ok((out, (self.m, self.n).into()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let da = grad.apply_op2_no_bwd(
            &b.t()?,
            &MatMulOp {
                m: self.m,
                k: self.n,
                n: self.k,
            },
        )?;
        let db = a.t()?.apply_op2_no_bwd(
            grad,
            &MatMulOp {
                m: self.k,
                k: self.m,
                n: self.n,
            },
        )?;
        Ok((Some(da), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_diff;
    use candle_core::{Device, Var};

    /// Forward and both gradients equal candle's matmul, with a transposed (strided) operand
    /// and a reduction longer than one block.
    #[test]
    fn mm_matches_candle_matmul() {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::randn(0f32, 1.0, (5, 1100), &dev).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 1100), &dev).unwrap()).unwrap();
        let r = Tensor::randn(0f32, 1.0, (5, 3), &dev).unwrap();
        let run = |f: &dyn Fn(&Tensor, &Tensor) -> Result<Tensor>| {
            let y = f(a.as_tensor(), &w.as_tensor().t().unwrap()).unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            (y, g.get(&a).unwrap().clone(), g.get(&w).unwrap().clone())
        };
        let ours = run(&|x, y| mm(x, y));
        let theirs = run(&|x, y| x.matmul(y));
        assert!(max_diff(&ours.0, &theirs.0) < 1e-3);
        assert!(max_diff(&ours.1, &theirs.1) < 1e-4);
        assert!(max_diff(&ours.2, &theirs.2) < 1e-4);
    }
}
