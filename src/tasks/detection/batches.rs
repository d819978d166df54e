//! The order in which training images are visited (Detectron's `roi_data/loader.py`): each
//! epoch a seeded permutation, with aspect grouping landscape (`w >= h`) and portrait images
//! permuted apart, each group cut to a multiple of the minibatch size, and the minibatches
//! shuffled, so that the two images of a minibatch share an orientation and pad little.
//!
//! Minibatch `k` of a run is a pure function of `(seed, k)`: a resumed run sees the same
//! images in the same order.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;

/// The stream number of the epoch permutations among the run's seeded streams.
const STREAM_ORDER: u64 = 0x0b7a_44e1_9d2c_35f1;

/// The minibatch order of a training roidb.
#[derive(Clone, Debug, PartialEq)]
pub struct MinibatchOrder {
    seed: u64,
    ims_per_batch: usize,
    /// `(width, height)` of each roidb entry.
    sizes: Vec<(u32, u32)>,
    aspect_grouping: bool,
    /// Images visited per epoch (after the groups are cut).
    epoch_len: usize,
}

impl MinibatchOrder {
    /// The order of entries of sizes `(width, height)`, `ims_per_batch` per minibatch
    /// (Detectron's `TRAIN.IMS_PER_BATCH`, 2 per GPU), grouped by orientation when
    /// `aspect_grouping` (`TRAIN.ASPECT_GROUPING`, true).
    pub fn new(
        seed: u64,
        sizes: Vec<(u32, u32)>,
        ims_per_batch: usize,
        aspect_grouping: bool,
    ) -> Result<Self> {
        if ims_per_batch == 0 {
            bail!("images per minibatch is 0: set it to at least 1 (Detectron uses 2)");
        }
        let epoch_len = if aspect_grouping {
            let landscape = sizes.iter().filter(|(w, h)| w >= h).count();
            let cut = |n: usize| n / ims_per_batch * ims_per_batch;
            cut(landscape) + cut(sizes.len() - landscape)
        } else {
            sizes.len()
        };
        if epoch_len == 0 {
            bail!(
                "the training set has {} images, too few for minibatches of {ims_per_batch}{}: \
                 add images or lower the images per minibatch",
                sizes.len(),
                if aspect_grouping {
                    " of one orientation (aspect grouping)"
                } else {
                    ""
                }
            );
        }
        Ok(Self {
            seed,
            ims_per_batch,
            sizes,
            aspect_grouping,
            epoch_len,
        })
    }

    /// Minibatches per epoch. Without aspect grouping the last one wraps around to the
    /// epoch's first images, as Detectron's rotating deque does.
    pub fn batches_per_epoch(&self) -> usize {
        self.epoch_len.div_ceil(self.ims_per_batch)
    }

    /// The entry indices visited in `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> Vec<usize> {
        let mut rng = crate::seed::stream(self.seed, &[STREAM_ORDER, epoch]);
        if !self.aspect_grouping {
            let mut perm: Vec<usize> = (0..self.sizes.len()).collect();
            perm.shuffle(&mut rng);
            return perm;
        }
        let (mut landscape, mut portrait): (Vec<usize>, Vec<usize>) =
            (0..self.sizes.len()).partition(|&i| self.sizes[i].0 >= self.sizes[i].1);
        let mb = self.ims_per_batch;
        landscape.shuffle(&mut rng);
        portrait.shuffle(&mut rng);
        landscape.truncate(landscape.len() / mb * mb);
        portrait.truncate(portrait.len() / mb * mb);
        let all: Vec<usize> = landscape.into_iter().chain(portrait).collect();
        let mut batches: Vec<&[usize]> = all.chunks(mb).collect();
        batches.shuffle(&mut rng);
        batches.concat()
    }

    /// The entries of the run's `k`-th minibatch (counting from 0 over all epochs).
    pub fn minibatch(&self, k: u64) -> Vec<usize> {
        let per_epoch = self.batches_per_epoch() as u64;
        let perm = self.epoch(k / per_epoch);
        let start = (k % per_epoch) as usize * self.ims_per_batch;
        (0..self.ims_per_batch)
            .map(|t| perm[(start + t) % perm.len()])
            .collect()
    }
}
