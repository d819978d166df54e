//! `sslbench normals from-depth`: surface normals computed from the depth of NYUv2's labelled
//! set, written as HDF5 with their masks (the work is `tasks::normals::export`).

use crate::data::nyuv2::{DepthSource, LabeledMat};
use crate::tasks::normals::export::NormalsExport;
use crate::tasks::normals::from_depth::{NormalFrame, NormalsFromDepth};
use crate::tasks::normals::geometry::{Intrinsics, ProjectionCrop};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::ops::RangeInclusive;
use std::path::PathBuf;

/// Arguments of `sslbench normals`.
#[derive(Args)]
pub struct NormalsArgs {
    #[command(subcommand)]
    command: NormalsCommand,
}

#[derive(Subcommand)]
enum NormalsCommand {
    /// Compute normals from the depth of nyu_depth_v2_labeled.mat by a local plane fit (window
    /// PCA) and write them with their valid masks as HDF5 (`normals`, `valid`, `index`).
    FromDepth(FromDepthArgs),
}

#[derive(Args)]
struct FromDepthArgs {
    /// The labelled set, nyu_depth_v2_labeled.mat (or a file in its layout).
    #[arg(long)]
    data: PathBuf,
    /// The HDF5 file to write.
    #[arg(long)]
    out: PathBuf,
    /// Side of the square fitting window in pixels (odd, at least 3).
    #[arg(long, default_value_t = NormalsFromDepth::default().window)]
    window: usize,
    /// Valid neighbours (the pixel included) a fit needs.
    #[arg(long, default_value_t = NormalsFromDepth::default().min_points)]
    min_points: usize,
    /// The depth map the geometry comes from: `depths` (in-painted) or `rawDepths`; the mask
    /// also needs `rawDepths` when the file holds it.
    #[arg(long, default_value = "depths")]
    depth_source: DepthSource,
    /// 1-based frame numbers A..B, both included (as MATLAB's A:B), or one number [default:
    /// every frame].
    #[arg(long, value_parser = parse_frames)]
    frames: Option<RangeInclusive<usize>>,
    /// The camera: `nyu` (the toolbox's RGB intrinsics, 1-based pixels) or FX,FY,CX,CY,ORIGIN
    /// in pixels (ORIGIN: 1 for 1-based pixel centres, 0 for 0-based).
    #[arg(long, default_value = "nyu", value_parser = parse_intrinsics)]
    intrinsics: Intrinsics,
    /// The valid projection region: `nyu` (the toolbox's 427 x 561 crop of 480 x 640 frames),
    /// `none`, or TOP,LEFT,HEIGHT,WIDTH (0-based).
    #[arg(long, default_value = "nyu", value_parser = parse_crop)]
    crop: Crop,
    /// The frame of the written normals: `camera` (x right, y down, z forward) or `codebook`
    /// (x right, y up, z toward the viewer, vocab40.mat's).
    #[arg(long, default_value = "camera", value_parser = parse_frame)]
    frame: NormalFrame,
}

/// A parsed `--crop`: `None` for `none`.
#[derive(Clone)]
struct Crop(Option<ProjectionCrop>);

/// Runs `sslbench normals`.
pub fn run(args: NormalsArgs) -> Result<()> {
    match args.command {
        NormalsCommand::FromDepth(a) => {
            let export = NormalsExport {
                fit: NormalsFromDepth {
                    intrinsics: a.intrinsics,
                    crop: a.crop.0,
                    window: a.window,
                    min_points: a.min_points,
                    frame: a.frame,
                },
                depth_source: a.depth_source,
                frames: a.frames,
            };
            let mat = LabeledMat::open(&a.data)?;
            let done = export.write(&mat, &a.out)?;
            println!(
                "wrote {} frames ({:.1}% of pixels valid) to {}",
                done.frames,
                100.0 * done.valid_fraction,
                a.out.display()
            );
            Ok(())
        }
    }
}

/// `A..B` or `A`.
fn parse_frames(s: &str) -> Result<RangeInclusive<usize>> {
    let number = |t: &str| {
        t.trim().parse::<usize>().with_context(|| {
            format!("--frames {s:?}: give 1-based frame numbers A..B (both included) or A")
        })
    };
    match s.split_once("..") {
        Some((a, b)) => Ok(number(a)?..=number(b)?),
        None => {
            let a = number(s)?;
            Ok(a..=a)
        }
    }
}

/// `n` comma-separated numbers.
fn numbers(s: &str, n: usize, what: &str) -> Result<Vec<f64>> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>())
        .collect::<std::result::Result<_, _>>()
        .ok()
        .filter(|v: &Vec<f64>| v.len() == n)
        .with_context(|| format!("{s:?} is not {what}"))?;
    Ok(v)
}

fn parse_intrinsics(s: &str) -> Result<Intrinsics> {
    if s == "nyu" {
        return Ok(Intrinsics::NYU_RGB);
    }
    let v = numbers(s, 5, "`nyu` or FX,FY,CX,CY,ORIGIN")?;
    let k = Intrinsics {
        fx: v[0],
        fy: v[1],
        cx: v[2],
        cy: v[3],
        origin: v[4],
    };
    k.check()?;
    Ok(k)
}

fn parse_crop(s: &str) -> Result<Crop> {
    match s {
        "nyu" => return Ok(Crop(Some(ProjectionCrop::NYU))),
        "none" => return Ok(Crop(None)),
        _ => {}
    }
    let v = numbers(s, 4, "`nyu`, `none` or TOP,LEFT,HEIGHT,WIDTH")?;
    if v.iter().any(|x| x.fract() != 0.0 || *x < 0.0) {
        bail!("--crop {s:?}: TOP,LEFT,HEIGHT,WIDTH are whole pixel counts");
    }
    let [top, left, height, width] = [v[0], v[1], v[2], v[3]].map(|x| x as usize);
    Ok(Crop(Some(ProjectionCrop {
        top,
        left,
        height,
        width,
    })))
}

fn parse_frame(s: &str) -> Result<NormalFrame> {
    toml::Value::String(s.into())
        .try_into()
        .with_context(|| format!("unknown normals frame {s:?}: use `camera` or `codebook`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_refuse_clearly() {
        assert_eq!(parse_frames("2..5").unwrap(), 2..=5);
        assert_eq!(parse_frames("7").unwrap(), 7..=7);
        assert!(parse_frames("a..b").is_err());
        assert_eq!(parse_intrinsics("nyu").unwrap(), Intrinsics::NYU_RGB);
        assert_eq!(parse_intrinsics("10,11,5,6,0").unwrap().fy, 11.0);
        assert!(parse_intrinsics("0,1,2,3,1").is_err());
        assert!(parse_intrinsics("1,2,3").is_err());
        assert!(parse_crop("none").unwrap().0.is_none());
        assert_eq!(parse_crop("1,2,3,4").unwrap().0.unwrap().width, 4);
        assert!(parse_crop("1.5,2,3,4").is_err());
        assert_eq!(parse_frame("codebook").unwrap(), NormalFrame::Codebook);
        assert!(parse_frame("world").is_err());
    }
}
