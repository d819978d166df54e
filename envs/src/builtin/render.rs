//! The first-person view: one DDA ray per pixel column through the cell grid, perspective-
//! correct wall heights from the planar (fisheye-free) distance, textured walls, a checker
//! floor and a plain ceiling darkened with distance, and the target cube projected as a true
//! box against the column's wall depth.

use super::layout::Layout;
use super::texture::{TextureBank, TARGET_COLOUR, TEX_U, TEX_V};
use super::BuiltinConfig;

/// Brightness of faces seen along y relative to faces seen along x (a fixed light).
const SIDE_SHADE: f32 = 0.8;
/// Brightness of the target's faces: seen along x, along y, its top.
const TARGET_SHADES: [u32; 3] = [256, 210, 236];

/// What a frame shows: the plan, the camera's pose, the target.
pub(crate) struct Scene<'a> {
    /// The floor plan.
    pub layout: &'a Layout,
    /// The wall textures.
    pub bank: &'a TextureBank,
    /// The camera's position in metres.
    pub position: [f64; 2],
    /// The camera's heading in radians, counter-clockwise from +x.
    pub heading: f64,
    /// The centre of the target cube's footprint.
    pub target: [f64; 2],
}

/// A pinhole camera of fixed size and field of view, with its per-row and per-column tables.
#[derive(Debug, Clone)]
pub(crate) struct Camera {
    width: usize,
    height: usize,
    /// Focal length in pixels (square pixels).
    focal: f32,
    /// The horizon's row coordinate (pixel centres sit at `y + 0.5`).
    horizon: f32,
    camera_height: f32,
    wall_height: f32,
    target_size: f32,
    /// Each column's ray offset along the camera's right axis, per unit of forward.
    offsets: Vec<f32>,
    /// Each row's planar distance to the floor (rows below the horizon) or to the ceiling.
    row_depth: Vec<f32>,
    /// Each row's distance shading, 0..=256.
    row_shade: Vec<u32>,
    /// Scratch: the ceiling colour of each row in the current frame.
    ceiling: Vec<[u8; 3]>,
}

/// Distance shading: 1 at the camera, 1/2 at 10 m, never under 0.3; 0..=256.
fn fog(d: f32) -> u32 {
    ((1.0 / (1.0 + 0.1 * d)).max(0.3) * 256.0) as u32
}

fn shade(c: [u8; 3], k: u32) -> [u8; 3] {
    [
        ((c[0] as u32 * k) >> 8) as u8,
        ((c[1] as u32 * k) >> 8) as u8,
        ((c[2] as u32 * k) >> 8) as u8,
    ]
}

/// Where a column's ray meets the walls.
struct Hit {
    /// Planar distance (along the optical axis).
    depth: f32,
    /// The hit face's texture.
    texture: usize,
    /// The texture column.
    u: usize,
    /// The face is seen along y (darker).
    along_y: bool,
}

impl Camera {
    /// The camera of a configuration.
    pub(crate) fn new(cfg: &BuiltinConfig) -> Self {
        let (width, height) = (cfg.width, cfg.height);
        let tan_half = (cfg.fov_degrees.to_radians() / 2.0).tan() as f32;
        let focal = width as f32 / 2.0 / tan_half;
        let horizon = height as f32 / 2.0;
        let (cam, wall) = (cfg.camera_height as f32, cfg.wall_height as f32);
        let offsets = (0..width)
            .map(|x| (2.0 * (x as f32 + 0.5) / width as f32 - 1.0) * tan_half)
            .collect();
        let row_depth: Vec<f32> = (0..height)
            .map(|y| {
                let dy = y as f32 + 0.5 - horizon;
                if dy > 0.0 {
                    cam * focal / dy
                } else {
                    (wall - cam) * focal / (-dy).max(1e-3)
                }
            })
            .collect();
        let row_shade = row_depth.iter().map(|&d| fog(d)).collect();
        Self {
            width,
            height,
            focal,
            horizon,
            camera_height: cam,
            wall_height: wall,
            target_size: cfg.target_size as f32,
            offsets,
            row_depth,
            row_shade,
            ceiling: vec![[0; 3]; height],
        }
    }

