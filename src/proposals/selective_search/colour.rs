//! The colour spaces of selective search (Uijlings et al. 2013, section 3.2 and Table 1):
//! each maps an 8-bit RGB image to planes on a common 0..255 scale, the scale on which
//! Felzenszwalb's `k` and the 25-bin colour histograms are defined.

use super::filter::Plane;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// A colour space in which one segmentation and its hierarchy are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColourSpace {
    /// R, G, B.
    Rgb,
    /// Hue (0..360 degrees scaled to 0..255), saturation, value: OpenCV's HSV definition.
    Hsv,
    /// CIE Lab (D65): L scaled from 0..100 to 0..255, a and b offset by 128.
    Lab,
    /// Normalised r = R / (R+G+B), g = G / (R+G+B) (scaled to 0..255) and intensity.
    Rgi,
    /// The hue channel of HSV alone.
    H,
    /// Intensity (R+G+B)/3 alone.
    I,
}

/// The image in `space`, one [`Plane`] per channel, values in 0..=255.
pub fn convert(img: &RgbImage, space: ColourSpace) -> Vec<Plane> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let channels = match space {
        ColourSpace::H | ColourSpace::I => 1,
        _ => 3,
    };
    let mut data = vec![Vec::with_capacity(w * h); channels];
    let lab = (space == ColourSpace::Lab).then(|| crate::pretext::lab::from_rgb_image(img));
    for (i, px) in img.pixels().enumerate() {
        let [r, g, b] = px.0.map(f32::from);
        let values: [f32; 3] = match space {
            ColourSpace::Rgb => [r, g, b],
            ColourSpace::Hsv => hsv(r, g, b),
            ColourSpace::H => [hsv(r, g, b)[0], 0.0, 0.0],
            ColourSpace::I => [(r + g + b) / 3.0, 0.0, 0.0],
            ColourSpace::Rgi => {
                let s = r + g + b;
                let (nr, ng) = if s > 0.0 {
                    (255.0 * r / s, 255.0 * g / s)
                } else {
                    (0.0, 0.0)
                };
                [nr, ng, s / 3.0]
            }
            ColourSpace::Lab => {
                let lab = lab.as_ref().expect("Lab computed above");
                let (x, y) = (i % w, i / w);
                [
                    lab[[y, x, 0]] * 255.0 / 100.0,
                    lab[[y, x, 1]] + 128.0,
                    lab[[y, x, 2]] + 128.0,
                ]
            }
        };
        for (c, plane) in data.iter_mut().enumerate() {
            plane.push(values[c].clamp(0.0, 255.0));
        }
    }
    data.into_iter()
        .map(|data| Plane {
            width: w,
            height: h,
            data,
        })
        .collect()
}

/// HSV of one RGB colour (channels 0..255): hue in degrees scaled to 0..255, saturation
/// `(max - min) / max` and value `max`, both on 0..255.
fn hsv(r: f32, g: f32, b: f32) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let s = if max > 0.0 { 255.0 * delta / max } else { 0.0 };
    let hue = if delta <= 0.0 {
        0.0
    } else if max == r {
        60.0 * (g - b) / delta
    } else if max == g {
        120.0 + 60.0 * (b - r) / delta
    } else {
        240.0 + 60.0 * (r - g) / delta
    };
    let hue = if hue < 0.0 { hue + 360.0 } else { hue };
    [hue * 255.0 / 360.0, s, max]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_of_primaries_and_lab_of_white() {
        assert_eq!(hsv(255.0, 0.0, 0.0), [0.0, 255.0, 255.0]);
        assert_eq!(hsv(0.0, 255.0, 0.0), [85.0, 255.0, 255.0]);
        assert_eq!(hsv(0.0, 0.0, 255.0), [170.0, 255.0, 255.0]);
        assert_eq!(hsv(100.0, 100.0, 100.0), [0.0, 0.0, 100.0]);
        let img = RgbImage::from_pixel(2, 1, image::Rgb([255, 255, 255]));
        let lab = convert(&img, ColourSpace::Lab);
        assert!((lab[0].data[0] - 255.0).abs() < 0.01);
        assert!((lab[1].data[1] - 128.0).abs() < 0.01);
        assert_eq!(convert(&img, ColourSpace::I).len(), 1);
    }
}
