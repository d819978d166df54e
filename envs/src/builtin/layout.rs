//! Seeded procedural floor plans: a grid of square rooms, walls one cell thick, doorways that
//! connect every room (a random spanning tree plus a few extra doors, sometimes a wall left
//! open), free-standing pillars and furniture blocks, a wall texture per room side, a floor
//! colour per room. Also the agent's collision test against the plan.

use super::texture::{guard, hsv};
use super::BuiltinConfig;
use crate::rng::Rng;

/// The sides of a cell, named by the outward normal of the face: -x, +x, -y, +y.
pub(crate) const SIDES: [(isize, isize); 4] = [(-1, 0), (1, 0), (0, -1), (0, 1)];

/// Marks a cell that is no room's floor (walls, pillars).
const NO_ROOM: u16 = u16::MAX;

/// One floor plan.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Side of a cell in metres.
    pub cell: f64,
    /// Cells along x.
    pub width: usize,
    /// Cells along y.
    pub height: usize,
    /// Whether each cell (row-major, `y * width + x`) is wall or furniture.
    pub solid: Vec<bool>,
    /// The bank texture of each face of each solid cell, indexed by [`SIDES`].
    pub faces: Vec<[u16; 4]>,
    /// The room whose floor each free cell belongs to.
    pub room: Vec<u16>,
    /// Each room's two checker floor colours.
    pub floors: Vec<[[u8; 3]; 2]>,
    /// The ceiling colour.
    pub ceiling: [u8; 3],
}

impl Layout {
    /// The plan of `seed` under the configuration's sizes, with textures from a bank of
    /// `textures` entries.
    pub(crate) fn generate(cfg: &BuiltinConfig, seed: u64, textures: usize) -> Self {
        let mut rng = Rng::new(seed);
        let rc = cfg.room_cells();
        let stride = rc + 1;
        let (rx, ry) = (cfg.rooms_x, cfg.rooms_y);
        let (width, height) = (rx * stride + 1, ry * stride + 1);
        let mut plan = Plan {
            width,
            solid: vec![true; width * height],
            room: vec![NO_ROOM; width * height],
            pillar: vec![None; width * height],
        };
        for j in 0..ry {
            for i in 0..rx {
                let id = (j * rx + i) as u16;
                for y in 0..rc {
                    for x in 0..rc {
                        plan.open(i * stride + 1 + x, j * stride + 1 + y, id);
                    }
                }
            }
        }
        plan.doors(cfg, &mut rng, rx, ry);
        let margin = ((2.0 * cfg.agent_radius + cfg.step_size) / cfg.cell_size).ceil() as usize;
        for j in 0..ry {
            for i in 0..rx {
                let count = rng.below(cfg.furniture + 1);
                for _ in 0..count {
                    plan.block(
                        &mut rng,
                        i * stride + 1,
                        j * stride + 1,
                        rc,
                        margin,
                        textures,
                    );
                }
            }
        }
        let rooms = rx * ry;
        let walls: Vec<[u16; 4]> = (0..rooms).map(|_| distinct4(&mut rng, textures)).collect();
        let faces = plan.faces(&walls, height);
        let floors = (0..rooms)
            .map(|_| {
                let base = hsv(rng.unit(), rng.range(0.1, 0.45), rng.range(0.35, 0.6));
                let dark = [base[0] * 0.8, base[1] * 0.8, base[2] * 0.8];
                [guard(base), guard(dark)]
            })
            .collect();
        let ceiling = guard(hsv(rng.unit(), rng.range(0.03, 0.12), rng.range(0.8, 0.92)));
        Self {
            cell: cfg.cell_size,
            width,
            height,
            solid: plan.solid,
            faces,
            room: plan.room,
            floors,
            ceiling,
        }
    }

    /// Whether cell (`x`, `y`) is solid; cells outside the plan are.
    pub(crate) fn is_solid(&self, x: isize, y: isize) -> bool {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return true;
        }
        self.solid[y as usize * self.width + x as usize]
    }

    /// Whether a disc of radius `r` centred at (`x`, `y`) (metres) overlaps no solid cell.
    /// Touching a wall is allowed.
    pub(crate) fn is_free(&self, x: f64, y: f64, r: f64) -> bool {
        let c = self.cell;
        let (x0, x1) = (
            ((x - r) / c).floor() as isize,
            ((x + r) / c).floor() as isize,
        );
        let (y0, y1) = (
            ((y - r) / c).floor() as isize,
            ((y + r) / c).floor() as isize,
        );
        for cy in y0..=y1 {
            for cx in x0..=x1 {
                if !self.is_solid(cx, cy) {
                    continue;
                }
                let nx = x.clamp(cx as f64 * c, (cx + 1) as f64 * c);
                let ny = y.clamp(cy as f64 * c, (cy + 1) as f64 * c);
                if (nx - x).powi(2) + (ny - y).powi(2) < r * r {
                    return false;
                }
            }
        }
        true
    }

    /// The room whose floor colours cell (`x`, `y`) takes (room 0 under walls).
    #[inline]
    pub(crate) fn floor_of(&self, x: usize, y: usize) -> usize {
        match self.room[y * self.width + x] {
            NO_ROOM => 0,
            r => r as usize,
        }
    }
}

/// Four textures of a room's sides, distinct when the bank allows.
fn distinct4(rng: &mut Rng, textures: usize) -> [u16; 4] {
    let mut out = [0u16; 4];
    for i in 0..4 {
        loop {
            let t = rng.below(textures) as u16;
            if textures < 4 || !out[..i].contains(&t) {
                out[i] = t;
                break;
            }
        }
    }
    out
}

