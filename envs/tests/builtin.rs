//! The built-in environment against its contract: seeded determinism, disjoint held-out
//! layouts, spaces, the Gibson task's rewards and episode ends, collisions, the visible
//! target with occlusion, metric depth, and the error cases.

use std::f64::consts::PI;

use sslbench_envs::builtin::{
    is_target_colour, BuiltinConfig, BuiltinEnv, Occupancy, Split, ACTIONS,
};
use sslbench_envs::{Env, EnvError, Frame, Transition, VecEnv};

const FORWARD: usize = 0;
const RIGHT: usize = 1;
const LEFT: usize = 2;

fn env(cfg: BuiltinConfig) -> BuiltinEnv {
    BuiltinEnv::new(cfg).expect("valid configuration")
}

fn small() -> BuiltinConfig {
    BuiltinConfig {
        width: 64,
        height: 64,
        ..BuiltinConfig::default()
    }
}

/// One empty room of 4 m, no doors, no furniture: every straight line inside is free.
fn one_room() -> BuiltinConfig {
    BuiltinConfig {
        rooms_x: 1,
        rooms_y: 1,
        furniture: 0,
        ..small()
    }
}

fn target_pixels(f: &Frame) -> usize {
    f.data
        .chunks_exact(3)
        .filter(|p| is_target_colour([p[0], p[1], p[2]]))
        .count()
}

/// Follows the shortest path on the navigation lattice, aiming a little ahead.
fn oracle(env: &BuiltinEnv) -> usize {
    let path = env.path_to_target();
    let pose = env.pose();
    let aim = if path.len() <= 3 {
        env.target()
    } else {
        path.iter()
            .rev()
            .find(|w| (w[0] - pose.x).hypot(w[1] - pose.y) < 0.6)
            .copied()
            .unwrap_or(env.target())
    };
    let (_, bearing) = pose.towards(aim);
    if bearing > 0.25 {
        LEFT
    } else if bearing < -0.25 {
        RIGHT
    } else {
        FORWARD
    }
}

/// Turns until the target's bearing is within half a turn.
fn face_target(env: &mut BuiltinEnv) -> Transition {
    let mut last = None;
    for _ in 0..40 {
        let (_, bearing) = env.pose().towards(env.target());
        if bearing.abs() <= env.config().turn / 2.0 + 1e-9 && last.is_some() {
            break;
        }
        last = Some(env.step(if bearing > 0.0 { LEFT } else { RIGHT }).unwrap());
    }
    last.unwrap()
}

/// Whether the straight segment between two points crosses a solid cell (sampled every cm).
fn blocked(occ: &Occupancy, a: [f64; 2], b: [f64; 2]) -> bool {
    let n = ((b[0] - a[0]).hypot(b[1] - a[1]) / 0.01).ceil() as usize;
    (0..=n).any(|k| {
        let t = k as f64 / n.max(1) as f64;
        let (x, y) = (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
        let (cx, cy) = ((x / occ.cell_size) as usize, (y / occ.cell_size) as usize);
        occ.solid[cy * occ.width + cx]
    })
}

#[test]
fn the_same_seed_replays_byte_identical_episodes() {
    let (mut a, mut b) = (env(small()), env(small()));
    assert_eq!(a.reset(Some(7)).unwrap(), b.reset(Some(7)).unwrap());
    let mut state = 12345u64;
    for _ in 0..200 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let action = (state >> 33) as usize % 3;
        let (ta, tb) = (a.step(action).unwrap(), b.step(action).unwrap());
        assert_eq!(ta, tb);
        if ta.terminated || ta.truncated {
            break;
        }
    }
    // reset(None) continues the stream the seeded reset started, identically.
    for _ in 0..3 {
        let (oa, ob) = (a.reset(None).unwrap(), b.reset(None).unwrap());
        assert_eq!(oa, ob);
        assert_eq!(a.pose(), b.pose());
    }
    // A fresh environment replays seed 7 after another episode ran.
    let mut c = env(small());
    c.reset(Some(3)).unwrap();
    assert_eq!(
        c.reset(Some(7)).unwrap(),
        env(small()).reset(Some(7)).unwrap()
    );
}

