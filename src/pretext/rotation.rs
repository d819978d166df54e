//! The RotNet pretext input (Gidaris, Singh and Komodakis 2018): an image turned by k quarter
//! turns, k in 0..4 being the class to predict.
//!
//! Turns are counter-clockwise as the image is viewed (x right, y down), the direction of
//! `torch.rot90(x, k, dims=(2, 3))` on an NCHW batch, of `np.rot90`, of VISSL's
//! `ImgRotatePil` and of Gidaris et al.'s `rotate_img` (90: transpose, then flip up-down).

use image::{imageops, RgbImage};

/// Number of rotation classes: 0, 90, 180 and 270 degrees.
pub const ROTATIONS: usize = 4;

/// `img` turned counter-clockwise by `quarter_turns` x 90 degrees (taken modulo 4); an odd
/// number of turns swaps width and height.
pub fn rotate(img: &RgbImage, quarter_turns: u8) -> RgbImage {
    // image's rotateN turn clockwise.
    match quarter_turns as usize % ROTATIONS {
        0 => img.clone(),
        1 => imageops::rotate270(img),
        2 => imageops::rotate180(img),
        _ => imageops::rotate90(img),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    /// Width 3, height 2, pixel values a..f in reading order:
    /// ```text
    /// a b c
    /// d e f
    /// ```
    fn pattern() -> RgbImage {
        RgbImage::from_fn(3, 2, |x, y| Rgb([(y * 3 + x) as u8; 3]))
    }

    fn rows(img: &RgbImage) -> Vec<Vec<u8>> {
        (0..img.height())
            .map(|y| (0..img.width()).map(|x| img.get_pixel(x, y)[0]).collect())
            .collect()
    }

    #[test]
    fn quarter_turns_match_rot90() {
        let img = pattern();
        // np.rot90 of [[0, 1, 2], [3, 4, 5]] for k = 1, 2, 3.
        assert_eq!(rows(&rotate(&img, 1)), [[2, 5], [1, 4], [0, 3]]);
        assert_eq!(rows(&rotate(&img, 2)), [[5, 4, 3], [2, 1, 0]]);
        assert_eq!(rows(&rotate(&img, 3)), [[3, 0], [4, 1], [5, 2]]);
    }

    #[test]
    fn four_quarter_turns_are_the_identity() {
        let img = pattern();
        let mut turned = img.clone();
        for _ in 0..ROTATIONS {
            turned = rotate(&turned, 1);
        }
        assert_eq!(turned, img);
        assert_eq!(rotate(&img, 0), img);
        assert_eq!(rotate(&img, 4), img);
        assert_eq!(rotate(&rotate(&img, 1), 3), img);
    }
}
