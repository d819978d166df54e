//! The built-in environment: a first-person, ray-cast indoor world with the action set,
//! episode length, rewards and success rule of the Gibson Husky navigation task (Sax et al.
//! 2018, as used by Goyal et al. 2019; protocols.md section 7), for when no Python simulator
//! is installed.
//!
//! | Gibson (HuskyNavigateEnv, Beechwood) | here |
//! |---|---|
//! | 256x256 RGB from the Husky's camera, fov 1.57 rad | `width` x `height` RGB from a camera `camera_height` m up, `fov_degrees` 90 |
//! | forward 0.1 m, turn right 0.24 rad, turn left 0.24 rad | actions 0, 1, 2: the same (`step_size`, `turn`) |
//! | physics: the robot stops at walls | a disc of `agent_radius` that slides along walls, never through |
//! | a scanned house | seeded floor plans: a grid of rooms, doorways, pillars, textured walls, checker floors |
//! | random start, a visible cube as target | random start pose and target place, reachable from the start; a red-orange cube |
//! | -0.025 per step, +10 within 0.5 m, 400 steps | `step_reward`, `success_reward`, `success_distance`, `max_steps` |
//! | another building for held-out tests | [`Split::Heldout`]: plans and wall colours from a disjoint generator domain |
//!
//! The frame is drawn by one DDA ray per column with planar (fisheye-free) distances, so wall
//! heights are in true perspective; the cube is projected as a box and hidden behind walls by
//! the column's wall depth. Depth observations are planar (along the optical axis), in metres.
//! Nothing in a frame uses the target's red-orange ([`is_target_colour`]) except the cube.
//!
//! The default plan is 2 x 2 rooms of 4 m with up to two pillars each, the target at least
//! 2 m (straight line) from the start: an agent following [`BuiltinEnv::path_to_target`]
//! arrives in a median of about 85 of the 400 steps, so the time limit leaves room to search.
//!
//! Seeds: `reset(Some(s))` on the training split plays layout `s % train_layouts` with a start
//! and target drawn from `s`; on the held-out split every seed has its own layout. The same
//! seed gives byte-identical frames and trajectories. `reset(None)` draws the next seed from a
//! stream that the last seeded reset (or the environment's creation) started.

mod config;
mod layout;
mod map;
mod nav;
mod pose;
mod render;
mod texture;

pub use config::{BuiltinConfig, Split};
pub use pose::Pose;
pub use texture::{is_target_colour, TARGET_COLOUR};

use std::collections::BTreeMap;

use crate::rng::{hash, Rng};
use crate::{
    ActionSpace, Env, EnvError, Frame, Info, Observation, ObservationSpace, Spaces, Transition,
};
use layout::Layout;
use nav::NavGrid;
use render::{Camera, Scene};
use texture::TextureBank;

/// Domain constants of the generators: training and held-out plans never share a hash.
const TRAIN_LAYOUTS: u64 = 0x5452_4149_4e5f_4c59;
const HELDOUT_LAYOUTS: u64 = 0x4845_4c44_4f55_5431;
const TEXTURES: u64 = 0x5445_5854_5552_4553;
const EPISODES: u64 = 0x4550_4953_4f44_4553;
const STREAM: u64 = 0x5354_5245_414d_5f5f;

/// The action names, in action order (Gibson's: forward, turn right, turn left).
pub const ACTIONS: [&str; 3] = ["forward", "turn_right", "turn_left"];

/// The grid of the current floor plan, for maps and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Occupancy {
    /// Cells along x.
    pub width: usize,
    /// Cells along y.
    pub height: usize,
    /// Side of a cell in metres; cell (`x`, `y`) spans `[x, x + 1) * cell_size` along x.
    pub cell_size: f64,
    /// Whether each cell (`y * width + x`) is wall or furniture.
    pub solid: Vec<bool>,
}

