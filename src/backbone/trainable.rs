//! The trunks in training mode: the same ResNet-50 and AlexNet modules the benchmarks freeze,
//! with each convolution's weight a variable and its batch norm normalising by the batch's
//! statistics while it updates the running averages (PyTorch's `BatchNorm2d` in `train()`).
//! The parameters keep their published names, so a trained checkpoint loads into the frozen
//! [`super::Backbone`] unchanged.

use super::layers::{ConvLayer, BN_EPS};
use super::{with_weights_wrapped, BackboneConfig, Family, Tap, Trunk};
use crate::train::params::Params;
use anyhow::Result;
use candle_core::{DType, Tensor, Var};
use candle_nn::{Init, VarBuilder};
use sslbench_ops::{batch_norm_train, conv2d, ConvInit, ConvSpec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether the batch norms of one trunk use batch statistics (training) or their running
/// averages (evaluation), and the momentum of those averages.
#[derive(Debug)]
pub struct BnMode {
    training: AtomicBool,
    momentum: f64,
}

impl BnMode {
    /// Training mode, with running averages updated as `(1 - momentum) old + momentum new`
    /// (PyTorch's convention; 0.1 is its default).
    pub fn new(momentum: f64) -> Arc<Self> {
        Arc::new(Self {
            training: AtomicBool::new(true),
            momentum,
        })
    }

    /// Switches between training and evaluation.
    pub fn set_training(&self, training: bool) {
        self.training.store(training, Ordering::Relaxed);
    }

    /// Whether batch statistics are in use.
    pub fn training(&self) -> bool {
        self.training.load(Ordering::Relaxed)
    }
}

/// A batch norm over the channels of a channel-major map.
struct BatchNorm {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
    mode: Arc<BnMode>,
}

impl BatchNorm {
    fn load(vb: VarBuilder, channels: usize, mode: &Arc<BnMode>) -> candle_core::Result<Self> {
        let stat = |name: &str, init: f64| -> candle_core::Result<Var> {
            Var::from_tensor(&vb.get_with_hints(channels, name, Init::Const(init))?)
        };
        Ok(Self {
            gamma: vb.get_with_hints(channels, "weight", Init::Const(1.0))?,
            beta: vb.get_with_hints(channels, "bias", Init::Const(0.0))?,
            running_mean: stat("running_mean", 0.0)?,
            running_var: stat("running_var", 1.0)?,
            mode: mode.clone(),
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (c, n, h, w) = x.dims4()?;
        let flat = x.reshape((c, n * h * w))?;
        let gamma = self.gamma.reshape((c, 1))?;
        let beta = self.beta.reshape((c, 1))?;
        if self.mode.training()
            && x.device().is_cpu()
            && matches!(x.dtype(), DType::F32 | DType::F64)
        {
            // The fused kernel: one op forward and backward instead of a chain of eight.
            let (y, stats) = batch_norm_train(x, &self.gamma, &self.beta, BN_EPS)?;
            let mean = Tensor::new(stats.mean.as_slice(), x.device())?.to_dtype(x.dtype())?;
            let var = Tensor::new(stats.var.as_slice(), x.device())?.to_dtype(x.dtype())?;
            self.update(&mean, &var, stats.count)?;
            return Ok(y);
        }
        let y = if self.mode.training() {
            let mean = flat.mean_keepdim(1)?;
            let centred = flat.broadcast_sub(&mean)?;
            let var = centred.sqr()?.mean_keepdim(1)?;
            let scale = (var.affine(1.0, BN_EPS)?.sqrt()?.recip()? * gamma)?;
            self.update(&mean, &var, n * h * w)?;
            centred.broadcast_mul(&scale)?.broadcast_add(&beta)?
        } else {
            let rm = self.running_mean.as_tensor().reshape((c, 1))?;
            let rv = self.running_var.as_tensor().reshape((c, 1))?;
            let scale = (rv.affine(1.0, BN_EPS)?.sqrt()?.recip()? * gamma)?;
            flat.broadcast_sub(&rm)?
                .broadcast_mul(&scale)?
                .broadcast_add(&beta)?
        };
        y.reshape((c, n, h, w))
    }

    /// Moves the running averages towards this batch's mean and unbiased variance.
    fn update(&self, mean: &Tensor, var: &Tensor, count: usize) -> candle_core::Result<()> {
        let m = self.mode.momentum;
        let unbiased = count as f64 / (count.max(2) - 1) as f64;
        let blend = |old: &Var, new: Tensor| -> candle_core::Result<()> {
            let new = new.detach().flatten_all()?;
            old.set(&((old.as_tensor().detach() * (1.0 - m))? + (new * m)?)?)
        };
        blend(&self.running_mean, mean.clone())?;
        blend(&self.running_var, (var * unbiased)?)
    }
}

/// A trainable convolution with its (optional) batch norm.
pub struct TrainConv {
    weight: Tensor,
    bias: Option<Tensor>,
    bn: Option<BatchNorm>,
    spec: ConvSpec,
}

impl ConvLayer for TrainConv {
    type Shared = Arc<BnMode>;

    fn load(
        mode: &Arc<BnMode>,
        conv: VarBuilder,
        bn: Option<VarBuilder>,
        spec: ConvSpec,
        conv_bias: bool,
        init: ConvInit,
    ) -> candle_core::Result<Self> {
        let (w_init, b_init) = spec.init_hints(init);
        Ok(Self {
            weight: conv.get_with_hints(spec.weight_shape(), "weight", w_init)?,
            bias: match conv_bias {
                true => Some(conv.get_with_hints(spec.cout, "bias", b_init)?),
                false => None,
            },
            bn: bn
                .map(|vb| BatchNorm::load(vb, spec.cout, mode))
                .transpose()?,
            spec,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = conv2d(x, &self.weight, self.bias.as_ref(), &self.spec)?;
        match &self.bn {
            Some(bn) => bn.forward(&y),
            None => Ok(y),
        }
    }

    /// The differentiable max-pool of [`sslbench_ops::max_pool2d`] (candle's has no backward
    /// when kernel != stride).
    fn max_pool(
        x: &Tensor,
        kernel: usize,
        stride: usize,
        pad: usize,
    ) -> candle_core::Result<Tensor> {
        sslbench_ops::max_pool2d(x, kernel, stride, pad)
    }
}

/// A trunk being trained: its variables live in a [`Params`] registry under the published
/// names.
pub struct TrainableBackbone {
    trunk: Trunk<TrainConv>,
    family: Family,
    mode: Arc<BnMode>,
}

impl TrainableBackbone {
    /// Builds the trunk of `cfg` (random weights from its seed, or a checkpoint to start
    /// from), recording its variables in `params`.
    pub fn new(
        cfg: &BackboneConfig,
        device: &candle_core::Device,
        params: &Params,
        bn_momentum: f64,
    ) -> Result<Self> {
        Self::with_dtype(cfg, device, DType::F32, params, bn_momentum)
    }

    /// [`TrainableBackbone::new`] with its variables in `dtype` (f64 for the tight gradient
    /// parity checks; training is f32).
    pub fn with_dtype(
        cfg: &BackboneConfig,
        device: &candle_core::Device,
        dtype: DType,
        params: &Params,
        bn_momentum: f64,
    ) -> Result<Self> {
        let mode = BnMode::new(bn_momentum);
        let (trunk, family) = with_weights_wrapped(
            cfg,
            |source| params.var_builder_as(source, dtype, device),
            |vb| Trunk::build(cfg, vb, &mode),
        )?;
        Ok(Self {
            trunk,
            family,
            mode,
        })
    }

    /// The architecture family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Switches every batch norm between batch statistics and running averages.
    pub fn set_training(&self, training: bool) {
        self.mode.set_training(training);
    }

    /// One forward pass over an NCHW batch returning the requested taps, with gradients.
    pub fn forward_taps(&self, x: &Tensor, taps: &[Tap]) -> Result<Vec<Tensor>> {
        self.trunk.forward_taps(self.family, x, taps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::Backbone;
    use candle_core::{DType, Device};

    fn config(weights: &str) -> BackboneConfig {
        toml::from_str(&format!(
            "arch = \"resnet50\"\nwidth = 0.0625\nweights = \"{weights}\"\nseed = 3\n"
        ))
        .unwrap()
    }

    #[test]
    fn batch_norm_trains_on_batch_statistics_and_tracks_running_averages() {
        let dev = Device::Cpu;
        let params = Params::new();
        let trunk = TrainableBackbone::new(&config("random"), &dev, &params, 0.1).unwrap();
        let x = Tensor::randn(0f32, 1.0, (4, 3, 32, 32), &dev).unwrap();
        // The stem's output after its batch norm (conv1 tap is post-ReLU, so look at the
        // pre-activation statistics through the running averages instead).
        trunk.forward_taps(&x, &[Tap::Conv1]).unwrap();
        let named = |n: &str| {
            params
                .all()
                .into_iter()
                .find(|(name, _, _)| name == n)
                .map(|(_, v, _)| v.as_tensor().to_vec1::<f32>().unwrap())
                .unwrap()
        };
        let stem = sslbench_ops::ConvSpec::new(3, 4, 7).stride(2).padding(3);
        let w = params.tensors().unwrap()["conv1.weight"].clone();
        let y = conv2d(
            &sslbench_ops::to_channel_major(&x).unwrap(),
            &w,
            None,
            &stem,
        )
        .unwrap()
        .reshape((4, ()))
        .unwrap();
        let mean: Vec<f32> = y.mean(1).unwrap().to_vec1().unwrap();
        let n = y.dim(1).unwrap() as f64;
        let var: Vec<f32> = y
            .broadcast_sub(&y.mean_keepdim(1).unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .mean(1)
            .unwrap()
            .to_vec1()
            .unwrap();
        let (rm, rv) = (named("bn1.running_mean"), named("bn1.running_var"));
        for c in 0..4 {
            // One step from (0, 1) with momentum 0.1; the variance unbiased.
            let want_m = 0.1 * f64::from(mean[c]);
            let want_v = 0.9 + 0.1 * f64::from(var[c]) * n / (n - 1.0);
            assert!(
                (f64::from(rm[c]) - want_m).abs() < 1e-5,
                "{c}: {} vs {want_m}",
                rm[c]
            );
            assert!(
                (f64::from(rv[c]) - want_v).abs() < 1e-4,
                "{c}: {} vs {want_v}",
                rv[c]
            );
        }
    }

    #[test]
    fn trained_weights_load_into_the_frozen_trunk_unchanged() {
        let dev = Device::Cpu;
        let params = Params::new();
        let trunk = TrainableBackbone::new(&config("random"), &dev, &params, 0.1).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &dev).unwrap();
        for _ in 0..3 {
            trunk.forward_taps(&x, &[Tap::Pool5]).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&params.tensors().unwrap(), &path).unwrap();
        let frozen = Backbone::load(&config(path.to_str().unwrap()), &dev).unwrap();
        trunk.set_training(false);
        let taps = [Tap::Conv1, Tap::Res3, Tap::Pool5];
        let a = trunk.forward_taps(&x, &taps).unwrap();
        let b = frozen.forward_taps(&x, &taps).unwrap();
        for (t, (a, b)) in taps.iter().zip(a.iter().zip(&b)) {
            let diff = (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let scale = b
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff <= 1e-4 * scale.max(1.0), "{t}: {diff} (scale {scale})");
        }
        assert_eq!(a[2].dtype(), DType::F32);
    }
}