    /// Draws `scene` into `rgb` (`height x width x 3`) and, when given, its planar depth in
    /// metres into `depth` (`height x width`).
    pub(crate) fn render(&mut self, scene: &Scene, rgb: &mut [u8], mut depth: Option<&mut [f32]>) {
        let (w, h) = (self.width, self.height);
        for y in 0..h {
            self.ceiling[y] = shade(scene.layout.ceiling, self.row_shade[y]);
        }
        let (px, py) = (scene.position[0] as f32, scene.position[1] as f32);
        let (s, c) = (scene.heading.sin() as f32, scene.heading.cos() as f32);
        for col in 0..w {
            let k = self.offsets[col];
            // Forward plus k times right, where right is (sin, -cos): one unit along the axis.
            let ray = [c + s * k, s - c * k];
            let hit = cast(scene.layout, [px, py], ray);
            let (top, bottom) = self.span(hit.depth, self.wall_height);
            self.fill_column(scene, col, ray, &hit, (top, bottom), rgb);
            if let Some(d) = depth.as_deref_mut() {
                for y in 0..h {
                    d[y * w + col] = if (top..bottom).contains(&y) {
                        hit.depth
                    } else {
                        self.row_depth[y]
                    };
                }
            }
            self.draw_target(
                scene,
                col,
                [px, py],
                ray,
                hit.depth,
                rgb,
                depth.as_deref_mut(),
            );
        }
    }

    /// The rows covered by a vertical extent from the floor to `z` at planar distance `d`.
    fn span(&self, d: f32, z: f32) -> (usize, usize) {
        let top = self.horizon - (z - self.camera_height) * self.focal / d;
        let bottom = self.horizon + self.camera_height * self.focal / d;
        let row = |v: f32| (v - 0.5).ceil().clamp(0.0, self.height as f32) as usize;
        (row(top), row(bottom))
    }

    /// Ceiling above the wall, the textured wall, the checker floor below it.
    fn fill_column(
        &self,
        scene: &Scene,
        col: usize,
        ray: [f32; 2],
        hit: &Hit,
        rows: (usize, usize),
        rgb: &mut [u8],
    ) {
        let (w, h) = (self.width, self.height);
        let stride = w * 3;
        let (top, bottom) = rows;
        let mut o = col * 3;
        for y in 0..top {
            rgb[o..o + 3].copy_from_slice(&self.ceiling[y]);
            o += stride;
        }
        let column = scene.bank.column(hit.texture, hit.u);
        let k = (fog(hit.depth) as f32 * if hit.along_y { SIDE_SHADE } else { 1.0 }) as u32;
        let v_scale = TEX_V as f32 / self.wall_height;
        let dv = hit.depth / self.focal * v_scale;
        let mut v = ((self.wall_height - self.camera_height)
            + (top as f32 + 0.5 - self.horizon) * hit.depth / self.focal)
            * v_scale;
        for _ in top..bottom {
            let t = column[(v.max(0.0) as usize).min(TEX_V - 1)];
            rgb[o..o + 3].copy_from_slice(&shade(t, k));
            v += dv;
            o += stride;
        }
        let layout = scene.layout;
        let inv = 1.0 / layout.cell as f32;
        let (px, py) = (scene.position[0] as f32, scene.position[1] as f32);
        let (mx, my) = (layout.width as isize - 1, layout.height as isize - 1);
        for y in bottom..h {
            let d = self.row_depth[y];
            let cx = (((px + d * ray[0]) * inv) as isize).clamp(0, mx);
            let cy = (((py + d * ray[1]) * inv) as isize).clamp(0, my);
            let tones = &layout.floors[layout.floor_of(cx as usize, cy as usize)];
            let t = tones[((cx + cy) & 1) as usize];
            rgb[o..o + 3].copy_from_slice(&shade(t, self.row_shade[y]));
            o += stride;
        }
    }

