//! The built-in environment's configuration (`[env.builtin]` in a task file). Defaults are the
//! Gibson Husky navigation task of Sax et al. (2018) as used by Goyal et al. (2019): 256x256
//! RGB, forward 0.1 m, turns of 0.24 rad, 400 steps, -0.025 per step, +10 within 0.5 m.

use serde::{Deserialize, Serialize};

use crate::EnvError;

/// Which layouts episodes are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// The `train_layouts` training layouts: episode seed `s` plays layout `s % train_layouts`.
    #[default]
    Train,
    /// Held-out layouts from a disjoint generator domain (other layout hashes, other texture
    /// colours): every seed plays a fresh layout that no training seed can produce.
    Heldout,
}

impl Split {
    /// `train` or `heldout`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Heldout => "heldout",
        }
    }
}

/// Every knob of the built-in environment; lengths in metres, angles in radians unless named
/// otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BuiltinConfig {
    /// Frame width in pixels (Gibson: 256).
    pub width: usize,
    /// Frame height in pixels (Gibson: 256).
    pub height: usize,
    /// Training or held-out layouts.
    pub split: Split,
    /// The number of distinct training layouts.
    pub train_layouts: u64,
    /// Rooms along x in a layout.
    pub rooms_x: usize,
    /// Rooms along y in a layout.
    pub rooms_y: usize,
    /// Inner side of a (square) room, rounded to whole cells.
    pub room_size: f64,
    /// Side of a grid cell: walls are one cell thick, pillars one or two cells.
    pub cell_size: f64,
    /// Width of the doorways between rooms, rounded to whole cells.
    pub door_width: f64,
    /// At most this many pillars / furniture blocks per room (0: empty rooms).
    pub furniture: usize,
    /// Wall height.
    pub wall_height: f64,
    /// Camera height above the floor (the Husky's camera).
    pub camera_height: f64,
    /// Horizontal field of view in degrees (Gibson's Husky configs: fov 1.57 rad = 90).
    pub fov_degrees: f64,
    /// Forward step of action 0 (Gibson: 0.1 m).
    pub step_size: f64,
    /// Turn of actions 1 (right) and 2 (left) (Gibson: 0.24 rad).
    pub turn: f64,
    /// Episode length; the step that reaches it is truncated (Gibson: 400).
    pub max_steps: usize,
    /// Reward of every step (Gibson: -0.025).
    pub step_reward: f64,
    /// Extra reward of the step that reaches the target (Gibson: +10).
    pub success_reward: f64,
    /// Reaching the target: the agent's centre within this distance of the cube's (Gibson: 0.5).
    pub success_distance: f64,
    /// Straight-line distance between start and target, at least (unless the reachable
    /// space has no such place; then the farthest one is used).
    pub min_start_distance: f64,
    /// Radius of the agent's disc for collisions (a Husky is about 0.67 m wide).
    pub agent_radius: f64,
    /// Side of the target cube, which stands on the floor.
    pub target_size: f64,
    /// Observations carry metric depth (planar, along the optical axis).
    pub depth: bool,
    /// Observations carry a goal vector `[distance, cos(bearing), sin(bearing)]` (bearing
    /// counter-clockwise from the heading). Off: the paper's agent sees pixels only.
    pub goal: bool,
}

impl Default for BuiltinConfig {
    fn default() -> Self {
        Self {
            width: 256,
            height: 256,
            split: Split::Train,
            train_layouts: 100,
            rooms_x: 2,
            rooms_y: 2,
            room_size: 4.0,
            cell_size: 0.5,
            door_width: 1.0,
            furniture: 2,
            wall_height: 2.5,
            camera_height: 0.6,
            fov_degrees: 90.0,
            step_size: 0.1,
            turn: 0.24,
            max_steps: 400,
            step_reward: -0.025,
            success_reward: 10.0,
            success_distance: 0.5,
            min_start_distance: 2.0,
            agent_radius: 0.3,
            target_size: 0.4,
            depth: false,
            goal: false,
        }
    }
}

impl BuiltinConfig {
    /// Inner cells of a room.
    pub(crate) fn room_cells(&self) -> usize {
        (self.room_size / self.cell_size).round() as usize
    }

