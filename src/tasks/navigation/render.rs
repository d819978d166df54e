//! A short rendered rollout, so a person can see what an agent does: the first held-out
//! episode as an animated GIF and a PNG contact sheet. The built-in environment adds its
//! top-down map (walls, target, trajectory) beside the agent's view.

use super::agent::Agent;
use super::config::{EnvKind, NavConfig};
use super::envs::{self, Phase};
use super::evaluate::EVAL_SEED;
use super::perception::Perception;
use super::rollout::Rollout;
use super::train;
use crate::seed::stream as seeded;
use anyhow::{Context, Result};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{imageops, Delay, RgbImage, RgbaImage};
use sslbench_envs::builtin::BuiltinEnv;
use sslbench_envs::{episode_seed, Env, Frame};
use std::path::{Path, PathBuf};

/// Height of the rendered panels in pixels.
const PANEL: u32 = 192;
/// Frames per row of the contact sheet, and frames on it.
const SHEET_COLUMNS: usize = 6;
const SHEET_FRAMES: usize = 12;

/// Plays the first held-out episode for at most `cfg.eval.rollout_frames` steps and writes
/// `rollout.gif` and `rollout.png` into `dir`.
pub fn record(
    cfg: &NavConfig,
    perception: &Perception<'_>,
    agent: &Agent,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    if cfg.eval.rollout_frames == 0 {
        return Ok(Vec::new());
    }
    let mut player = match cfg.env.kind {
        EnvKind::Builtin => Player::Builtin(BuiltinEnv::new(envs::builtin_config(
            &cfg.env,
            Phase::Heldout,
        ))?),
        EnvKind::Bridge => Player::Other(envs::make_one(&cfg.env, Phase::Heldout)?),
    };
    let mut rng = seeded(EVAL_SEED, &[7]);
    let mut rollout = Rollout::new(1, cfg.compress.stack);
    let first = player.env().reset(Some(episode_seed(EVAL_SEED, 0, 0)))?;
    train::start(perception, &mut rollout, std::slice::from_ref(&first))?;
    let mut panels = vec![panel(&first.rgb, player.map())];
    for _ in 0..cfg.eval.rollout_frames {
        let d = agent.act(&rollout, &mut rng, cfg.eval.greedy)?[0];
        let t = player.env().step(d.action as usize)?;
        panels.push(panel(&t.observation.rgb, player.map()));
        if t.terminated || t.truncated {
            break;
        }
        rollout.carry_over();
        let id = train::observe(perception, &mut rollout, &[&t.observation.rgb])?[0];
        rollout.advance(0, id, false);
    }
    let gif = dir.join("rollout.gif");
    write_gif(&panels, &gif)?;
    let sheet = dir.join("rollout.png");
    contact_sheet(&panels)
        .save(&sheet)
        .with_context(|| format!("cannot write {}", sheet.display()))?;
    Ok(vec![gif, sheet])
}

/// The environment played: the built-in one also draws its map.
enum Player {
    Builtin(BuiltinEnv),
    Other(Box<dyn Env>),
}

impl Player {
    fn env(&mut self) -> &mut dyn Env {
        match self {
            Player::Builtin(b) => b,
            Player::Other(e) => e.as_mut(),
        }
    }

    fn map(&self) -> Option<Frame> {
        match self {
            Player::Builtin(b) => Some(b.top_down(PANEL as usize)),
            Player::Other(_) => None,
        }
    }
}

fn to_image(f: &Frame) -> RgbImage {
    RgbImage::from_raw(f.width as u32, f.height as u32, f.data.clone())
        .unwrap_or_else(|| RgbImage::new(1, 1))
}

/// The agent's view scaled to the panel height, with the map beside it.
fn panel(view: &Frame, map: Option<Frame>) -> RgbImage {
    let v = to_image(view);
    let width = (v.width() * PANEL).div_ceil(v.height().max(1));
    let v = imageops::resize(&v, width, PANEL, imageops::FilterType::Nearest);
    let m =
        map.map(|m| imageops::resize(&to_image(&m), PANEL, PANEL, imageops::FilterType::Nearest));
    let total = v.width() + m.as_ref().map_or(0, |m| m.width() + 4);
    let mut out = RgbImage::from_pixel(total, PANEL, image::Rgb([255, 255, 255]));
    imageops::replace(&mut out, &v, 0, 0);
    if let Some(m) = m {
        imageops::replace(&mut out, &m, i64::from(v.width() + 4), 0);
    }
    out
}

fn write_gif(panels: &[RgbImage], path: &Path) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    encoder.set_repeat(Repeat::Infinite)?;
    let frames = panels.iter().map(|p| {
        let rgba: RgbaImage = image::DynamicImage::ImageRgb8(p.clone()).to_rgba8();
        image::Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(100, 1))
    });
    encoder
        .encode_frames(frames)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Up to 12 panels evenly spaced over the episode, in rows of 6.
fn contact_sheet(panels: &[RgbImage]) -> RgbImage {
    let count = panels.len().min(SHEET_FRAMES).max(1);
    let picks: Vec<&RgbImage> = (0..count)
        .map(|i| &panels[i * (panels.len() - 1) / (count - 1).max(1)])
        .collect();
    let (w, h) = picks[0].dimensions();
    let cols = count.min(SHEET_COLUMNS) as u32;
    let rows = count.div_ceil(SHEET_COLUMNS) as u32;
    let mut sheet =
        RgbImage::from_pixel(cols * (w + 4), rows * (h + 4), image::Rgb([255, 255, 255]));
    for (i, p) in picks.iter().enumerate() {
        let (c, r) = ((i % SHEET_COLUMNS) as u32, (i / SHEET_COLUMNS) as u32);
        imageops::replace(
            &mut sheet,
            *p,
            i64::from(c * (w + 4)),
            i64::from(r * (h + 4)),
        );
    }
    sheet
}
