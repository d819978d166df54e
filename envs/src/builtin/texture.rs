//! Procedural wall textures (brick, stripes, panels, wood grain, tiles, wallpaper, plaster)
//! and the palette rules that keep the target's colour unique: no texel, floor or ceiling
//! colour can pass [`is_target_colour`], however it is shaded.

use crate::rng::{hash, Rng};

/// Texels per metre along a wall (textures repeat every metre).
pub(crate) const TEX_U: usize = 64;
/// Texels over the wall's height (a texture spans the wall from ceiling to floor).
pub(crate) const TEX_V: usize = 128;
/// Textures in a bank; a layout picks its walls' textures from these.
const BANK_SIZE: usize = 32;

/// The colour of the target cube's brightest face.
pub const TARGET_COLOUR: [u8; 3] = [255, 24, 0];

/// True for the target cube's colours (any face, any distance): saturated red-orange that no
/// wall, floor or ceiling colour reaches.
pub fn is_target_colour(p: [u8; 3]) -> bool {
    p[0] >= 180 && p[1] <= 40 && p[2] <= 40
}

/// Quantises a colour and lifts green and blue where red is strong, so the colour and any
/// darker shade of it stay out of [`is_target_colour`]: darkening until red drops under 180
/// keeps green and blue above 180/255 * 60 > 40.
pub(crate) fn guard(c: [f32; 3]) -> [u8; 3] {
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let (r, mut g, mut b) = (q(c[0]), q(c[1]), q(c[2]));
    if r > 150 {
        g = g.max(60);
        b = b.max(60);
    }
    [r, g, b]
}