#[test]
fn seeds_choose_layouts_and_episodes() {
    let cfg = small();
    let mut e = env(cfg.clone());
    e.reset(Some(0)).unwrap();
    let (plan0, pose0) = (e.occupancy(), e.pose());
    e.reset(Some(1)).unwrap();
    assert_ne!(e.occupancy(), plan0, "seeds 0 and 1 play different layouts");
    // Seed train_layouts wraps onto layout 0, with another start.
    e.reset(Some(cfg.train_layouts)).unwrap();
    assert_eq!(e.occupancy(), plan0);
    assert_ne!(e.pose(), pose0);
    // Many seeds visit many layouts.
    let mut seeds = std::collections::BTreeSet::new();
    for s in 0..300 {
        e.reset(Some(s)).unwrap();
        seeds.insert(e.layout_seed());
    }
    assert_eq!(seeds.len() as u64, cfg.train_layouts);
}

#[test]
fn held_out_layouts_are_never_training_layouts() {
    let cfg = small();
    let mut train = env(cfg.clone());
    let mut plans = Vec::new();
    for s in 0..cfg.train_layouts {
        train.reset(Some(s)).unwrap();
        plans.push(train.occupancy());
    }
    let mut held = env(BuiltinConfig {
        split: Split::Heldout,
        ..cfg.clone()
    });
    let mut distinct = std::collections::BTreeSet::new();
    for s in 0..60 {
        held.reset(Some(s)).unwrap();
        assert!(
            !plans.contains(&held.occupancy()),
            "held-out seed {s} repeats a training layout"
        );
        distinct.insert(held.layout_seed());
    }
    assert_eq!(distinct.len(), 60, "every held-out seed has its own layout");
    // Even on one identical empty room, the two splits look different (other wall colours).
    let a = env(one_room()).reset(Some(0)).unwrap();
    let b = env(BuiltinConfig {
        split: Split::Heldout,
        ..one_room()
    })
    .reset(Some(0))
    .unwrap();
    assert_ne!(a.rgb, b.rgb);
    assert_eq!(held.describe(), "builtin:heldout 64x64");
    assert_eq!(
        env(BuiltinConfig::default()).describe(),
        "builtin:train 256x256"
    );
}

#[test]
fn observations_match_the_declared_spaces() {
    for cfg in [
        BuiltinConfig::default(),
        BuiltinConfig {
            width: 80,
            height: 48,
            depth: true,
            goal: true,
            ..small()
        },
        BuiltinConfig {
            width: 1,
            height: 1,
            ..small()
        },
    ] {
        let mut e = env(cfg.clone());
        let spaces = e.spaces().clone();
        assert_eq!(spaces.action.n, 3);
        assert_eq!(spaces.action.names, ACTIONS);
        assert_eq!(ACTIONS, ["forward", "turn_right", "turn_left"]);
        assert_eq!(
            (spaces.observation.height, spaces.observation.width),
            (cfg.height, cfg.width)
        );
        assert_eq!(spaces.observation.goal, if cfg.goal { 3 } else { 0 });
        let first = e.reset(Some(2)).unwrap();
        spaces.check_observation(&first).unwrap();
        for a in [0, 1, 2, 0, 0] {
            let t = e.step(a).unwrap();
            spaces.check_observation(&t.observation).unwrap();
            if let Some(goal) = &t.observation.goal {
                let (d, bearing) = e.pose().towards(e.target());
                assert!((goal[0] as f64 - d).abs() < 1e-4);
                assert!((goal[0] as f64 - t.info.values["distance"]).abs() < 1e-4);
                assert!((goal[1] as f64 - bearing.cos()).abs() < 1e-4);
                assert!((goal[2] as f64 - bearing.sin()).abs() < 1e-4);
            }
        }
    }
}

