//! The engine's CPU convolution: forward, input gradient and weight gradient of a
//! channel-major convolution as candle custom ops, each an im2col (or, for a 1x1 stride-1
//! convolution, nothing at all) and one [`matmul`] per group and block of output lines.
//!
//! The backward needs no autograd graph of the forward: the input gradient is Wᵀ·dY folded back
//! by [`col2im`], the weight gradient dY·colsᵀ with the columns rebuilt block by block, so no
//! step holds more than one block of columns ([`COLS_BUDGET`]). Block sizes depend only on the
//! shapes, never on the thread count, so results are the same at any thread count.

use crate::conv::ConvSpec;
use crate::element::Element;
use crate::gemm::{matmul, MatMut, MatRef};
use crate::im2col::{col2im, im2col, Geometry};
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// The most floats one block of im2col columns may hold (4 MB: it stays in cache between
/// im2col writing it and the product reading it; of 1, 2, 4 and 16 M floats, 1 M was fastest).
const COLS_BUDGET: usize = 1 << 20;

/// The fewest columns a block has, whatever its rows.
const MIN_COLS: usize = 768;

/// One convolution at one input shape: everything its three kernels need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvKernel {
    spec: ConvSpec,
    batch: usize,
    geometry: Geometry,
}

impl ConvKernel {
    /// The kernel of `spec` on a channel-major input of `batch` images of `h x w`.
    pub(crate) fn new(spec: ConvSpec, batch: usize, h: usize, w: usize) -> Result<Self> {
        let span = spec.dilation * (spec.kernel - 1) + 1;
        if h + 2 * spec.padding < span || w + 2 * spec.padding < span {
            bail!(
                "conv2d: a {span}x{span} kernel span does not fit a {h}x{w} map padded by {}",
                spec.padding
            );
        }
        let geometry = Geometry {
            channels: spec.cin,
            h,
            w,
            ho: (h + 2 * spec.padding - span) / spec.stride + 1,
            wo: (w + 2 * spec.padding - span) / spec.stride + 1,
            kernel: spec.kernel,
            stride: spec.stride,
            padding: spec.padding,
            dilation: spec.dilation,
        };
        Ok(Self {
            spec,
            batch,
            geometry,
        })
    }

    fn out_shape(&self) -> Shape {
        (
            self.spec.cout,
            self.batch,
            self.geometry.ho,
            self.geometry.wo,
        )
            .into()
    }

    fn in_shape(&self) -> Shape {
        (self.spec.cin, self.batch, self.geometry.h, self.geometry.w).into()
    }

    /// A 1x1, stride-1, unpadded convolution: the input is its own im2col matrix.
    fn pointwise(&self) -> bool {
        let s = &self.spec;
        s.kernel == 1 && s.stride == 1 && s.padding == 0
    }

    /// Per group: output channels, weight columns (C_in/groups.k.k).
    fn per_group(&self) -> (usize, usize) {
        (self.spec.cout / self.spec.groups, self.spec.fan_in())
    }

    /// Output lines per block of columns: as many as [`COLS_BUDGET`] holds, but at least
    /// [`MIN_COLS`] columns (a narrower product wastes the micro-kernel).
    fn lines_per_block(&self) -> usize {
        let g = &self.geometry;
        let by_budget = COLS_BUDGET / (g.rows() * g.wo).max(1);
        let by_width = MIN_COLS.div_ceil(g.wo.max(1));
        by_budget.max(by_width).clamp(1, (self.batch * g.ho).max(1))
    }

    /// Output columns per channel: N.Ho.Wo.
    fn out_cols(&self) -> usize {
        self.batch * self.geometry.ho * self.geometry.wo
    }