/// A plan under construction.
struct Plan {
    width: usize,
    solid: Vec<bool>,
    room: Vec<u16>,
    /// The texture of a pillar cell.
    pillar: Vec<Option<u16>>,
}

impl Plan {
    fn open(&mut self, x: usize, y: usize, room: u16) {
        let i = y * self.width + x;
        self.solid[i] = false;
        self.room[i] = room;
    }

    /// Doorways: a random spanning tree over neighbouring rooms (every room reachable), a
    /// quarter of the other walls get a door too, and one door in six opens the whole wall.
    fn doors(&mut self, cfg: &BuiltinConfig, rng: &mut Rng, rx: usize, ry: usize) {
        let (rc, door) = (cfg.room_cells(), cfg.door_cells());
        let stride = rc + 1;
        let mut edges = Vec::new();
        for j in 0..ry {
            for i in 0..rx {
                if i + 1 < rx {
                    edges.push((i, j, true));
                }
                if j + 1 < ry {
                    edges.push((i, j, false));
                }
            }
        }
        for k in (1..edges.len()).rev() {
            edges.swap(k, rng.below(k + 1));
        }
        let mut parent: Vec<usize> = (0..rx * ry).collect();
        fn root(p: &mut [usize], mut a: usize) -> usize {
            while p[a] != a {
                p[a] = p[p[a]];
                a = p[a];
            }
            a
        }
        for (i, j, along_x) in edges {
            let a = j * rx + i;
            let b = if along_x { a + 1 } else { a + rx };
            let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
            let tree = ra != rb;
            if tree {
                parent[ra] = rb;
            } else if !rng.chance(0.25) {
                continue;
            }
            let span = if rng.chance(1.0 / 6.0) { rc } else { door };
            let offset = rng.below(rc - span + 1);
            for k in 0..span {
                let along = k + offset + 1;
                if along_x {
                    self.open((i + 1) * stride, j * stride + along, a as u16);
                } else {
                    self.open(i * stride + along, (j + 1) * stride, a as u16);
                }
            }
        }
    }

    /// One pillar or furniture block (1x1 to 2x2 cells) inside the room whose first inner
    /// cell is (`x0`, `y0`), at least `margin` cells from walls, doors and other blocks, so
    /// it never cuts the room's floor apart. Skipped when it does not fit.
    fn block(
        &mut self,
        rng: &mut Rng,
        x0: usize,
        y0: usize,
        rc: usize,
        margin: usize,
        textures: usize,
    ) {
        let (w, h) = (1 + rng.below(2), 1 + rng.below(2));
        if rc < 2 * margin + w.max(h) {
            return;
        }
        let x = x0 + margin + rng.below(rc - 2 * margin - w + 1);
        let y = y0 + margin + rng.below(rc - 2 * margin - h + 1);
        let clear = (y - margin..y + h + margin)
            .all(|yy| (x - margin..x + w + margin).all(|xx| !self.solid[yy * self.width + xx]));
        if !clear {
            return;
        }
        let texture = rng.below(textures) as u16;
        for yy in y..y + h {
            for xx in x..x + w {
                let i = yy * self.width + xx;
                self.solid[i] = true;
                self.room[i] = NO_ROOM;
                self.pillar[i] = Some(texture);
            }
        }
    }

    /// The texture of every solid cell's faces: a room's side texture where the face looks
    /// into that room, the block's own texture on pillars.
    fn faces(&self, walls: &[[u16; 4]], height: usize) -> Vec<[u16; 4]> {
        let width = self.width;
        let mut faces = vec![[0u16; 4]; width * height];
        for y in 0..height {
            for x in 0..width {
                let i = y * width + x;
                if self.solid[i] {
                    continue;
                }
                let room = self.room[i] as usize;
                for (dir, (dx, dy)) in SIDES.iter().enumerate() {
                    let (nx, ny) = (x as isize + dx, y as isize + dy);
                    if nx < 0 || ny < 0 || nx as usize >= width || ny as usize >= height {
                        continue;
                    }
                    let n = ny as usize * width + nx as usize;
                    if !self.solid[n] {
                        continue;
                    }
                    // The neighbour's face that looks back at this cell: the opposite side.
                    let face = dir ^ 1;
                    faces[n][face] = self.pillar[n].unwrap_or(walls[room][dir]);
                }
            }
        }
        faces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_enclosed_and_seeded() {
        let cfg = BuiltinConfig::default();
        let a = Layout::generate(&cfg, 1, 32);
        assert_eq!(a.solid, Layout::generate(&cfg, 1, 32).solid);
        assert_ne!(a.solid, Layout::generate(&cfg, 2, 32).solid);
        for x in 0..a.width {
            assert!(a.solid[x] && a.solid[(a.height - 1) * a.width + x]);
        }
        for y in 0..a.height {
            assert!(a.solid[y * a.width] && a.solid[y * a.width + a.width - 1]);
        }
    }

    #[test]
    fn discs_collide_with_walls_only() {
        let cfg = BuiltinConfig {
            rooms_x: 1,
            rooms_y: 1,
            furniture: 0,
            ..BuiltinConfig::default()
        };
        let l = Layout::generate(&cfg, 0, 32);
        // The room's inside spans [0.5, 4.5] m on both axes.
        assert!(l.is_free(2.5, 2.5, 0.3));
        assert!(l.is_free(0.8, 2.5, 0.3));
        assert!(!l.is_free(0.79, 2.5, 0.3));
        assert!(!l.is_free(0.7, 0.7, 0.3));
        assert!(!l.is_free(-3.0, 2.5, 0.3));
    }
}