#[test]
fn every_step_costs_and_reaching_the_target_pays() {
    let cfg = small();
    let mut e = env(cfg.clone());
    let mut successes = 0;
    for seed in 0..20 {
        e.reset(Some(seed)).unwrap();
        loop {
            let t = e.step(oracle(&e)).unwrap();
            let values = &t.info.values;
            for key in ["distance", "x", "y", "heading"] {
                assert!(values.contains_key(key), "info lacks {key}");
            }
            assert_eq!(values["x"], e.pose().x);
            if t.terminated {
                assert!(t.info.success && !t.truncated);
                assert_eq!(t.reward, cfg.step_reward + cfg.success_reward);
                assert!(values["distance"] <= cfg.success_distance);
                successes += 1;
                break;
            }
            assert_eq!(t.reward, cfg.step_reward);
            assert!(!t.info.success);
            assert!(values["distance"] > cfg.success_distance);
            if t.truncated {
                break;
            }
        }
        assert!(matches!(e.step(FORWARD), Err(EnvError::NeedsReset)));
    }
    assert!(
        successes >= 18,
        "the shortest-path agent reached {successes} of 20 targets"
    );
    // In one empty room, a walker that faces the target and goes straight always arrives.
    let mut e = env(one_room());
    for seed in 0..10 {
        e.reset(Some(seed)).unwrap();
        let start = e.distance_to_target();
        assert!(start >= e.config().min_start_distance - 1e-9);
        let mut total = 0.0;
        let t = loop {
            let (_, bearing) = e.pose().towards(e.target());
            let a = if bearing > 0.13 {
                LEFT
            } else if bearing < -0.13 {
                RIGHT
            } else {
                FORWARD
            };
            let t = e.step(a).unwrap();
            total += t.reward;
            if t.terminated || t.truncated {
                break t;
            }
        };
        assert!(t.terminated && t.info.success, "seed {seed}");
        assert!((total - (e.steps() as f64 * -0.025 + 10.0)).abs() < 1e-9);
    }
}

#[test]
fn episodes_are_truncated_at_max_steps() {
    let mut e = env(BuiltinConfig {
        max_steps: 30,
        ..small()
    });
    e.reset(Some(4)).unwrap();
    let mut total = 0.0;
    for k in 1..=30 {
        let t = e.step(LEFT).unwrap();
        total += t.reward;
        assert_eq!(t.truncated, k == 30, "step {k}");
        assert!(!t.terminated);
    }
    assert!((total + 0.75).abs() < 1e-9);
    assert!(matches!(e.step(LEFT), Err(EnvError::NeedsReset)));
    // The default is Gibson's 400.
    let mut e = env(small());
    e.reset(Some(4)).unwrap();
    let n = (1..).find(|_| e.step(RIGHT).unwrap().truncated).unwrap();
    assert_eq!(n, 400);
}

#[test]
fn driving_into_walls_never_leaves_free_space() {
    let mut e = env(small());
    let mut stuck = 0;
    for seed in 0..20 {
        e.reset(Some(seed)).unwrap();
        let occ = e.occupancy();
        let mut at = [e.pose().x, e.pose().y];
        let mut last_moved = true;
        for _ in 0..400 {
            let t = e.step(FORWARD).unwrap();
            let p = e.pose();
            assert!(
                e.is_free(p.x, p.y),
                "seed {seed}: the agent overlaps a wall at {p:?}"
            );
            assert!(
                !blocked(&occ, at, [p.x, p.y]),
                "seed {seed}: the agent crossed a wall"
            );
            assert!((p.x - at[0]).hypot(p.y - at[1]) <= e.config().step_size + 1e-9);
            last_moved = [p.x, p.y] != at;
            at = [p.x, p.y];
            if t.terminated || t.truncated {
                break;
            }
        }
        stuck += usize::from(!last_moved);
    }
    assert!(
        stuck >= 10,
        "only {stuck} of 20 forward drives ended against a wall"
    );
}

