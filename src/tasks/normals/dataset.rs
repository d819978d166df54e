//! The NYUv2 frames a normals run reads, with their ground truth from the source the task
//! file names, and the images as the trunk sees them: resized to a short side (bilinear,
//! PyTorch's `align_corners` false, i.e. OpenCV's INTER_LINEAR; the paper's training loader
//! uses PIL, whose downscaling is area-aware, a stated difference), normalised by the ImageNet
//! mean and std, and zero-padded (after normalisation) to a multiple of 8 in training, or
//! resized to the next multiple of 8 at test.

use super::config::{DataConfig, GroundTruthSource, InputConfig, NormalsConfig};
use super::from_depth::NormalsFromDepth;
use crate::data::nyuv2::{
    read_normals_mat, read_normals_png, AllNormals, LabeledMat, NormalsImage, Splits,
};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use std::path::PathBuf;

/// The labelled file, its split and the ground truth.
pub struct NyuFrames {
    labeled: LabeledMat,
    /// The split, 1-based NYU indices.
    pub splits: Splits,
    source: GroundTruthSource,
    normals: Option<PathBuf>,
    masks: Option<PathBuf>,
    pklz: Option<AllNormals>,
    from_depth: NormalsFromDepth,
}

impl NyuFrames {
    /// Opens the files of `[data]`; a missing file is an error naming the field to set.
    pub fn open(cfg: &NormalsConfig) -> Result<Self> {
        let d: &DataConfig = &cfg.data;
        let labeled_path = d.resolve(&d.labeled)?;
        let labeled = LabeledMat::open(&labeled_path).with_context(|| {
            format!(
                "cannot open the labelled set {} (data.labeled): download \
                 nyu_depth_v2_labeled.mat and set --set data.root=DIR",
                labeled_path.display()
            )
        })?;
        let splits_path = d.resolve(&d.splits)?;
        let splits = Splits::read(&splits_path)?;
        splits.check_against(labeled.len(), &labeled_path)?;
        let path = |field: &str, v: &Option<String>| -> Result<PathBuf> {
            let v = v.as_deref().with_context(|| {
                format!(
                    "data.ground_truth = {:?} needs data.{field}: set it to the file or folder",
                    d.ground_truth
                )
            })?;
            d.resolve(v)
        };
        let (normals, masks, pklz) = match d.ground_truth {
            GroundTruthSource::Pklz => {
                let p = path("normals", &d.normals)?;
                let all = AllNormals::read(&p)?;
                (Some(p), None, Some(all))
            }
            GroundTruthSource::Mat => (Some(path("normals", &d.normals)?), None, None),
            GroundTruthSource::Png => (
                Some(path("normals", &d.normals)?),
                Some(path("masks", &d.masks)?),
                None,
            ),
            GroundTruthSource::FromDepth => {
                cfg.ground_truth.check()?;
                (None, None, None)
            }
        };
        Ok(Self {
            labeled,
            splits,
            source: d.ground_truth,
            normals,
            masks,
            pklz,
            from_depth: cfg.ground_truth.clone(),
        })
    }

    /// Height and width of every frame.
    pub fn size(&self) -> (usize, usize) {
        (self.labeled.height(), self.labeled.width())
    }

    /// Frame `index` (1-based NYU index) with its ground truth.
    pub fn frame(&self, index: usize) -> Result<NormalsImage> {
        let name = format!("{index:06}");
        let gt = match self.source {
            GroundTruthSource::Pklz => {
                let all = self.pklz.as_ref().expect("opened with the pklz");
                let i = all.find(&name).with_context(|| {
                    format!(
                        "{} has no normals for image {name}: use the ground truth of the \
                         labelled set's frames",
                        self.normals.as_ref().expect("a path").display()
                    )
                })?;
                all.get(i)?
            }
            GroundTruthSource::Mat => read_normals_mat(
                &self
                    .normals
                    .as_ref()
                    .expect("a folder")
                    .join(format!("{name}.mat")),
            )?,
            GroundTruthSource::Png => read_normals_png(
                &self
                    .normals
                    .as_ref()
                    .expect("a folder")
                    .join(format!("{index:05}.png")),
                Some(
                    &self
                        .masks
                        .as_ref()
                        .expect("a folder")
                        .join(format!("{:04}.png", index - 1)),
                ),
            )?,
            GroundTruthSource::FromDepth => {
                let depth = self.labeled.depth(index - 1)?;
                let raw = self.labeled.raw_depth(index - 1).ok();
                let s = self
                    .from_depth
                    .compute(depth.view(), raw.as_ref().map(|r| r.view()))
                    .with_context(|| format!("normals from the depth of frame {name}"))?;
                return Ok(NormalsImage {
                    index,
                    name,
                    rgb: self.labeled.image(index - 1)?,
                    normals: s.normals,
                    valid: s.valid,
                });
            }
        };
        NormalsImage::pair(&self.labeled, gt)
    }