/// An HSV colour (hue in turns, saturation and value in 0..1) as linear-ish RGB in 0..1.
pub(crate) fn hsv(h: f64, s: f64, v: f64) -> [f32; 3] {
    let h = h.rem_euclid(1.0) * 6.0;
    let i = h.floor();
    let f = h - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    let (r, g, b) = match i as u32 {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [r as f32, g as f32, b as f32]
}

fn scale(c: [f32; 3], k: f32) -> [f32; 3] {
    [c[0] * k, c[1] * k, c[2] * k]
}

fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Smooth value noise in 0..1 on a lattice of `cell` texels, periodic over `TEX_U` in `u`.
fn noise(seed: u64, u: usize, v: usize, cell: usize) -> f32 {
    let period = (TEX_U / cell).max(1) as u64;
    let lattice =
        |x: u64, y: u64| (hash(seed, &[x % period, y]) >> 40) as f32 / (1u64 << 24) as f32;
    let (x, y) = (u / cell, v / cell);
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let fx = smooth((u % cell) as f32 / cell as f32);
    let fy = smooth((v % cell) as f32 / cell as f32);
    let (x, y) = (x as u64, y as u64);
    let top = lattice(x, y) * (1.0 - fx) + lattice(x + 1, y) * fx;
    let bottom = lattice(x, y + 1) * (1.0 - fx) + lattice(x + 1, y + 1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// The kinds of wall finish.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Brick,
    Stripes,
    Panels,
    Wood,
    Tiles,
    Wallpaper,
    Plaster,
}

const KINDS: [Kind; 7] = [
    Kind::Brick,
    Kind::Stripes,
    Kind::Panels,
    Kind::Wood,
    Kind::Tiles,
    Kind::Wallpaper,
    Kind::Plaster,
];

/// One texture's colour at texel (`u`, `v`), `v = 0` at the top of the wall.
struct Painter {
    kind: Kind,
    seed: u64,
    a: [f32; 3],
    b: [f32; 3],
    period: usize,
}

impl Painter {
    fn new(kind: Kind, rng: &mut Rng) -> Self {
        let hue = rng.unit();
        let (a, b) = match kind {
            Kind::Brick => {
                let a = hsv(
                    rng.range(0.0, 0.12),
                    rng.range(0.3, 0.6),
                    rng.range(0.45, 0.7),
                );
                (a, hsv(rng.range(0.0, 1.0), 0.05, rng.range(0.6, 0.8)))
            }
            Kind::Wood => {
                let a = hsv(
                    rng.range(0.05, 0.12),
                    rng.range(0.4, 0.7),
                    rng.range(0.35, 0.65),
                );
                (a, scale(a, 0.7))
            }
            _ => {
                let a = hsv(hue, rng.range(0.15, 0.6), rng.range(0.45, 0.9));
                let b = hsv(
                    hue + rng.range(0.1, 0.6),
                    rng.range(0.15, 0.7),
                    rng.range(0.3, 0.85),
                );
                (a, b)
            }
        };
        let period = [8, 16, 32][rng.below(3)];
        Self {
            kind,
            seed: rng.next_u64(),
            a,
            b,
            period,
        }
    }

    fn paint(&self, u: usize, v: usize) -> [f32; 3] {
        let skirting = v >= TEX_V - 6;
        let c = match self.kind {
            Kind::Brick => self.brick(u, v),
            Kind::Stripes => {
                let on = (u % self.period) < self.period / 2;
                let c = if on { self.a } else { self.b };
                scale(c, 0.92 + 0.08 * noise(self.seed, u, v, 8))
            }
            Kind::Panels => self.panels(u, v),
            Kind::Wood => self.wood(u, v),
            Kind::Tiles => {
                let (t, x, y) = (
                    self.period.max(16),
                    u % self.period.max(16),
                    v % self.period.max(16),
                );
                if x == 0 || y == 0 {
                    scale(self.b, 0.8)
                } else {
                    let jitter = (hash(self.seed, &[(u / t) as u64, (v / t) as u64]) % 100) as f32;
                    scale(self.a, 0.85 + jitter * 0.003)
                }
            }
            Kind::Wallpaper => {
                let (x, y) = ((u % 16) as i32 - 8, (v % 16) as i32 - 8);
                let diamond = x.abs() + y.abs() < 4;
                if diamond {
                    self.b
                } else {
                    scale(self.a, 0.95 + 0.05 * noise(self.seed, u, v, 4))
                }
            }
            Kind::Plaster => scale(self.a, 0.75 + 0.25 * noise(self.seed, u, v, 16)),
        };
        if skirting && !matches!(self.kind, Kind::Brick | Kind::Tiles) {
            scale(self.b, 0.55)
        } else {
            c
        }
    }

    fn brick(&self, u: usize, v: usize) -> [f32; 3] {
        let row = v / 6;
        let shifted = u + if row % 2 == 1 { 8 } else { 0 };
        if v.is_multiple_of(6) || shifted.is_multiple_of(16) {
            return self.b;
        }
        let jitter = (hash(
            self.seed,
            &[((shifted / 16) % (TEX_U / 16)) as u64, row as u64],
        ) % 100) as f32;
        scale(self.a, 0.8 + jitter * 0.004)
    }

    fn panels(&self, u: usize, v: usize) -> [f32; 3] {
        let rail = TEX_V * 2 / 3;
        if v < rail - 2 {
            return scale(self.a, 0.9 + 0.1 * noise(self.seed, u, v, 16));
        }
        if v < rail + 1 {
            return scale(self.b, 0.7);
        }
        let (x, y) = (u % 32, v - rail);
        let inset = (3..29).contains(&x) && (5..(TEX_V - rail - 10)).contains(&y);
        let edge = inset && ((x == 3 || x == 28) || y == 5 || y == TEX_V - rail - 11);
        match (inset, edge) {
            (_, true) => scale(self.b, 0.6),
            (true, false) => scale(self.b, 0.9),
            _ => self.b,
        }
    }

    fn wood(&self, u: usize, v: usize) -> [f32; 3] {
        let plank = u / self.period.max(8);
        let tone = (hash(self.seed, &[plank as u64]) % 100) as f32 * 0.003;
        let warp = noise(self.seed, u, v, 8) * 6.0;
        let grain = ((u as f32 + warp) * 1.7).sin() * 0.5 + 0.5;
        let c = lerp(self.a, self.b, grain * 0.6);
        if u.is_multiple_of(self.period.max(8)) {
            scale(c, 0.6)
        } else {
            scale(c, 0.9 + tone)
        }
    }
}

/// The textures a split's layouts draw their walls from, computed once per environment.
#[derive(Debug, Clone)]
pub(crate) struct TextureBank {
    /// Texture `t`'s texel (`u`, `v`) at `(t * TEX_U + u) * TEX_V + v` (column-major: a wall
    /// column reads contiguous memory).
    texels: Vec<[u8; 3]>,
}

impl TextureBank {
    /// The bank of a generator domain: every kind of finish in varied colours.
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut texels = Vec::with_capacity(BANK_SIZE * TEX_U * TEX_V);
        for i in 0..BANK_SIZE {
            let painter = Painter::new(KINDS[i % KINDS.len()], &mut rng);
            for u in 0..TEX_U {
                texels.extend((0..TEX_V).map(|v| guard(painter.paint(u, v))));
            }
        }
        Self { texels }
    }

    /// The number of textures.
    pub(crate) fn len(&self) -> usize {
        self.texels.len() / (TEX_U * TEX_V)
    }

    /// Column `u` of texture `t`, `TEX_V` texels from the top.
    pub(crate) fn column(&self, t: usize, u: usize) -> &[[u8; 3]] {
        let start = (t * TEX_U + u) * TEX_V;
        &self.texels[start..start + TEX_V]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_texel_and_no_shade_of_it_looks_like_the_target() {
        let bank = TextureBank::new(11);
        for t in 0..bank.len() {
            for u in 0..TEX_U {
                for &p in bank.column(t, u) {
                    for k in [256u32, 230, 200, 180] {
                        let s = p.map(|c| ((c as u32 * k) >> 8) as u8);
                        assert!(!is_target_colour(s), "texture {t} texel {p:?} shade {k}");
                    }
                }
            }
        }
        assert!(is_target_colour(TARGET_COLOUR));
    }

    #[test]
    fn textures_differ() {
        let bank = TextureBank::new(5);
        assert_ne!(bank.column(0, 3), bank.column(1, 3));
        assert_ne!(TextureBank::new(5).texels, TextureBank::new(6).texels);
    }
}