/// The built-in ray-cast navigation environment.
pub struct BuiltinEnv {
    cfg: BuiltinConfig,
    spaces: Spaces,
    bank: TextureBank,
    camera: Camera,
    layout: Layout,
    layout_seed: u64,
    nav: NavGrid,
    pose: Pose,
    target: [f64; 2],
    steps: usize,
    running: bool,
    stream: Rng,
    trail: Vec<[f64; 2]>,
}

impl BuiltinEnv {
    /// An environment of a checked configuration. No episode runs until [`Env::reset`].
    pub fn new(cfg: BuiltinConfig) -> Result<Self, EnvError> {
        cfg.validate()?;
        let spaces = Spaces {
            action: ActionSpace {
                n: ACTIONS.len(),
                names: ACTIONS.iter().map(|s| s.to_string()).collect(),
            },
            observation: ObservationSpace {
                height: cfg.height,
                width: cfg.width,
                depth: cfg.depth,
                goal: if cfg.goal { 3 } else { 0 },
            },
        };
        let bank = TextureBank::new(hash(TEXTURES, &[cfg.split as u64]));
        let layout_seed = Self::layout_seed_of(&cfg, 0);
        let layout = Layout::generate(&cfg, layout_seed, bank.len());
        let nav = NavGrid::new(&layout, cfg.agent_radius);
        let centre = [
            layout.width as f64 * layout.cell / 2.0,
            layout.height as f64 * layout.cell / 2.0,
        ];
        Ok(Self {
            camera: Camera::new(&cfg),
            spaces,
            bank,
            layout,
            layout_seed,
            nav,
            pose: Pose {
                x: centre[0],
                y: centre[1],
                heading: 0.0,
            },
            target: centre,
            steps: 0,
            running: false,
            stream: Rng::new(hash(STREAM, &[0])),
            trail: Vec::new(),
            cfg,
        })
    }