    /// Cells of a doorway (never wider than a room).
    pub(crate) fn door_cells(&self) -> usize {
        ((self.door_width / self.cell_size).round() as usize).clamp(1, self.room_cells())
    }

    /// Checks every value, naming the option and the fix of the first wrong one.
    pub fn validate(&self) -> Result<(), EnvError> {
        let bad = |msg: String| Err(EnvError::Config(format!("builtin environment: {msg}")));
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if !(1..=4096).contains(&v) {
                return bad(format!(
                    "`{name}` is {v}; set it to a frame size in 1..=4096 pixels"
                ));
            }
        }
        for (name, v) in [("rooms_x", self.rooms_x), ("rooms_y", self.rooms_y)] {
            if !(1..=16).contains(&v) {
                return bad(format!("`{name}` is {v}; set it to 1..=16 rooms"));
            }
        }
        if self.train_layouts == 0 {
            return bad("`train_layouts` is 0; set it to at least 1".into());
        }
        let positive = [
            ("cell_size", self.cell_size),
            ("room_size", self.room_size),
            ("door_width", self.door_width),
            ("wall_height", self.wall_height),
            ("camera_height", self.camera_height),
            ("step_size", self.step_size),
            ("success_distance", self.success_distance),
            ("agent_radius", self.agent_radius),
            ("target_size", self.target_size),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!(
                    "`{name}` is {v}; set it to a positive number of metres"
                ));
            }
        }
        for (name, v) in [
            ("turn", self.turn),
            ("step_reward", self.step_reward),
            ("success_reward", self.success_reward),
            ("min_start_distance", self.min_start_distance),
        ] {
            if !v.is_finite() {
                return bad(format!("`{name}` is {v}; set it to a finite number"));
            }
        }
        if !(0.05..=2.0).contains(&self.cell_size) {
            return bad(format!(
                "`cell_size` is {} m; use 0.05..=2.0 m",
                self.cell_size
            ));
        }
        let cells = self.room_cells();
        if !(2..=64).contains(&cells) {
            return bad(format!(
                "`room_size` {} m is {cells} cells of `cell_size` {} m; rooms need 2..=64 cells",
                self.room_size, self.cell_size
            ));
        }
        let door = self.door_cells() as f64 * self.cell_size;
        if door - 2.0 * self.agent_radius < self.cell_size / 2.0 {
            return bad(format!(
                "an agent of `agent_radius` {} m does not pass a doorway of {door} m with room to \
                 spare; `door_width` must exceed twice the radius by half a `cell_size`",
                self.agent_radius
            ));
        }
        if self.step_size >= self.agent_radius.min(self.cell_size) {
            return bad(format!(
                "`step_size` {} m must stay below `agent_radius` ({} m) and `cell_size` ({} m), \
                 or the agent could step through walls",
                self.step_size, self.agent_radius, self.cell_size
            ));
        }
        if self.target_size / 2.0 > self.agent_radius {
            return bad(format!(
                "`target_size` {} m is wider than the agent ({} m radius); the cube must fit where \
                 the agent fits",
                self.target_size, self.agent_radius
            ));
        }
        if self.camera_height >= self.wall_height {
            return bad(format!(
                "`camera_height` {} m must be below `wall_height` {} m",
                self.camera_height, self.wall_height
            ));
        }
        if !(self.fov_degrees > 1.0 && self.fov_degrees < 170.0) {
            return bad(format!(
                "`fov_degrees` is {}; use 1..170 degrees",
                self.fov_degrees
            ));
        }
        if self.max_steps == 0 {
            return bad("`max_steps` is 0; set the episode length to at least 1".into());
        }
        if self.min_start_distance <= self.success_distance {
            return bad(format!(
                "`min_start_distance` {} m must exceed `success_distance` {} m, or episodes could \
                 start at the target",
                self.min_start_distance, self.success_distance
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_wrong_values_are_named() {
        BuiltinConfig::default().validate().unwrap();
        let cfg = BuiltinConfig {
            width: 0,
            ..BuiltinConfig::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("`width`"));
        let cfg = BuiltinConfig {
            agent_radius: 0.6,
            ..BuiltinConfig::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("door_width"));
        let cfg = BuiltinConfig {
            min_start_distance: 0.1,
            ..BuiltinConfig::default()
        };
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("min_start_distance"));
    }
}