    /// The target cube where the column's ray meets it before the wall: its near face from
    /// floor to top, and its top face beyond when the camera looks down on it.
    #[allow(clippy::too_many_arguments)]
    fn draw_target(
        &self,
        scene: &Scene,
        col: usize,
        eye: [f32; 2],
        ray: [f32; 2],
        wall: f32,
        rgb: &mut [u8],
        depth: Option<&mut [f32]>,
    ) {
        let half = self.target_size / 2.0;
        let centre = [scene.target[0] as f32, scene.target[1] as f32];
        let (mut near, mut far, mut along_y) = (f32::NEG_INFINITY, f32::INFINITY, false);
        for axis in 0..2 {
            let (lo, hi) = (centre[axis] - half, centre[axis] + half);
            if ray[axis].abs() < 1e-9 {
                if eye[axis] < lo || eye[axis] > hi {
                    return;
                }
                continue;
            }
            let (a, b) = ((lo - eye[axis]) / ray[axis], (hi - eye[axis]) / ray[axis]);
            let (a, b) = (a.min(b), a.max(b));
            if a > near {
                near = a;
                along_y = axis == 1;
            }
            far = far.min(b);
        }
        if near > far || near <= 1e-3 || near >= wall {
            return;
        }
        let size = self.target_size;
        let (front_top, front_bottom) = self.span(near, size);
        let top_from = if size < self.camera_height {
            self.span(far, size).0
        } else {
            front_top
        };
        let w = self.width;
        let face = shade(TARGET_COLOUR, TARGET_SHADES[along_y as usize]);
        let lid = shade(TARGET_COLOUR, TARGET_SHADES[2]);
        for y in top_from..front_bottom {
            let o = (y * w + col) * 3;
            rgb[o..o + 3].copy_from_slice(if y < front_top { &lid } else { &face });
        }
        if let Some(d) = depth {
            for y in top_from..front_bottom {
                d[y * w + col] = if y < front_top {
                    (self.camera_height - size) * self.focal
                        / (y as f32 + 0.5 - self.horizon).max(1e-3)
                } else {
                    near
                };
            }
        }
    }
}

/// Walks the grid along `ray` from `eye` (DDA) to the first solid cell.
fn cast(layout: &Layout, eye: [f32; 2], ray: [f32; 2]) -> Hit {
    let cell = layout.cell as f32;
    let mut map = [
        (eye[0] / cell).floor() as isize,
        (eye[1] / cell).floor() as isize,
    ];
    let mut step = [0isize; 2];
    let mut next = [f32::INFINITY; 2];
    let mut delta = [f32::INFINITY; 2];
    for a in 0..2 {
        if ray[a] > 0.0 {
            step[a] = 1;
            delta[a] = cell / ray[a];
            next[a] = ((map[a] + 1) as f32 * cell - eye[a]) / ray[a];
        } else if ray[a] < 0.0 {
            step[a] = -1;
            delta[a] = -cell / ray[a];
            next[a] = (eye[a] - map[a] as f32 * cell) / -ray[a];
        }
    }
    let mut t = 0.0;
    let mut axis = 0;
    for _ in 0..layout.width + layout.height + 2 {
        axis = if next[0] < next[1] { 0 } else { 1 };
        t = next[axis];
        next[axis] += delta[axis];
        map[axis] += step[axis];
        if layout.is_solid(map[0], map[1]) {
            break;
        }
    }
    // The face entered: moving +x enters through the -x face (side 0), and so on.
    let side = axis * 2 + usize::from(step[axis] < 0);
    let inside = map[0] >= 0
        && map[1] >= 0
        && (map[0] as usize) < layout.width
        && (map[1] as usize) < layout.height;
    let texture = if inside {
        layout.faces[map[1] as usize * layout.width + map[0] as usize][side] as usize
    } else {
        0
    };
    let along = eye[1 - axis] + t * ray[1 - axis];
    let u = ((along.rem_euclid(1.0) * TEX_U as f32) as usize).min(TEX_U - 1);
    // Mirror the faces whose wall coordinate runs right-to-left on screen.
    let u = if side == 0 || side == 3 {
        TEX_U - 1 - u
    } else {
        u
    };
    Hit {
        depth: t.max(1e-4),
        texture,
        u,
        along_y: axis == 1,
    }
}
