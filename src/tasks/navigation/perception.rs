//! The frozen half of the agent: an observation's RGB frame through the backbone's transform
//! and trunk to one tap. Nothing here trains; the features leave detached.

use crate::backbone::{Backbone, Tap};
use crate::data::transform::TransformConfig;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use sslbench_envs::Frame;

/// A frozen backbone read at one tap.
pub struct Perception<'a> {
    backbone: &'a Backbone,
    tap: Tap,
    transform: TransformConfig,
    /// Shape of one frame's tap features: (channels, height, width).
    pub shape: (usize, usize, usize),
}

impl<'a> Perception<'a> {
    /// Reads a loaded backbone at `tap`; probes the tap's shape with one `height x width` frame.
    pub fn new(
        backbone: &'a Backbone,
        tap: Tap,
        transform: TransformConfig,
        height: usize,
        width: usize,
    ) -> Result<Self> {
        let mut perception = Self {
            backbone,
            tap,
            transform,
            shape: (0, 0, 0),
        };
        let probe = Frame {
            height,
            width,
            data: vec![0; height * width * 3],
        };
        let (_, c, h, w) = perception.encode(&[&probe])?.dims4()?;
        perception.shape = (c, h, w);
        Ok(perception)
    }

    /// The tap.
    pub fn tap(&self) -> Tap {
        self.tap
    }

    /// The device features live on.
    pub fn device(&self) -> &Device {
        self.backbone.device()
    }

    /// Tap features of a batch of frames: (N, C, h, w), detached.
    pub fn encode(&self, frames: &[&Frame]) -> Result<Tensor> {
        let size = self.transform.size as usize;
        let mut input = Vec::with_capacity(frames.len() * 3 * size * size);
        for f in frames {
            let image = RgbImage::from_raw(f.width as u32, f.height as u32, f.data.clone())
                .with_context(|| {
                    format!(
                        "a {}x{} frame with {} bytes",
                        f.height,
                        f.width,
                        f.data.len()
                    )
                })?;
            input.extend(self.transform.apply(&image)?);
        }
        let x = Tensor::from_vec(input, (frames.len(), 3, size, size), self.device())?;
        let taps = self.backbone.forward_taps(&x, &[self.tap])?;
        let out = taps
            .into_iter()
            .next()
            .context("the trunk returned no tap")?;
        Ok(out.detach())
    }
}
