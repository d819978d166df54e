//! The Jigsaw pretext input (Noroozi and Favaro 2016) as VISSL builds it
//! (`configs/config/pretrain/jigsaw/jigsaw_8gpu_resnet.yaml`): resize the shorter side,
//! random horizontal flip, random square crop, random grayscale of the whole crop, a grid of
//! cells with one randomly placed patch in each (`ImgPatchesFromTensor`), and the patches put
//! in the order of one permutation of the set (`ShuffleImgPatches`); the label is that
//! permutation's index in the set.
//!
//! Conventions, checked against VISSL:
//! - random draws in VISSL's order: the flip (p = 1/2), the crop's top then left edge
//!   (torchvision `RandomCrop`), the grayscale, then one (x, y) offset per cell;
//! - grayscale is Pillow's `convert("L")` (ITU-R 601-2 luma in 16-bit fixed point, rounded)
//!   copied to the three channels, as torchvision's `RandomGrayscale` does on a PIL image;
//! - the cell side is `crop / grid` (floored); a patch's offset inside its cell is drawn in
//!   `0..cell - patch`, the exclusive range of numpy's `randint(0, jitter)`, so the last
//!   placement is never used and `patch` must be smaller than the cell;
//! - output position `i` holds input tile `perm[i]` (`[tiles[i] for i in perm]`), where input
//!   tiles are numbered in [`TileOrder`]: VISSL loops over columns first (its tile `t` is the
//!   cell in column `t / 3`, row `t % 3`), Noroozi and Favaro's loader over rows.
//!
//! The tiles are 8-bit images; the caller normalises each one (VISSL normalises the crop before
//! cutting it, which gives the same values).

use super::permutations::{Permutation, TILES};
use crate::data::transform::resize_shorter;
use anyhow::{ensure, Result};
use image::imageops;
use image::{Rgb, RgbImage};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Pillow's fixed-point luma weights for R, G, B (299/1000, 587/1000, 114/1000 in 1/65536).
const LUMA_WEIGHTS: [u32; 3] = [19595, 38470, 7471];
/// Half of Pillow's fixed-point unit, for rounding.
const LUMA_ROUND: u32 = 1 << 15;

/// The Jigsaw transform (a pretext config's `[jigsaw]` table).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JigsawConfig {
    /// The shorter side is resized to this many pixels (VISSL: 256).
    pub resize: u32,
    /// Side of the random square crop (VISSL: 255).
    pub crop: u32,
    /// Flip left-right with probability 1/2 (VISSL: true).
    pub flip: bool,
    /// Probability of turning the whole crop grey (VISSL: 0.66).
    pub grayscale_p: f64,
    /// Cells per side of the grid; `grid * grid` must be the 9 tiles of a permutation.
    pub grid: u32,
    /// Side of the patch cut from each cell (VISSL: 64, i.e. 85 px cells with jitter 21).
    pub patch: u32,
    /// How input tiles are numbered, which fixes what a permutation means.
    pub order: TileOrder,
}

/// How the cells of the grid are numbered before the permutation reorders them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TileOrder {
    /// Left to right, then top to bottom (Noroozi and Favaro's `JigsawImageLoader`).
    RowMajor,
    /// Top to bottom, then left to right (VISSL's `ImgPatchesFromTensor`).
    ColumnMajor,
}

impl TileOrder {
    /// The (column, row) of tile `t` in a `grid` x `grid` grid.
    fn cell(self, t: u32, grid: u32) -> (u32, u32) {
        match self {
            TileOrder::RowMajor => (t % grid, t / grid),
            TileOrder::ColumnMajor => (t / grid, t % grid),
        }
    }
}

impl JigsawConfig {
    /// Checks that the grid has 9 cells, the crop fits the resized image and a patch fits
    /// strictly inside a cell.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            (self.grid * self.grid) as usize == TILES,
            "jigsaw.grid = {} gives {} tiles, but permutations order {TILES} (use grid = 3)",
            self.grid,
            self.grid * self.grid
        );
        ensure!(
            self.crop >= 1 && self.crop <= self.resize,
            "jigsaw.crop = {} must be between 1 and jigsaw.resize = {} (the shorter side)",
            self.crop,
            self.resize
        );
        let cell = self.crop / self.grid;
        ensure!(
            self.patch >= 1 && self.patch < cell,
            "jigsaw.patch = {} must be at least 1 and smaller than the {cell} px cell \
             (crop {} / grid {}), leaving room for the jitter",
            self.patch,
            self.crop,
            self.grid
        );
        ensure!(
            (0.0..=1.0).contains(&self.grayscale_p),
            "jigsaw.grayscale_p = {} is not a probability in [0, 1]",
            self.grayscale_p
        );
        Ok(())
    }

    /// The 9 patches of `img`, output position `i` holding input tile `perm[i]` (see the
    /// module documentation), each `patch` x `patch` pixels.
    pub fn tiles<R: Rng>(
        &self,
        img: &RgbImage,
        perm: &Permutation,
        rng: &mut R,
    ) -> Result<Vec<RgbImage>> {
        self.validate()?;
        let mut seen = [false; TILES];
        for &t in perm {
            ensure!(
                (t as usize) < TILES && !std::mem::replace(&mut seen[t as usize], true),
                "{perm:?} is not a permutation of the tiles 0..{TILES}"
            );
        }
        ensure!(
            img.width() > 0 && img.height() > 0,
            "cannot cut Jigsaw tiles from an empty image"
        );
        let mut img = resize_shorter(img, self.resize).into_owned();
        if self.flip && rng.random_bool(0.5) {
            imageops::flip_horizontal_in_place(&mut img);
        }
        let top = rng.random_range(0..=img.height() - self.crop);
        let left = rng.random_range(0..=img.width() - self.crop);
        let mut crop = imageops::crop_imm(&img, left, top, self.crop, self.crop).to_image();
        if rng.random_bool(self.grayscale_p) {
            grayscale(&mut crop);
        }
        let cell = self.crop / self.grid;
        let cells: Vec<RgbImage> = (0..TILES as u32)
            .map(|t| {
                let (col, row) = self.order.cell(t, self.grid);
                let dx = rng.random_range(0..cell - self.patch);
                let dy = rng.random_range(0..cell - self.patch);
                let (x, y) = (col * cell + dx, row * cell + dy);
                imageops::crop_imm(&crop, x, y, self.patch, self.patch).to_image()
            })
            .collect();
        Ok(perm.iter().map(|&t| cells[t as usize].clone()).collect())
    }
}

