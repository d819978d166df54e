//! The navigation graph of a plan: a lattice of places at half-cell spacing where the agent's
//! disc fits, joined where the disc can slide straight from one to the next. Episodes draw
//! their start and target from one connected part of it (so the target is always reachable),
//! and the shortest path on it guides scripted agents.

use std::collections::VecDeque;

use super::layout::Layout;
use crate::rng::Rng;

/// Lattice places per cell side.
const PER_CELL: usize = 2;
/// Distance of an unreachable place.
const FAR: u32 = u32::MAX;

/// The lattice of places of one plan, for one agent radius.
#[derive(Debug, Clone)]
pub(crate) struct NavGrid {
    /// Spacing of the places in metres.
    spacing: f64,
    width: usize,
    height: usize,
    /// Whether the agent fits at each place.
    fits: Vec<bool>,
    /// Bit 0: the move to the +x neighbour is free; bit 1: to the +y neighbour.
    links: Vec<u8>,
}

impl NavGrid {
    /// The lattice of `layout` for an agent of radius `r`.
    pub(crate) fn new(layout: &Layout, r: f64) -> Self {
        let spacing = layout.cell / PER_CELL as f64;
        let (width, height) = (layout.width * PER_CELL, layout.height * PER_CELL);
        let mut grid = Self {
            spacing,
            width,
            height,
            fits: vec![false; width * height],
            links: vec![0; width * height],
        };
        for i in 0..width * height {
            let [x, y] = grid.place(i);
            grid.fits[i] = layout.is_free(x, y, r);
        }
        // A move is free when the disc fits at points no more than r/4 apart along it.
        let samples = ((spacing / (r / 4.0)).ceil() as usize).max(2);
        let slide = |a: [f64; 2], b: [f64; 2]| {
            (1..samples).all(|k| {
                let t = k as f64 / samples as f64;
                layout.is_free(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, r)
            })
        };
        for y in 0..height {
            for x in 0..width {
                let i = y * width + x;
                if !grid.fits[i] {
                    continue;
                }
                if x + 1 < width && grid.fits[i + 1] && slide(grid.place(i), grid.place(i + 1)) {
                    grid.links[i] |= 1;
                }
                if y + 1 < height
                    && grid.fits[i + width]
                    && slide(grid.place(i), grid.place(i + width))
                {
                    grid.links[i] |= 2;
                }
            }
        }
        grid
    }

    /// The position of place `i` in metres.
    pub(crate) fn place(&self, i: usize) -> [f64; 2] {
        let (x, y) = (i % self.width, i / self.width);
        [
            (x as f64 + 0.5) * self.spacing,
            (y as f64 + 0.5) * self.spacing,
        ]
    }

    /// The neighbours of place `i` that the agent can slide to.
    fn neighbours(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        let w = self.width;
        let left = (!i.is_multiple_of(w) && self.links[i - 1] & 1 != 0).then(|| i - 1);
        let right = (self.links[i] & 1 != 0).then_some(i + 1);
        let down = (i >= w && self.links[i - w] & 2 != 0).then(|| i - w);
        let up = (self.links[i] & 2 != 0).then_some(i + w);
        [left, right, down, up].into_iter().flatten()
    }

    /// Moves (lattice steps) from `from` to every place; [`FAR`] where it cannot be reached.
    fn distances(&self, from: usize) -> Vec<u32> {
        let mut dist = vec![FAR; self.fits.len()];
        dist[from] = 0;
        let mut queue = VecDeque::from([from]);
        while let Some(i) = queue.pop_front() {
            for n in self.neighbours(i) {
                if dist[n] == FAR {
                    dist[n] = dist[i] + 1;
                    queue.push_back(n);
                }
            }
        }
        dist
    }

