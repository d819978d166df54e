//! Action and observation spaces: what an environment declares up front (gym's
//! `action_space` / `observation_space`, restricted to what the navigation task consumes).

use serde::{Deserialize, Serialize};

use crate::{EnvError, Observation};

/// A discrete action space (gym's `Discrete(n)`), with a name per action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSpace {
    /// The number of actions; actions are `0..n`.
    pub n: usize,
    /// A name per action ("forward", "turn_left", ...), for logs and rollout captions.
    pub names: Vec<String>,
}

/// The observation space: an RGB frame, optionally metric depth and a goal vector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservationSpace {
    /// Frame height in pixels.
    pub height: usize,
    /// Frame width in pixels.
    pub width: usize,
    /// Whether observations carry a depth map (metres, `height x width` f32).
    pub depth: bool,
    /// Length of the goal vector (0: none).
    pub goal: usize,
}

/// Both spaces of an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spaces {
    /// The actions.
    pub action: ActionSpace,
    /// The observations.
    pub observation: ObservationSpace,
}

impl Spaces {
    /// Checks that an action is in the action space.
    pub fn check_action(&self, action: usize) -> Result<(), EnvError> {
        if action < self.action.n {
            Ok(())
        } else {
            Err(EnvError::InvalidAction {
                action,
                n: self.action.n,
            })
        }
    }

    /// Checks that an observation has the declared shapes, naming the first mismatch.
    pub fn check_observation(&self, obs: &Observation) -> Result<(), EnvError> {
        let o = &self.observation;
        let f = &obs.rgb;
        if f.height != o.height || f.width != o.width || f.data.len() != o.height * o.width * 3 {
            return Err(EnvError::Protocol(format!(
                "frame is {}x{} with {} bytes; the space declares {}x{}x3",
                f.height,
                f.width,
                f.data.len(),
                o.height,
                o.width
            )));
        }
        match (&obs.depth, o.depth) {
            (Some(d), true) if d.len() == o.height * o.width => {}
            (None, false) => {}
            (d, _) => {
                return Err(EnvError::Protocol(format!(
                    "depth has {:?} values; the space declares {}",
                    d.as_ref().map(Vec::len),
                    if o.depth {
                        format!("{}x{}", o.height, o.width)
                    } else {
                        "none".into()
                    }
                )))
            }
        }
        let goal = obs.goal.as_ref().map_or(0, Vec::len);
        if goal != o.goal {
            return Err(EnvError::Protocol(format!(
                "goal vector has {goal} values; the space declares {}",
                o.goal
            )));
        }
        Ok(())
    }
}
