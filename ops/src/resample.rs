//! What the dense resampling ops ([`adaptive_avg_pool2d`](crate::adaptive_avg_pool2d),
//! [`resize_bilinear`](crate::resize_bilinear)) share: the checks on a map and an output size,
//! and the shapes of one call.

use candle_core::{bail, DType, Result, Tensor};

/// The shapes of one resampling call: an N x C x H x W map to N x C x oh x ow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Resample {
    /// Images.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Map height.
    pub h: usize,
    /// Map width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Resample {
    /// Checks `x` (N x C x H x W, f32 or f64, not empty) and `output` (at least 1 x 1) for
    /// `op` and returns the call's shapes.
    pub fn check(op: &str, x: &Tensor, output: (usize, usize)) -> Result<Self> {
        let (n, c, h, w) = match x.dims4() {
            Ok(d) => d,
            Err(_) => bail!("{op}: the map must be N x C x H x W, got {:?}", x.dims()),
        };
        if !matches!(x.dtype(), DType::F32 | DType::F64) {
            bail!("{op}: the map is {:?}; use f32 or f64", x.dtype());
        }
        if h == 0 || w == 0 {
            bail!("{op}: the map {h} x {w} is empty");
        }
        if output.0 == 0 || output.1 == 0 {
            bail!("{op}: the output size {output:?} must be at least 1 x 1");
        }
        let (oh, ow) = output;
        Ok(Self { n, c, h, w, oh, ow })
    }

    /// Planes: images times channels.
    pub fn planes(&self) -> usize {
        self.n * self.c
    }

    /// The output's shape, N x C x oh x ow.
    pub fn output(&self) -> (usize, usize, usize, usize) {
        (self.n, self.c, self.oh, self.ow)
    }

    /// The input's (and its gradient's) shape, N x C x H x W.
    pub fn input(&self) -> (usize, usize, usize, usize) {
        (self.n, self.c, self.h, self.w)
    }
}
