//! The pretext image loader: decodes and prepares the images of a batch in parallel, each
//! augmented from its own seeded stream, and replaces an unreadable image by the next
//! readable one (reported once by name). Training batches follow seeded epoch orders.

use super::batch::{Batch, Pretext};
use super::config::PretextConfig;
use crate::data::{self, Sample};
use crate::seed::stream as seeded;
use anyhow::{bail, Result};
use candle_core::Device;
use image::RgbImage;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::collections::HashSet;
use std::sync::Mutex;

/// Stream of the epoch orders.
pub(super) const STREAM_EPOCH: u64 = 2;
/// Stream of each training image's augmentation.
pub(super) const STREAM_IMAGE: u64 = 3;

/// Decodes and prepares the images of batches, in parallel.
pub struct Loader<'a> {
    /// The run's configuration (seed, batch size).
    pub cfg: &'a PretextConfig,
    /// The pretext that turns an image into an example.
    pub pretext: &'a Pretext,
    /// The training images.
    pub samples: &'a [Sample],
    /// Images found unreadable (by path), skipped from then on.
    pub bad: Mutex<HashSet<String>>,
    /// Where batches are collated.
    pub device: &'a Device,
}

impl Loader<'_> {
    /// A decoded image: `samples[i]`, or when it cannot be read (reported once by name),
    /// the next readable one.
    pub fn image(&self, samples: &[Sample], i: usize) -> Result<RgbImage> {
        for k in 0..samples.len() {
            let s = &samples[(i + k) % samples.len()];
            let name = s.path.display().to_string();
            if self
                .bad
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&name)
            {
                continue;
            }
            match data::decode(&s.path) {
                Ok(img) => return Ok(img),
                Err(e) => {
                    let mut bad = self.bad.lock().unwrap_or_else(|e| e.into_inner());
                    if bad.insert(name) {
                        eprintln!("warning: {e}; using the next image instead (fix or remove it from the list)");
                    }
                }
            }
        }
        bail!(
            "none of the {} pretext images can be decoded",
            samples.len()
        )
    }

    /// The batch of images `indices` of `samples`, image `j` augmented from `streams + [j]`.
    pub fn batch(&self, samples: &[Sample], indices: &[usize], streams: &[u64]) -> Result<Batch> {
        let examples = indices
            .par_iter()
            .enumerate()
            .map(|(j, &i)| {
                let img = self.image(samples, i)?;
                let mut keys = streams.to_vec();
                keys.push(j as u64);
                self.pretext
                    .example(&img, &mut seeded(self.cfg.seed, &keys))
            })
            .collect::<Result<Vec<_>>>()?;
        self.pretext.collate(examples, self.device)
    }

    /// The training batch of `step`: consecutive slots of the seeded epoch orders.
    pub fn train_batch(&self, step: usize) -> Result<Batch> {
        let n = self.samples.len();
        let b = self.cfg.train.batch_size;
        let mut order_of: Option<(usize, Vec<usize>)> = None;
        let indices: Vec<usize> = (step * b..(step + 1) * b)
            .map(|slot| {
                let epoch = slot / n;
                if order_of.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    let mut order: Vec<usize> = (0..n).collect();
                    order.shuffle(&mut seeded(self.cfg.seed, &[STREAM_EPOCH, epoch as u64]));
                    order_of = Some((epoch, order));
                }
                order_of.as_ref().map_or(0, |(_, o)| o[slot % n])
            })
            .collect();
        self.batch(self.samples, &indices, &[STREAM_IMAGE, step as u64])
    }
}