    /// The blocks of output lines: (first, count).
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (nb, n) = (self.lines_per_block(), self.batch * self.geometry.ho);
        (0..n)
            .step_by(nb)
            .map(move |first| (first, nb.min(n - first)))
    }

    /// Group `g`'s weight matrix (C_out/groups x C_in/groups.k.k).
    fn weight_of<'a, T>(&self, w: &'a [T], g: usize) -> MatRef<'a, T> {
        let (cout_g, kg) = self.per_group();
        MatRef::rows(&w[g * cout_g * kg..], cout_g, kg, kg)
    }

    /// y = W * x (+ bias), channel-major.
    fn forward<T: Element>(&self, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
        let (cout_g, kg) = self.per_group();
        let cols_out = self.out_cols();
        let mut y = vec![T::default(); self.spec.cout * cols_out];
        if let Some(b) = bias {
            for (row, v) in y.chunks_mut(cols_out).zip(b) {
                row.fill(*v);
            }
        }
        let acc = bias.is_some();
        if self.pointwise() {
            for g in 0..self.spec.groups {
                let dst = MatMut::rows(&mut y[g * cout_g * cols_out..], cout_g, cols_out, cols_out);
                let xg = MatRef::rows(&x[g * kg * cols_out..], kg, cols_out, cols_out);
                matmul(dst, acc, self.weight_of(w, g), xg);
            }
            return y;
        }
        let mut cols =
            vec![T::default(); self.geometry.rows() * self.lines_per_block() * self.geometry.wo];
        for (first, lines) in self.blocks() {
            let width = lines * self.geometry.wo;
            im2col(x, self.batch, first, lines, &self.geometry, &mut cols);
            for g in 0..self.spec.groups {
                let dst = MatMut::rows(
                    &mut y[g * cout_g * cols_out + first * self.geometry.wo..],
                    cout_g,
                    width,
                    cols_out,
                );
                let cg = MatRef::rows(&cols[g * kg * width..], kg, width, width);
                matmul(dst, acc, self.weight_of(w, g), cg);
            }
        }
        y
    }

    /// dx = Wᵀ * dy, folded back onto the input (channel-major).
    fn backward_data<T: Element>(&self, dy: &[T], w: &[T]) -> Vec<T> {
        let (cout_g, kg) = self.per_group();
        let cols_out = self.out_cols();
        let g_ = &self.geometry;
        let mut dx = vec![T::default(); self.spec.cin * self.batch * g_.h * g_.w];
        if self.pointwise() {
            for g in 0..self.spec.groups {
                let dst = MatMut::rows(&mut dx[g * kg * cols_out..], kg, cols_out, cols_out);
                let dyg = MatRef::rows(&dy[g * cout_g * cols_out..], cout_g, cols_out, cols_out);
                matmul(dst, false, self.weight_of(w, g).t(), dyg);
            }
            return dx;
        }
        let mut dcols = vec![T::default(); g_.rows() * self.lines_per_block() * self.geometry.wo];
        for (first, lines) in self.blocks() {
            let width = lines * self.geometry.wo;
            for g in 0..self.spec.groups {
                let dst = MatMut::rows(&mut dcols[g * kg * width..], kg, width, width);
                let dyg = MatRef::rows(
                    &dy[g * cout_g * cols_out + first * self.geometry.wo..],
                    cout_g,
                    width,
                    cols_out,
                );
                matmul(dst, false, self.weight_of(w, g).t(), dyg);
            }
            col2im(&dcols, self.batch, first, lines, g_, &mut dx);
        }
        dx
    }

    /// dW = dy * colsᵀ, summed over the blocks of output lines in order. gemm runs this
    /// product (both operands read along the long reduction) fastest with the larger of
    /// C_out and C_in.k.k as its rows, so where C_in.k.k is larger it computes the transpose,
    /// dWᵀ = cols * dyᵀ, and transposes the small result: res2's 1x1 256 -> 64 weight gradient
    /// went from 26 to 66 GFLOP/s. The choice depends on the shape alone.
    fn backward_weight<T: Element>(&self, dy: &[T], x: &[T]) -> Vec<T> {
        let (cout_g, kg) = self.per_group();
        let cols_out = self.out_cols();
        let transposed = kg > cout_g;
        let mut acc = vec![T::default(); self.spec.cout * kg];
        // acc (+)= dy_g * c_gᵀ, or its transpose, for group g.
        let mut add = |g: usize, accumulate: bool, dyg: MatRef<T>, cg: MatRef<T>| {
            let block = &mut acc[g * cout_g * kg..];
            match transposed {
                true => matmul(
                    MatMut::rows(block, kg, cout_g, cout_g),
                    accumulate,
                    cg,
                    dyg.t(),
                ),
                false => matmul(MatMut::rows(block, cout_g, kg, kg), accumulate, dyg, cg.t()),
            }
        };
        if self.pointwise() {
            for g in 0..self.spec.groups {
                let dyg = MatRef::rows(&dy[g * cout_g * cols_out..], cout_g, cols_out, cols_out);
                let xg = MatRef::rows(&x[g * kg * cols_out..], kg, cols_out, cols_out);
                add(g, false, dyg, xg);
            }
        } else {
            let mut cols = vec![
                T::default();
                self.geometry.rows() * self.lines_per_block() * self.geometry.wo
            ];
            for (first, lines) in self.blocks() {
                let width = lines * self.geometry.wo;
                im2col(x, self.batch, first, lines, &self.geometry, &mut cols);
                for g in 0..self.spec.groups {
                    let dyg = MatRef::rows(
                        &dy[g * cout_g * cols_out + first * self.geometry.wo..],
                        cout_g,
                        width,
                        cols_out,
                    );
                    let cg = MatRef::rows(&cols[g * kg * width..], kg, width, width);
                    add(g, first > 0, dyg, cg);
                }
            }
        }
        if !transposed {
            return acc;
        }
        let mut dw = vec![T::default(); self.spec.cout * kg];
        for (src, out) in acc.chunks(cout_g * kg).zip(dw.chunks_mut(cout_g * kg)) {
            for r in 0..kg {
                for c in 0..cout_g {
                    out[c * kg + r] = src[r * cout_g + c];
                }
            }
        }
        dw
    }
}

