//! The top-down map of an episode for rollout pictures: walls and pillars, each room's floor,
//! the trajectory so far, the target, and the agent with its heading. North (+y) is up.

use super::layout::Layout;
use super::texture::TARGET_COLOUR;
use crate::Frame;

const WALL: [u8; 3] = [40, 40, 48];
const TRAIL: [u8; 3] = [30, 90, 230];
const AGENT: [u8; 3] = [20, 170, 60];
const HEADING: [u8; 3] = [250, 250, 250];

/// What the map shows besides the plan.
pub(crate) struct Marks<'a> {
    /// The agent's position and heading.
    pub agent: ([f64; 2], f64),
    /// The agent's radius.
    pub radius: f64,
    /// The target's centre and side.
    pub target: ([f64; 2], f64),
    /// The positions visited this episode, in order.
    pub trail: &'a [[f64; 2]],
}

/// A `size x size` map of `layout` with `marks`.
pub(crate) fn top_down(layout: &Layout, marks: &Marks, size: usize) -> Frame {
    let size = size.max(1);
    let extent = layout.width.max(layout.height) as f64 * layout.cell;
    let ppm = size as f64 / extent;
    let mut canvas = Canvas {
        size,
        data: vec![255; size * size * 3],
    };
    for py in 0..size {
        for px in 0..size {
            let cx = ((px as f64 + 0.5) / ppm / layout.cell) as usize;
            let cy = ((extent - (py as f64 + 0.5) / ppm) / layout.cell) as usize;
            if cx >= layout.width || cy >= layout.height {
                continue;
            }
            let colour = if layout.solid[cy * layout.width + cx] {
                WALL
            } else {
                let [r, g, b] = layout.floors[layout.floor_of(cx, cy)][0];
                [lighten(r), lighten(g), lighten(b)]
            };
            canvas.set(px as isize, py as isize, colour);
        }
    }
    let to_px = |p: [f64; 2]| [p[0] * ppm, extent * ppm - p[1] * ppm];
    for pair in marks.trail.windows(2) {
        canvas.line(to_px(pair[0]), to_px(pair[1]), TRAIL);
    }
    let (target, side) = marks.target;
    canvas.disc(
        to_px(target),
        (side / 2.0 * ppm).max(1.5),
        TARGET_COLOUR,
        true,
    );
    let (position, heading) = marks.agent;
    let centre = to_px(position);
    let r = (marks.radius * ppm).max(2.0);
    canvas.disc(centre, r, AGENT, false);
    let tip = [
        centre[0] + heading.cos() * r * 1.6,
        centre[1] - heading.sin() * r * 1.6,
    ];
    canvas.line(centre, tip, HEADING);
    Frame {
        height: size,
        width: size,
        data: canvas.data,
    }
}

fn lighten(c: u8) -> u8 {
    ((c as u16 + 255) / 2) as u8
}

struct Canvas {
    size: usize,
    data: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: isize, y: isize, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.size && (y as usize) < self.size {
            let i = (y as usize * self.size + x as usize) * 3;
            self.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line of single pixels from `a` to `b` (pixel coordinates).
    fn line(&mut self, a: [f64; 2], b: [f64; 2], c: [u8; 3]) {
        let n = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as usize;
        for k in 0..=n {
            let t = k as f64 / n as f64;
            self.set(
                (a[0] + (b[0] - a[0]) * t) as isize,
                (a[1] + (b[1] - a[1]) * t) as isize,
                c,
            );
        }
    }

    /// A filled disc, or a filled square when `square`.
    fn disc(&mut self, centre: [f64; 2], r: f64, c: [u8; 3], square: bool) {
        let reach = r.ceil() as isize;
        let (cx, cy) = (centre[0] as isize, centre[1] as isize);
        for dy in -reach..=reach {
            for dx in -reach..=reach {
                let inside = square
                    || ((cx + dx) as f64 + 0.5 - centre[0]).powi(2)
                        + ((cy + dy) as f64 + 0.5 - centre[1]).powi(2)
                        <= r * r;
                if inside && (dx.abs() as f64) <= r && (dy.abs() as f64) <= r {
                    self.set(cx + dx, cy + dy, c);
                }
            }
        }
    }
}
