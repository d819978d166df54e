//! Detectron's image blob (`utils/blob.py`, `roi_data/minibatch.py:_get_image_blob`): each
//! image mirrored if its entry is flipped, converted to float in BGR order minus the pixel
//! means, resized so its shorter side is the target scale (its longer side at most the
//! maximum size) with OpenCV's `INTER_LINEAR` arithmetic, then the images of a minibatch
//! zero-padded at the bottom and right to the largest height and width, NCHW.

use std::path::Path;

use anyhow::{bail, Result};
use image::RgbImage;
use serde::Deserialize;
use sslbench_ops::boxes::BoxF;

use crate::data::{decode, ChannelOrder};

/// The image protocol, with Detectron's defaults.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BlobConfig {
    /// Target length of the shorter side (`TRAIN.SCALES` / `TEST.SCALE`, 600).
    pub scale: u32,
    /// Largest length of the longer side (`TRAIN.MAX_SIZE` / `TEST.MAX_SIZE`, 1000).
    pub max_size: u32,
    /// Means subtracted from the 0..255 pixel values, in the blob's channel order
    /// (`PIXEL_MEANS`, BGR 102.9801, 115.9465, 122.7717).
    pub pixel_means: [f64; 3],
    /// Channel order of the blob (BGR, as Detectron's `cv2.imread`; RGB for trunks trained on
    /// RGB input, with the means then given in RGB order too).
    pub channel_order: ChannelOrder,
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            scale: 600,
            max_size: 1000,
            pixel_means: [102.9801, 115.9465, 122.7717],
            channel_order: ChannelOrder::Bgr,
        }
    }
}

/// Detectron's image scale (`prep_im_for_blob`): `target / min(H, W)`, unless
/// `round(scale * max(H, W)) > max_size` (NumPy's half-to-even rounding), then
/// `max_size / max(H, W)`. The same rule serves training and test.
pub fn image_scale(height: u32, width: u32, target: u32, max_size: u32) -> f64 {
    let (short, long) = (height.min(width) as f64, height.max(width) as f64);
    let scale = target as f64 / short;
    if (scale * long).round_ties_even() > max_size as f64 {
        max_size as f64 / long
    } else {
        scale
    }
}

/// The size `cv2.resize(fx = fy = scale)` gives: each side times the scale, rounded half to
/// even (OpenCV's `saturate_cast<int>`), `(height, width)`.
pub fn resized_size(height: u32, width: u32, scale: f64) -> (usize, usize) {
    let side = |n: u32| (n as f64 * scale).round_ties_even() as usize;
    (side(height), side(width))
}

/// One axis of a linear resize: for each output position, the two source positions and the
/// weight of the second.
struct Taps {
    first: Vec<usize>,
    second: Vec<usize>,
    frac: Vec<f64>,
}

/// OpenCV's linear taps along an axis of `src` samples resized to `dst` by `scale`: the
/// source coordinate `(d + 0.5) / scale - 0.5` (half-pixel centres), split into its floor and
/// fraction; before the first sample or past the last the nearest sample is used alone.
fn taps(src: usize, dst: usize, scale: f64) -> Taps {
    let inv = 1.0 / scale;
    let mut t = Taps {
        first: Vec::with_capacity(dst),
        second: Vec::with_capacity(dst),
        frac: Vec::with_capacity(dst),
    };
    for d in 0..dst {
        let x = (d as f64 + 0.5) * inv - 0.5;
        let floor = x.floor();
        let (s, f) = if floor < 0.0 {
            (0, 0.0)
        } else if floor as usize >= src - 1 {
            (src - 1, 0.0)
        } else {
            (floor as usize, x - floor)
        };
        t.first.push(s);
        t.second.push((s + 1).min(src - 1));
        t.frac.push(f);
    }
    t
}

/// Resizes an interleaved `height x width x channels` f32 image by `scale` with OpenCV's
/// `INTER_LINEAR` semantics (`cv2.resize(im, None, fx=scale, fy=scale)`): output size from
/// [`resized_size`], half-pixel centres, two taps per axis, no antialiasing when shrinking,
/// edges replicated. Returns the image and its `(height, width)`.
///
/// The interpolation is computed in f64 and rounded once to f32. OpenCV's own float path
/// (IPP or its SIMD loops) rounds intermediate sums in f32: against `cv2` 5.0 the results
/// differ by at most a few f32 ulps (`tests/detection_data.rs` checks 4e-5 on values of
/// magnitude up to 135). OpenCV's special case for an exact 2x shrink (the area filter) is
/// the same average, rounded differently.
pub fn resize_linear(
    src: &[f32],
    height: usize,
    width: usize,
    channels: usize,
    scale: f64,
) -> (Vec<f32>, usize, usize) {
    assert_eq!(src.len(), height * width * channels, "resize_linear: shape");
    let (oh, ow) = resized_size(height as u32, width as u32, scale);
    if oh == 0 || ow == 0 || height == 0 || width == 0 {
        return (Vec::new(), oh, ow);
    }
    let (tx, ty) = (taps(width, ow, scale), taps(height, oh, scale));
    // Horizontal pass: every source row to the output width, in f64.
    let mut rows = vec![0f64; height * ow * channels];
    for y in 0..height {
        let srow = &src[y * width * channels..(y + 1) * width * channels];
        let drow = &mut rows[y * ow * channels..(y + 1) * ow * channels];
        for x in 0..ow {
            let (a, b, f) = (tx.first[x], tx.second[x], tx.frac[x]);
            for c in 0..channels {
                let (p, q) = (
                    f64::from(srow[a * channels + c]),
                    f64::from(srow[b * channels + c]),
                );
                drow[x * channels + c] = p * (1.0 - f) + q * f;
            }
        }
    }
    // Vertical pass.
    let stride = ow * channels;
    let mut out = vec![0f32; oh * stride];
    for y in 0..oh {
        let (a, b, f) = (ty.first[y], ty.second[y], ty.frac[y]);
        let (ra, rb) = (&rows[a * stride..][..stride], &rows[b * stride..][..stride]);
        for (o, (p, q)) in out[y * stride..][..stride]
            .iter_mut()
            .zip(ra.iter().zip(rb))
        {
            *o = (p * (1.0 - f) + q * f) as f32;
        }
    }
    (out, oh, ow)
}