    /// The labelled file's path.
    pub fn labeled_path(&self) -> &std::path::Path {
        self.labeled.path()
    }

    /// What the ground truth depends on, as text for a cache digest: each file's path and
    /// size (the labelled set, the normals and masks), the source, and the normals-from-depth
    /// settings when that is the source.
    pub fn identity(&self) -> Result<String> {
        let mut out = format!("ground truth {:?}\n", self.source);
        let files = [
            Some(self.labeled.path()),
            self.normals.as_deref(),
            self.masks.as_deref(),
        ];
        for p in files.into_iter().flatten() {
            let size = std::fs::metadata(p)
                .with_context(|| format!("{} is missing", p.display()))?
                .len();
            out.push_str(&format!("{}\t{size}\n", p.display()));
        }
        if self.source == GroundTruthSource::FromDepth {
            out.push_str(&format!("{:?}\n", self.from_depth));
        }
        Ok(out)
    }
}

/// The resized size of an H x W frame at short side `short` (`int(h s)`, `int(w s)`, the
/// scale capped so that the long side stays within `max_size`).
pub fn resized(h: usize, w: usize, short: usize, max_size: usize) -> (usize, usize) {
    let s = (short as f64 / h.min(w) as f64).min(max_size as f64 / h.max(w) as f64);
    (
        ((h as f64 * s) as usize).max(1),
        ((w as f64 * s) as usize).max(1),
    )
}

/// `n` rounded up to a multiple of `m`.
pub fn round_up(n: usize, m: usize) -> usize {
    n.div_ceil(m) * m
}

/// The trunk's input for `rgb` (H x W x 3) resized to `size`, normalised, and zero-padded to
/// `padded` (bottom and right): 1 x 3 x padded.0 x padded.1.
pub fn trunk_input(
    rgb: &ndarray::Array3<u8>,
    size: (usize, usize),
    padded: (usize, usize),
    input: &InputConfig,
) -> Result<Tensor> {
    let (h, w, c) = rgb.dim();
    if c != 3 {
        bail!("an RGB frame has 3 channels, not {c}");
    }
    let mut planes = vec![0f32; 3 * h * w];
    for ((y, x, ch), &v) in rgb.indexed_iter() {
        planes[ch * h * w + y * w + x] = v as f32 / 255.0;
    }
    let x = Tensor::from_vec(planes, (1, 3, h, w), &Device::Cpu)?;
    let x = if (h, w) == size {
        x
    } else {
        sslbench_ops::resize_bilinear(&x, size, false)?
    };
    let mean = Tensor::new(&input.mean, &Device::Cpu)?.reshape((1, 3, 1, 1))?;
    let std = Tensor::new(&input.std, &Device::Cpu)?.reshape((1, 3, 1, 1))?;
    let x = x.broadcast_sub(&mean)?.broadcast_div(&std)?;
    Ok(x.pad_with_zeros(2, 0, padded.0 - size.0)?
        .pad_with_zeros(3, 0, padded.1 - size.1)?)
}

/// How one frame enters the trunk at one short side, and the size of its maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The resized image.
    pub size: (usize, usize),
    /// The trunk's input (padded or rounded up).
    pub input: (usize, usize),
}

impl Placement {
    /// Training: resize to `short`, pad to `pad_multiple`.
    pub fn train(h: usize, w: usize, short: usize, input: &InputConfig) -> Self {
        let size = resized(h, w, short, input.max_size);
        Self {
            size,
            input: (
                round_up(size.0, input.pad_multiple),
                round_up(size.1, input.pad_multiple),
            ),
        }
    }

    /// Test: resize straight to the size rounded up to `test_multiple`.
    pub fn test(h: usize, w: usize, input: &InputConfig) -> Self {
        let s = resized(h, w, input.test_short_side, input.max_size);
        let size = (
            round_up(s.0, input.test_multiple),
            round_up(s.1, input.test_multiple),
        );
        Self { size, input: size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_papers_loader() {
        let i = InputConfig::default();
        // 480 x 640 at 300: 300 x 400, padded to 304 x 400 (labels 38 x 50).
        assert_eq!(
            Placement::train(480, 640, 300, &i),
            Placement {
                size: (300, 400),
                input: (304, 400)
            }
        );
        // Test: 450 x 600 rounded up by resizing to 456 x 600.
        assert_eq!(Placement::test(480, 640, &i).input, (456, 600));
    }
}