    fn layout_seed_of(cfg: &BuiltinConfig, seed: u64) -> u64 {
        match cfg.split {
            Split::Train => hash(TRAIN_LAYOUTS, &[seed % cfg.train_layouts]),
            Split::Heldout => hash(HELDOUT_LAYOUTS, &[seed]),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BuiltinConfig {
        &self.cfg
    }

    /// The agent's pose.
    pub fn pose(&self) -> Pose {
        self.pose
    }

    /// The centre of the target cube's footprint, `[x, y]` in metres.
    pub fn target(&self) -> [f64; 2] {
        self.target
    }

    /// The straight-line distance from the agent to the target in metres.
    pub fn distance_to_target(&self) -> f64 {
        self.pose.towards(self.target).0
    }

    /// Steps taken in the current episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The seed the current floor plan was generated from: equal seeds, equal plans.
    pub fn layout_seed(&self) -> u64 {
        self.layout_seed
    }

    /// The current floor plan's grid.
    pub fn occupancy(&self) -> Occupancy {
        let l = &self.layout;
        Occupancy {
            width: l.width,
            height: l.height,
            cell_size: l.cell,
            solid: l.solid.clone(),
        }
    }

    /// Whether the agent's disc fits at (`x`, `y`) in the current plan.
    pub fn is_free(&self, x: f64, y: f64) -> bool {
        self.layout.is_free(x, y, self.cfg.agent_radius)
    }

    /// Waypoints (`[x, y]`, half a cell apart) of a shortest path from near the agent to the
    /// target on the plan's navigation lattice, for scripted agents and path-length metrics;
    /// empty when the agent stands where the lattice does not reach.
    pub fn path_to_target(&self) -> Vec<[f64; 2]> {
        self.nav.path(self.pose.x, self.pose.y, self.target)
    }

    /// A `size x size` top-down map: walls, room floors, the trajectory so far, the target
    /// and the agent with its heading (+y up).
    pub fn top_down(&self, size: usize) -> Frame {
        let marks = map::Marks {
            agent: ([self.pose.x, self.pose.y], self.pose.heading),
            radius: self.cfg.agent_radius,
            target: (self.target, self.cfg.target_size),
            trail: &self.trail,
        };
        map::top_down(&self.layout, &marks, size)
    }

    fn begin(&mut self, seed: u64) -> Result<Observation, EnvError> {
        let layout_seed = Self::layout_seed_of(&self.cfg, seed);
        if layout_seed != self.layout_seed {
            self.layout = Layout::generate(&self.cfg, layout_seed, self.bank.len());
            self.nav = NavGrid::new(&self.layout, self.cfg.agent_radius);
            self.layout_seed = layout_seed;
        }
        let mut rng = Rng::new(hash(EPISODES, &[seed]));
        let (start, target) = self.nav.episode(&mut rng, self.cfg.min_start_distance).ok_or_else(|| {
            EnvError::Config(format!(
                "builtin environment: no place of layout {layout_seed:#x} fits an agent of `agent_radius` {} m; \
                 lower it or raise `room_size`",
                self.cfg.agent_radius
            ))
        })?;
        let [x, y] = self.nav.place(start);
        self.pose = Pose {
            x,
            y,
            heading: rng.range(-std::f64::consts::PI, std::f64::consts::PI),
        };
        self.target = self.nav.place(target);
        self.steps = 0;
        self.running = true;
        self.trail.clear();
        self.trail.push([x, y]);
        Ok(self.observe())
    }

    fn observe(&mut self) -> Observation {
        let (w, h) = (self.cfg.width, self.cfg.height);
        let mut rgb = vec![0u8; w * h * 3];
        let mut depth = self.cfg.depth.then(|| vec![0f32; w * h]);
        let scene = Scene {
            layout: &self.layout,
            bank: &self.bank,
            position: [self.pose.x, self.pose.y],
            heading: self.pose.heading,
            target: self.target,
        };
        self.camera.render(&scene, &mut rgb, depth.as_deref_mut());
        let goal = self.cfg.goal.then(|| {
            let (d, b) = self.pose.towards(self.target);
            vec![d as f32, b.cos() as f32, b.sin() as f32]
        });
        Observation {
            rgb: Frame {
                height: h,
                width: w,
                data: rgb,
            },
            depth,
            goal,
        }
    }
}

impl Env for BuiltinEnv {
    fn spaces(&self) -> &Spaces {
        &self.spaces
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<Observation, EnvError> {
        let seed = match seed {
            Some(s) => {
                self.stream = Rng::new(hash(STREAM, &[s]));
                s
            }
            None => self.stream.next_u64(),
        };
        self.begin(seed)
    }

    fn step(&mut self, action: usize) -> Result<Transition, EnvError> {
        if !self.running {
            return Err(EnvError::NeedsReset);
        }
        self.spaces.check_action(action)?;
        match action {
            0 => {
                self.pose
                    .forward(&self.layout, self.cfg.step_size, self.cfg.agent_radius);
                self.trail.push([self.pose.x, self.pose.y]);
            }
            1 => self.pose.turn(-self.cfg.turn),
            _ => self.pose.turn(self.cfg.turn),
        }
        self.steps += 1;
        let distance = self.distance_to_target();
        let terminated = distance <= self.cfg.success_distance;
        let truncated = !terminated && self.steps >= self.cfg.max_steps;
        let reward = self.cfg.step_reward
            + if terminated {
                self.cfg.success_reward
            } else {
                0.0
            };
        self.running = !(terminated || truncated);
        let values = BTreeMap::from([
            ("distance".to_string(), distance),
            ("x".to_string(), self.pose.x),
            ("y".to_string(), self.pose.y),
            ("heading".to_string(), self.pose.heading),
        ]);
        Ok(Transition {
            observation: self.observe(),
            reward,
            terminated,
            truncated,
            info: Info {
                success: terminated,
                values,
            },
        })
    }

    fn describe(&self) -> String {
        format!(
            "builtin:{} {}x{}",
            self.cfg.split.name(),
            self.cfg.width,
            self.cfg.height
        )
    }
}