/// An image ready for the blob: interleaved `height x width x 3` f32 in the blob's channel
/// order, means subtracted, resized.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedImage {
    /// The pixels, row-major, channels interleaved.
    pub data: Vec<f32>,
    /// Height after resizing.
    pub height: usize,
    /// Width after resizing.
    pub width: usize,
    /// The scale applied: RoIs in blob pixels are image boxes times it.
    pub scale: f64,
}

/// Detectron's `prep_im_for_blob` on a decoded RGB image: mirrored if `flipped`, each value
/// `p - mean` computed in f64 and stored as f32 (NumPy subtracts the f64 means from the f32
/// image that way), then resized by [`image_scale`] with [`resize_linear`].
pub fn prepare_image(rgb: &RgbImage, flipped: bool, cfg: &BlobConfig) -> PreparedImage {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let order: [usize; 3] = match cfg.channel_order {
        ChannelOrder::Bgr => [2, 1, 0],
        ChannelOrder::Rgb => [0, 1, 2],
    };
    let raw = rgb.as_raw();
    let mut data = vec![0f32; h * w * 3];
    for y in 0..h {
        for x in 0..w {
            let sx = if flipped { w - 1 - x } else { x };
            let px = &raw[(y * w + sx) * 3..][..3];
            let out = &mut data[(y * w + x) * 3..][..3];
            for c in 0..3 {
                out[c] = (f64::from(px[order[c]]) - cfg.pixel_means[c]) as f32;
            }
        }
    }
    let scale = image_scale(h as u32, w as u32, cfg.scale, cfg.max_size);
    let (data, height, width) = resize_linear(&data, h, w, 3, scale);
    PreparedImage {
        data,
        height,
        width,
        scale,
    }
}

/// Decodes the image of a roidb entry and prepares it; the decoded size must be the
/// annotation's `width x height` (the boxes are in those pixels).
pub fn load_image(
    path: &Path,
    width: u32,
    height: u32,
    flipped: bool,
    cfg: &BlobConfig,
) -> Result<PreparedImage> {
    let rgb = decode(path)?;
    if (rgb.width(), rgb.height()) != (width, height) {
        bail!(
            "image {} is {}x{} but its annotation gives {width}x{height}: the boxes would not \
             fit it; restore the image or fix the annotation's <size>",
            path.display(),
            rgb.width(),
            rgb.height()
        );
    }
    Ok(prepare_image(&rgb, flipped, cfg))
}

/// A minibatch of images as one NCHW tensor's data.
#[derive(Clone, Debug, PartialEq)]
pub struct Blob {
    /// `n x 3 x height x width` values, row-major.
    pub data: Vec<f32>,
    /// Images.
    pub n: usize,
    /// The largest height of the minibatch.
    pub height: usize,
    /// The largest width of the minibatch.
    pub width: usize,
}

/// Detectron's `im_list_to_blob`: every image at the top left of a zero `height x width`
/// canvas (the largest of the minibatch), channels first.
pub fn im_list_to_blob(images: &[PreparedImage]) -> Blob {
    let height = images.iter().map(|im| im.height).max().unwrap_or(0);
    let width = images.iter().map(|im| im.width).max().unwrap_or(0);
    let plane = height * width;
    let mut data = vec![0f32; images.len() * 3 * plane];
    for (i, im) in images.iter().enumerate() {
        for c in 0..3 {
            let dst = &mut data[(i * 3 + c) * plane..][..plane];
            for y in 0..im.height {
                for x in 0..im.width {
                    dst[y * width + x] = im.data[(y * im.width + x) * 3 + c];
                }
            }
        }
    }
    Blob {
        data,
        n: images.len(),
        height,
        width,
    }
}

/// Test-time RoIs in blob pixels (Detectron's `_project_im_rois`): each proposal times the
/// image scale in f64, then rounded to f32 (training's RoIs multiply in f32 instead, see
/// `sampling::sample_rois`).
pub fn scale_test_rois(boxes: &[BoxF], scale: f64) -> Vec<BoxF> {
    boxes
        .iter()
        .map(|b| b.map(|v| (f64::from(v) * scale) as f32))
        .collect()
}
