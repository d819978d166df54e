//! The agent's pose and its two motions: a forward step that slides along walls it meets
//! (and stops in corners), and turns on the spot.

use std::f64::consts::PI;

use super::layout::Layout;

/// Where the agent stands and where it looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Position along x in metres.
    pub x: f64,
    /// Position along y in metres.
    pub y: f64,
    /// Heading in radians, counter-clockwise from +x, in `[-pi, pi)`.
    pub heading: f64,
}

impl Pose {
    /// Steps `distance` forward. Blocked by a wall, the agent keeps the part of the step
    /// along the wall (x alone, else y alone) or stays put. Returns whether it was blocked.
    pub(crate) fn forward(&mut self, layout: &Layout, distance: f64, radius: f64) -> bool {
        let (dx, dy) = (self.heading.cos() * distance, self.heading.sin() * distance);
        let tries = [
            (self.x + dx, self.y + dy),
            (self.x + dx, self.y),
            (self.x, self.y + dy),
        ];
        for (k, (x, y)) in tries.into_iter().enumerate() {
            if layout.is_free(x, y, radius) {
                self.x = x;
                self.y = y;
                return k > 0;
            }
        }
        true
    }

    /// Turns by `angle` (positive: left, counter-clockwise).
    pub(crate) fn turn(&mut self, angle: f64) {
        self.heading = (self.heading + angle + PI).rem_euclid(2.0 * PI) - PI;
    }

    /// The distance to `point` and its bearing (radians, counter-clockwise from the heading,
    /// in `[-pi, pi)`).
    pub fn towards(&self, point: [f64; 2]) -> (f64, f64) {
        let (dx, dy) = (point[0] - self.x, point[1] - self.y);
        let bearing = (dy.atan2(dx) - self.heading + PI).rem_euclid(2.0 * PI) - PI;
        (dx.hypot(dy), bearing)
    }
}
