//! The parameters of selective search, with the paper's "fast" mode as the default
//! (Uijlings et al. 2013, section 5.2 and Table 3: colour spaces HSV and Lab, Felzenszwalb's
//! k in {50, 100} with the minimum region size equal to k, similarity sets C+T+S+F and T+S+F,
//! smoothing sigma 0.8), and, as in the authors' code and R-CNN's `selective_search_boxes.m`,
//! boxes under 20 pixels wide or high dropped (`minBoxWidth`). OpenCV's `switchToSelectiveSearchFast` differs: k in
//! {150, 300, 450} with OpenCV's default minimum size 100; set `segmentations` to match it.

use super::colour::ColourSpace;
use super::grouping::Similarity;
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

/// One initial segmentation: Felzenszwalb's scale `k` and the minimum region size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentationParams {
    /// Scale of the threshold `k / |C|` on the 0..255 colour scale.
    pub k: f32,
    /// Regions under this many pixels are merged into a neighbour.
    pub min_size: usize,
}

/// Every parameter of selective search. Each combination of colour space, segmentation and
/// similarity set is one strategy, one hierarchy of regions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelectiveSearchConfig {
    /// Colour spaces the image is segmented and grouped in.
    pub colour_spaces: Vec<ColourSpace>,
    /// The initial segmentations, each run in every colour space.
    pub segmentations: Vec<SegmentationParams>,
    /// Standard deviation of the Gaussian smoothing before segmentation (pixels).
    pub sigma: f32,
    /// Gaussian kernels are cut at this many standard deviations (Felzenszwalb uses 4).
    pub gaussian_truncate: f32,
    /// The similarity sets, each a sum of measures.
    pub similarities: Vec<Vec<Similarity>>,
    /// Colour histogram bins per channel.
    pub colour_bins: usize,
    /// Texture histogram bins per orientation and channel.
    pub texture_bins: usize,
    /// Standard deviation of the texture's Gaussian derivatives (pixels).
    pub texture_sigma: f32,
    /// Boxes narrower or shorter than this many pixels are dropped (0 keeps every box).
    pub min_box_size: u32,
    /// Seed of the random ranking (the same for every image).
    pub seed: u64,
}

impl Default for SelectiveSearchConfig {
    fn default() -> Self {
        use Similarity::*;
        Self {
            colour_spaces: vec![ColourSpace::Hsv, ColourSpace::Lab],
            segmentations: vec![
                SegmentationParams {
                    k: 50.0,
                    min_size: 50,
                },
                SegmentationParams {
                    k: 100.0,
                    min_size: 100,
                },
            ],
            sigma: 0.8,
            gaussian_truncate: 4.0,
            similarities: vec![vec![Colour, Texture, Size, Fill], vec![Texture, Size, Fill]],
            colour_bins: 25,
            texture_bins: 10,
            texture_sigma: 1.0,
            min_box_size: 20,
            seed: 0,
        }
    }
}

impl SelectiveSearchConfig {
    /// Checks that the parameters make a search (every list non-empty, every number in range).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            !self.colour_spaces.is_empty(),
            "selective search needs at least one colour space (e.g. colour_spaces = [\"hsv\"])"
        );
        ensure!(
            !self.segmentations.is_empty(),
            "selective search needs at least one segmentation (e.g. {{ k = 100, min_size = 100 }})"
        );
        ensure!(
            self.similarities.iter().all(|s| !s.is_empty()) && !self.similarities.is_empty(),
            "selective search needs at least one similarity set, none empty \
             (e.g. [\"colour\", \"texture\", \"size\", \"fill\"])"
        );
        for s in &self.segmentations {
            ensure!(
                s.k > 0.0 && s.k.is_finite(),
                "segmentation k must be a positive number, not {}",
                s.k
            );
        }
        ensure!(
            self.sigma >= 0.0 && self.sigma.is_finite(),
            "sigma must be >= 0, not {}",
            self.sigma
        );
        ensure!(
            self.texture_sigma > 0.0 && self.texture_sigma.is_finite(),
            "texture_sigma must be > 0, not {}",
            self.texture_sigma
        );
        ensure!(
            self.gaussian_truncate > 0.0 && self.gaussian_truncate.is_finite(),
            "gaussian_truncate must be > 0, not {}",
            self.gaussian_truncate
        );
        ensure!(
            (1..=256).contains(&self.colour_bins) && (1..=256).contains(&self.texture_bins),
            "colour_bins and texture_bins must lie in 1..=256, not {} and {}",
            self.colour_bins,
            self.texture_bins
        );
        Ok(())
    }
}