    /// A start place and a target place reachable from it, at least `min_distance` metres
    /// apart in a straight line (or as far apart as the start's part of the plan allows).
    /// `None` when the agent fits nowhere.
    pub(crate) fn episode(&self, rng: &mut Rng, min_distance: f64) -> Option<(usize, usize)> {
        let places: Vec<usize> = (0..self.fits.len()).filter(|&i| self.fits[i]).collect();
        if places.is_empty() {
            return None;
        }
        let mut best: Option<(f64, usize, usize)> = None;
        for _ in 0..16 {
            let start = places[rng.below(places.len())];
            let dist = self.distances(start);
            let s = self.place(start);
            let far = |i: &usize| {
                let p = self.place(*i);
                (p[0] - s[0]).hypot(p[1] - s[1])
            };
            let candidates: Vec<usize> = places
                .iter()
                .copied()
                .filter(|i| dist[*i] != FAR && far(i) >= min_distance)
                .collect();
            if !candidates.is_empty() {
                return Some((start, candidates[rng.below(candidates.len())]));
            }
            let farthest = places
                .iter()
                .copied()
                .filter(|i| dist[*i] != FAR)
                .max_by(|a, b| far(a).total_cmp(&far(b)));
            if let Some(t) = farthest {
                if best.is_none_or(|(d, _, _)| far(&t) > d) {
                    best = Some((far(&t), start, t));
                }
            }
        }
        best.map(|(_, s, t)| (s, t))
    }

    /// The place nearest to (`x`, `y`) where the agent fits, searching a few places around.
    fn nearest(&self, x: f64, y: f64) -> Option<usize> {
        let (cx, cy) = (
            (x / self.spacing - 0.5).round() as isize,
            (y / self.spacing - 0.5).round() as isize,
        );
        let mut best: Option<(f64, usize)> = None;
        for dy in -2..=2 {
            for dx in -2..=2 {
                let (px, py) = (cx + dx, cy + dy);
                if px < 0 || py < 0 || px as usize >= self.width || py as usize >= self.height {
                    continue;
                }
                let i = py as usize * self.width + px as usize;
                if !self.fits[i] {
                    continue;
                }
                let p = self.place(i);
                let d = (p[0] - x).hypot(p[1] - y);
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, i));
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// The places of a shortest lattice path from near (`x`, `y`) to the place of `target`,
    /// both ends included; empty when there is none.
    pub(crate) fn path(&self, x: f64, y: f64, target: [f64; 2]) -> Vec<[f64; 2]> {
        let (Some(from), Some(to)) = (self.nearest(x, y), self.nearest(target[0], target[1]))
        else {
            return Vec::new();
        };
        let dist = self.distances(to);
        if dist[from] == FAR {
            return Vec::new();
        }
        let mut path = vec![self.place(from)];
        let mut at = from;
        while at != to {
            at = self
                .neighbours(at)
                .find(|&n| dist[n] + 1 == dist[at])
                .unwrap_or(to);
            path.push(self.place(at));
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::BuiltinConfig;

    #[test]
    fn every_place_the_agent_fits_is_reachable() {
        for cfg in [
            BuiltinConfig::default(),
            BuiltinConfig {
                rooms_x: 3,
                rooms_y: 3,
                furniture: 4,
                ..BuiltinConfig::default()
            },
            BuiltinConfig {
                rooms_x: 4,
                rooms_y: 1,
                room_size: 2.5,
                ..BuiltinConfig::default()
            },
        ] {
            for seed in 0..20 {
                let layout = Layout::generate(&cfg, seed, 32);
                let nav = NavGrid::new(&layout, cfg.agent_radius);
                let first = nav.fits.iter().position(|&f| f).unwrap();
                let dist = nav.distances(first);
                let cut = (0..dist.len())
                    .filter(|&i| nav.fits[i] && dist[i] == FAR)
                    .count();
                assert_eq!(cut, 0, "seed {seed}: {cut} places cut off under {cfg:?}");
            }
        }
    }

    #[test]
    fn paths_join_the_agent_to_the_target() {
        let cfg = BuiltinConfig::default();
        let layout = Layout::generate(&cfg, 3, 32);
        let nav = NavGrid::new(&layout, cfg.agent_radius);
        let (s, t) = nav
            .episode(&mut Rng::new(1), cfg.min_start_distance)
            .unwrap();
        let (a, b) = (nav.place(s), nav.place(t));
        let path = nav.path(a[0], a[1], b);
        assert_eq!((path[0], *path.last().unwrap()), (a, b));
        for w in path.windows(2) {
            let step = (w[1][0] - w[0][0]).hypot(w[1][1] - w[0][1]);
            assert!((step - nav.spacing).abs() < 1e-9);
        }
    }
}