/// Replaces every pixel by its luma in all three channels (Pillow's `convert("L")`).
fn grayscale(img: &mut RgbImage) {
    for px in img.pixels_mut() {
        let luma: u32 = (0..3).map(|c| LUMA_WEIGHTS[c] * u32::from(px[c])).sum();
        *px = Rgb([((luma + LUMA_ROUND) >> 16) as u8; 3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// The VISSL values, as a pretext config writes them.
    fn vissl() -> JigsawConfig {
        toml::from_str(
            "resize = 256\ncrop = 255\nflip = true\ngrayscale_p = 0.66\ngrid = 3\npatch = 64\n\
             order = \"column_major\"",
        )
        .unwrap()
    }

    fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut rng = StdRng::seed_from_u64(seed);
        RgbImage::from_fn(w, h, |_, _| Rgb(rng.random()))
    }

    /// A crop-sized image whose 3x3 cells have distinct colours, the colour of cell (col, row).
    fn cells_image(side: u32) -> (RgbImage, impl Fn(u32, u32) -> Rgb<u8>) {
        let colour = |col: u32, row: u32| Rgb([40 * col as u8 + 10, 70 * row as u8 + 20, 200]);
        let cell = side / 3;
        (
            RgbImage::from_fn(side, side, |x, y| colour(x / cell, y / cell)),
            colour,
        )
    }

    const PERM: Permutation = [4, 7, 0, 2, 8, 1, 6, 3, 5];

    #[test]
    fn tiles_have_the_configured_count_and_size() {
        let cfg = vissl();
        let mut rng = StdRng::seed_from_u64(0);
        for (w, h) in [(400, 300), (256, 700), (100, 100)] {
            let tiles = cfg.tiles(&noise(w, h, 1), &PERM, &mut rng).unwrap();
            assert_eq!(tiles.len(), TILES);
            assert!(tiles.iter().all(|t| t.dimensions() == (64, 64)));
        }
    }

    #[test]
    fn same_seed_same_tiles() {
        let (cfg, img) = (vissl(), noise(320, 240, 2));
        let run = |seed| {
            cfg.tiles(&img, &PERM, &mut StdRng::seed_from_u64(seed))
                .unwrap()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn output_position_i_holds_input_tile_perm_i() {
        for order in [TileOrder::RowMajor, TileOrder::ColumnMajor] {
            let cfg = JigsawConfig {
                resize: 255,
                flip: false,
                grayscale_p: 0.0,
                order,
                ..vissl()
            };
            let (img, colour) = cells_image(255);
            let mut rng = StdRng::seed_from_u64(3);
            for _ in 0..5 {
                let tiles = cfg.tiles(&img, &PERM, &mut rng).unwrap();
                for (i, tile) in tiles.iter().enumerate() {
                    let t = PERM[i] as u32;
                    let (col, row) = match order {
                        TileOrder::RowMajor => (t % 3, t / 3),
                        TileOrder::ColumnMajor => (t / 3, t % 3),
                    };
                    assert!(
                        tile.pixels().all(|&p| p == colour(col, row)),
                        "{order:?} {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn grayscale_gives_equal_channels_and_pillow_luma() {
        let cfg = JigsawConfig {
            grayscale_p: 1.0,
            ..vissl()
        };
        let tiles = cfg
            .tiles(&noise(300, 300, 4), &PERM, &mut StdRng::seed_from_u64(5))
            .unwrap();
        assert!(tiles
            .iter()
            .flat_map(|t| t.pixels())
            .all(|p| p[0] == p[1] && p[1] == p[2]));
        // Pillow: (255, 0, 0) -> 76, (0, 255, 0) -> 150, (0, 0, 255) -> 29.
        let mut img = RgbImage::from_vec(3, 1, vec![255, 0, 0, 0, 255, 0, 0, 0, 255]).unwrap();
        grayscale(&mut img);
        assert_eq!(img.as_raw(), &[76, 76, 76, 150, 150, 150, 29, 29, 29]);
    }

    #[test]
    fn bad_configs_and_permutations_are_errors() {
        let bad = [
            JigsawConfig { grid: 4, ..vissl() },
            JigsawConfig {
                patch: 85,
                ..vissl()
            },
            JigsawConfig {
                crop: 300,
                ..vissl()
            },
            JigsawConfig {
                grayscale_p: 1.5,
                ..vissl()
            },
        ];
        for cfg in bad {
            assert!(cfg.validate().is_err(), "{cfg:?}");
        }
        let mut rng = StdRng::seed_from_u64(0);
        let img = noise(300, 300, 6);
        for perm in [[0, 1, 2, 3, 4, 5, 6, 7, 7], [0, 1, 2, 3, 4, 5, 6, 7, 9]] {
            assert!(vissl().tiles(&img, &perm, &mut rng).is_err());
        }
        assert!(toml::from_str::<JigsawConfig>("resize = 256\njitter = 21").is_err());
    }
}