/// The contents of a contiguous CPU tensor of the element type `T`.
fn elems<'a, T: Element>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [T]> {
    T::slice(s, l, "conv2d", what)
}

/// The forward convolution, with the weight (and bias) as further arguments.
pub(crate) struct Conv2dOp(pub(crate) ConvKernel);

impl Conv2dOp {
    /// The forward pass on CPU storages, with or without the bias.
    fn run(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> Result<(CpuStorage, Shape)> {
        let y = crate::with_element!(xs, "conv2d", |T| {
            let b = bias
                .map(|(bs, bl)| elems::<T>(bs, bl, "bias"))
                .transpose()?;
            T::storage(
                self.0
                    .forward::<T>(elems(xs, xl, "input")?, elems(ws, wl, "weight")?, b),
            )
        });
        Ok((y, self.0.out_shape()))
    }

    /// The input and weight gradients of `grad` (the output's), where their tensors need one.
    fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = match x.track_op() {
            true => Some(grad.apply_op2_no_bwd(w, &BackwardData(self.0))?),
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(grad.apply_op2_no_bwd(x, &BackwardWeight(self.0))?),
            false => None,
        };
        Ok((dx, dw))
    }
}

impl CustomOp2 for Conv2dOp {
    fn name(&self) -> &'static str {
        "sslbench-conv2d"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run(xs, xl, ws, wl, None)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.gradients(x, w, grad)
    }
}

impl CustomOp3 for Conv2dOp {
    fn name(&self) -> &'static str {
        "sslbench-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.run(xs, xl, ws, wl, Some((bs, bl)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.gradients(x, w, grad)?;
        let db = match b.track_op() {
            true => Some(grad.sum((1, 2, 3))?),
            false => None,
        };
        Ok((dx, dw, db))
    }
}

/// The input gradient: (dy, weight) -> dx.
struct BackwardData(ConvKernel);

impl CustomOp2 for BackwardData {
    fn name(&self) -> &'static str {
        "sslbench-conv2d-backward-data"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dx = crate::with_element!(gs, "conv2d", |T| T::storage(
            self.0
                .backward_data::<T>(elems(gs, gl, "output gradient")?, elems(ws, wl, "weight")?)
        ));
        Ok((dx, self.0.in_shape()))
    }
}

/// The weight gradient: (dy, input) -> dW.
struct BackwardWeight(ConvKernel);

impl CustomOp2 for BackwardWeight {
    fn name(&self) -> &'static str {
        "sslbench-conv2d-backward-weight"
    }

    fn cpu_fwd(
        &self,
        gs: &CpuStorage,
        gl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dw = crate::with_element!(gs, "conv2d", |T| T::storage(
            self.0
                .backward_weight::<T>(elems(gs, gl, "output gradient")?, elems(xs, xl, "input")?)
        ));
        let (co, ci, k, _) = self.0.spec.weight_shape();
        Ok((dw, (co, ci, k, k).into()))
    }
}
