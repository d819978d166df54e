//! PNGs of detections for inspection: each box outlined in its label's colour, with a caption
//! `label score` on a filled band above it, and a strip that lays several such images side by
//! side. Captions need the TrueType font the plots use (`SSLBENCH_FONT` or a system path, read
//! at run time: src/report/plot.rs); without one the boxes are drawn alone.

use crate::report::plot::{has_font, COLORS, FAMILY};
use anyhow::{anyhow, Result};
use image::{Rgb, RgbImage};
use plotters::prelude::*;
use std::path::Path;

/// Pixels between the images of a strip.
pub const STRIP_GAP: u32 = 8;

/// `image` with `dets` drawn on it: `(label, score, [x1, y1, x2, y2])`, the box 0-based and
/// inclusive in the image's pixels (clipped to the image).
pub fn annotate(image: &RgbImage, dets: &[(String, f32, [f32; 4])]) -> Result<RgbImage> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return Ok(image.clone());
    }
    let mut buffer = image.as_raw().clone();
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let short = w.min(h) as f64;
        let thickness = ((short / 200.0).round() as i32).max(2);
        let font_px = (short / 22.0).max(11.0);
        let text = has_font();
        for (label, score, bbox) in dets {
            let color = label_color(label);
            let clip = |v: f32, size: u32| v.round().clamp(0.0, (size - 1) as f32) as i32;
            let (x1, y1) = (clip(bbox[0], w), clip(bbox[1], h));
            let (x2, y2) = (clip(bbox[2], w), clip(bbox[3], h));
            for t in 0..thickness {
                root.draw(&Rectangle::new(
                    [(x1 - t, y1 - t), (x2 + t, y2 + t)],
                    color.stroke_width(1),
                ))
                .map_err(drawing)?;
            }
            if text {
                let caption = format!("{label} {score:.2}");
                let font = (FAMILY, font_px).into_font().color(&WHITE);
                let (tw, th) = root.estimate_text_size(&caption, &font).map_err(drawing)?;
                let (tw, th) = (tw as i32 + 4, th as i32 + 2);
                let top = if y1 - thickness >= th {
                    y1 - thickness - th
                } else {
                    y1
                };
                // Kept inside the image on the right when the box is near its edge.
                let left = (x1 - thickness + 1).min(w as i32 - tw).max(0);
                root.draw(&Rectangle::new(
                    [(left, top), (left + tw, top + th)],
                    color.filled(),
                ))
                .map_err(drawing)?;
                root.draw(&Text::new(caption, (left + 2, top + 1), font))
                    .map_err(drawing)?;
            }
        }
        root.present().map_err(drawing)?;
    }
    RgbImage::from_raw(w, h, buffer).ok_or_else(|| anyhow!("internal: image buffer resized"))
}

/// Draws `dets` on `image` (see [`annotate`]) and writes the PNG to `out` atomically.
pub fn draw_detections(
    image: &RgbImage,
    dets: &[(String, f32, [f32; 4])],
    out: &Path,
) -> Result<()> {
    write_png(&annotate(image, dets)?, out)
}

/// Lays `images` left to right, top-aligned, on white with a small gap, and writes the PNG to
/// `out` atomically.
pub fn draw_strip(images: &[RgbImage], out: &Path) -> Result<()> {
    if images.is_empty() {
        anyhow::bail!("no image to lay in a strip for {}", out.display());
    }
    let width =
        images.iter().map(|i| i.width()).sum::<u32>() + STRIP_GAP * (images.len() as u32 - 1);
    let height = images.iter().map(|i| i.height()).max().unwrap_or(1);
    let mut strip = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let mut x = 0;
    for image in images {
        image::imageops::replace(&mut strip, image, i64::from(x), 0);
        x += image.width() + STRIP_GAP;
    }
    write_png(&strip, out)
}

/// A label's colour: the plots' palette, picked by a hash of the name so a class keeps its
/// colour across images.
fn label_color(label: &str) -> RGBColor {
    // FNV-1a: fixed, unlike std's randomly seeded hasher.
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    COLORS[(hash % COLORS.len() as u64) as usize]
}

/// Encodes `image` as PNG and writes it atomically.
fn write_png(image: &RgbImage, out: &Path) -> Result<()> {
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png)?;
    crate::atomic::write_atomic(out, png.get_ref())
}

fn drawing(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("cannot draw the detections: {e}")
}