#[test]
fn the_target_shows_when_faced_and_hides_otherwise() {
    let mut e = env(one_room());
    for seed in 0..10 {
        e.reset(Some(seed)).unwrap();
        let far = face_target(&mut e);
        let d_far = e.distance_to_target();
        let seen_far = target_pixels(&far.observation.rgb);
        assert!(
            seen_far > 0,
            "seed {seed}: the target {d_far:.2} m ahead is not drawn"
        );
        // Walk up to it (re-aiming), it grows.
        let mut near = far;
        while e.distance_to_target() > 1.0 {
            let (_, bearing) = e.pose().towards(e.target());
            near = e
                .step(if bearing > 0.13 {
                    LEFT
                } else if bearing < -0.13 {
                    RIGHT
                } else {
                    FORWARD
                })
                .unwrap();
        }
        let t = face_target(&mut e);
        let near = if t.terminated { near } else { t };
        let seen_near = target_pixels(&near.observation.rgb);
        assert!(
            seen_near > seen_far,
            "seed {seed}: {seen_near} px at 1 m, {seen_far} px at {d_far:.2} m"
        );
        assert!(
            seen_near * 50 > 64 * 64,
            "seed {seed}: the cube at 1 m covers only {seen_near} px"
        );
        // The centre column below the horizon shows it.
        let f = &near.observation.rgb;
        assert!(
            (32..64).any(|y| is_target_colour(f.pixel(y, 32)) || is_target_colour(f.pixel(y, 31)))
        );
        // Turned away (half a turn), nothing of it is drawn.
        let mut away = near;
        for _ in 0..(PI / e.config().turn).round() as usize {
            away = e.step(LEFT).unwrap();
        }
        assert_eq!(
            target_pixels(&away.observation.rgb),
            0,
            "seed {seed}: target drawn behind the camera"
        );
    }
}

#[test]
fn walls_hide_the_target() {
    let mut e = env(BuiltinConfig {
        max_steps: 1000,
        ..small()
    });
    let (mut hidden, mut shown) = (0, 0);
    for seed in 0..200 {
        e.reset(Some(seed)).unwrap();
        let t = face_target(&mut e);
        let occ = e.occupancy();
        let [tx, ty] = e.target();
        let half = e.config().target_size / 2.0;
        let eye = [e.pose().x, e.pose().y];
        // Lines to points all over the cube's footprint: all blocked, or all clear.
        let lines: Vec<bool> = (0..=6)
            .flat_map(|i| {
                (0..=6).map(move |j| {
                    [
                        tx - half + half * i as f64 / 3.0,
                        ty - half + half * j as f64 / 3.0,
                    ]
                })
            })
            .map(|p| blocked(&occ, eye, p))
            .collect();
        let seen = target_pixels(&t.observation.rgb);
        if lines.iter().all(|&b| b) {
            assert_eq!(seen, 0, "seed {seed}: the target shows through a wall");
            hidden += 1;
        } else if lines.iter().all(|&b| !b) {
            assert!(
                seen > 0,
                "seed {seed}: the target in plain sight is not drawn"
            );
            shown += 1;
        }
    }
    assert!(
        hidden >= 10 && shown >= 10,
        "{hidden} hidden and {shown} visible cases"
    );
}

#[test]
fn depth_is_the_planar_distance_to_the_wall() {
    // An odd width puts the centre column on the optical axis.
    let cfg = BuiltinConfig {
        width: 65,
        height: 65,
        depth: true,
        ..one_room()
    };
    let (lo, hi) = (cfg.cell_size, cfg.cell_size + cfg.room_size);
    let tan_half = (cfg.fov_degrees.to_radians() / 2.0).tan();
    let mut e = env(cfg.clone());
    let mut checked = 0;
    for seed in 0..10 {
        let mut obs = e.reset(Some(seed)).unwrap();
        for turn in 0..12 {
            if turn > 0 {
                obs = e.step(LEFT).unwrap().observation;
            }
            let depth = obs.depth.as_ref().unwrap();
            assert!(depth.iter().all(|d| d.is_finite() && *d > 0.0));
            if is_target_colour(obs.rgb.pixel(32, 32)) {
                continue;
            }
            let p = e.pose();
            let (c, s) = (p.heading.cos(), p.heading.sin());
            let along = |x: f64, d: f64| {
                if d > 0.0 {
                    (hi - x) / d
                } else if d < 0.0 {
                    (lo - x) / d
                } else {
                    f64::INFINITY
                }
            };
            let expected = along(p.x, c).min(along(p.y, s));
            let got = depth[32 * 65 + 32] as f64;
            assert!(
                (got - expected).abs() < 2e-3,
                "seed {seed}: depth {got} for a wall {expected} m ahead"
            );
            checked += 1;
            // Off the axis, depth is planar: the ray of column x, scaled to one metre along
            // the heading, reaches the wall at that depth (no fisheye).
            for col in (0..65).step_by(8) {
                if (0..65).any(|y| is_target_colour(obs.rgb.pixel(y, col))) {
                    continue;
                }
                let k = (2.0 * (col as f64 + 0.5) / 65.0 - 1.0) * tan_half;
                let ray = [c + s * k, s - c * k];
                let expected = along(p.x, ray[0]).min(along(p.y, ray[1]));
                let got = depth[32 * 65 + col] as f64;
                assert!(
                    (got - expected).abs() < 2e-3,
                    "seed {seed} column {col}: depth {got}, planar distance {expected}"
                );
            }
        }
    }
    assert!(checked > 80);
    // The floor at the bottom row is camera_height * focal / (rows below the horizon) away.
    let depth = e.reset(Some(0)).unwrap().depth.unwrap();
    let focal = 65.0 / 2.0 / tan_half;
    let floor = cfg.camera_height * focal / (64.5 - 32.5);
    assert!((depth[64 * 65 + 10] as f64 - floor).abs() < 1e-3);
}

#[test]
fn misuse_is_reported() {
    let mut e = env(small());
    assert!(matches!(e.step(FORWARD), Err(EnvError::NeedsReset)));
    e.reset(Some(0)).unwrap();
    assert!(matches!(
        e.step(3),
        Err(EnvError::InvalidAction { action: 3, n: 3 })
    ));
    e.step(FORWARD).unwrap();
    for bad in [
        BuiltinConfig {
            width: 0,
            ..small()
        },
        BuiltinConfig {
            step_size: 0.0,
            ..small()
        },
        BuiltinConfig {
            room_size: 0.4,
            ..small()
        },
        BuiltinConfig {
            camera_height: 3.0,
            ..small()
        },
        BuiltinConfig {
            train_layouts: 0,
            ..small()
        },
        BuiltinConfig {
            fov_degrees: f64::NAN,
            ..small()
        },
    ] {
        assert!(matches!(BuiltinEnv::new(bad), Err(EnvError::Config(_))));
    }
}

#[test]
fn configs_read_from_task_files() {
    let cfg: BuiltinConfig =
        serde_json::from_str(r#"{"width": 64, "split": "heldout", "depth": true}"#).unwrap();
    assert_eq!(
        cfg,
        BuiltinConfig {
            width: 64,
            split: Split::Heldout,
            depth: true,
            ..BuiltinConfig::default()
        }
    );
    assert!(serde_json::from_str::<BuiltinConfig>(r#"{"widht": 64}"#).is_err());
    let d = BuiltinConfig::default();
    assert_eq!((d.width, d.height, d.max_steps), (256, 256, 400));
    assert_eq!(
        (
            d.step_size,
            d.turn,
            d.step_reward,
            d.success_reward,
            d.success_distance
        ),
        (0.1, 0.24, -0.025, 10.0, 0.5)
    );
    assert!(!d.goal && !d.depth);
}

#[test]
fn the_map_shows_the_plan_the_target_and_the_trail() {
    let mut e = env(small());
    e.reset(Some(5)).unwrap();
    let before = e.top_down(128);
    assert_eq!(
        (before.height, before.width, before.data.len()),
        (128, 128, 128 * 128 * 3)
    );
    assert!(target_pixels(&before) > 0);
    for _ in 0..30 {
        e.step(oracle(&e)).unwrap();
    }
    assert_ne!(e.top_down(128), before);
}

#[test]
fn runs_vectorised() {
    let envs: Vec<Box<dyn Env>> = (0..2)
        .map(|_| Box::new(env(small())) as Box<dyn Env>)
        .collect();
    let mut v = VecEnv::new(envs, 9).unwrap();
    let first = v.reset().unwrap();
    assert_ne!(first[0], first[1]);
    let mut ends = 0;
    for _ in 0..450 {
        ends += v
            .step(&[FORWARD, LEFT])
            .unwrap()
            .iter()
            .filter(|s| s.end.is_some())
            .count();
    }
    assert!(
        ends >= 1,
        "the turning agent's episode is truncated at 400 steps"
    );
}
