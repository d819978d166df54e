//! The gym bridge against the real ViZDoom engine: handshake, both transports, episode ends,
//! a killed server, malformed frames both ways, version mismatches, and frames equal byte for
//! byte to those the engine gives in-process. Needs `python3` with vizdoom and gymnasium
//! (`pip install -r data-scripts/requirements.txt`); fails, never skips, without them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Once;
use std::time::Duration;

use sslbench_envs::bridge::{Address, BridgeConfig, BridgeEnv, BridgeServer, Transport};
use sslbench_envs::{ActionSpace, Env, EnvError, ObservationSpace};

fn require_vizdoom() {
    static CHECK: Once = Once::new();
    CHECK.call_once(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import vizdoom, gymnasium, numpy; print(vizdoom.__version__)",
            ])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "the bridge tests need python3 with vizdoom, gymnasium and numpy: \
                 pip install -r data-scripts/requirements.txt\n{}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!("the bridge tests need `python3` on PATH ({e})"),
        }
    });
}

/// ViZDoom at 160x120 (the engine's smallest frame keeps the tests fast).
fn doom(scenario: &str) -> BridgeConfig {
    require_vizdoom();
    BridgeConfig::new(format!("vizdoom:{scenario}")).with_option("resolution", "160X120")
}

fn is_server_died(e: &EnvError) -> bool {
    matches!(e, EnvError::ServerDied { .. })
}

#[test]
fn handshake_declares_the_spaces() {
    let env = BridgeEnv::start(doom("my_way_home")).unwrap();
    let names = ["forward", "turn_right", "turn_left"]
        .map(String::from)
        .to_vec();
    assert_eq!(env.spaces().action, ActionSpace { n: 3, names });
    assert_eq!(
        env.spaces().observation,
        ObservationSpace {
            height: 120,
            width: 160,
            depth: false,
            goal: 0
        }
    );
    assert!(
        env.describe().starts_with("vizdoom:my_way_home via unix:"),
        "{}",
        env.describe()
    );
    assert!(env.server_pid().is_some());
}

#[test]
fn resets_and_steps_over_unix_and_tcp() {
    // Unix socket with the pixels in shared memory; TCP with the pixels through the socket and
    // a client that polls before it sleeps.
    let variants = [(Transport::Unix, true, 0), (Transport::Tcp, false, 500)];
    for (transport, shared_memory, spin_us) in variants {
        let mut cfg = doom("my_way_home");
        cfg.transport = transport;
        cfg.shared_memory = shared_memory;
        cfg.spin_us = spin_us;
        let mut env = BridgeEnv::start(cfg).unwrap();
        assert_eq!(env.uses_shared_memory(), shared_memory);
        let scheme = if transport == Transport::Tcp {
            "tcp:"
        } else {
            "unix:"
        };
        assert!(
            env.address().to_string().starts_with(scheme),
            "{}",
            env.address()
        );
        let first = env.reset(Some(3)).unwrap();
        let mut last = first.clone();
        let mut changed = 0;
        for i in 0..12 {
            let t = env.step([0, 0, 1, 0, 2][i % 5]).unwrap();
            assert!(!t.terminated && !t.truncated);
            assert!(
                t.info.values.contains_key("distance"),
                "{:?}",
                t.info.values
            );
            changed += usize::from(t.observation != last);
            last = t.observation;
        }
        assert!(
            changed >= 10,
            "only {changed} of 12 steps changed the frame"
        );
        // The same seed gives the same episode; another seed another start.
        assert_eq!(env.reset(Some(3)).unwrap(), first);
        assert_ne!(env.reset(Some(4)).unwrap(), first);
    }
}

#[test]
fn an_episode_ends_by_timeout_then_needs_a_reset() {
    // 40 tics, 10 of them before the episode starts, 4 tics a step: ~8 steps.
    let mut env =
        BridgeEnv::start(doom("my_way_home").with_option("episode_timeout", 40i64)).unwrap();
    env.reset(Some(1)).unwrap();
    let mut steps = 0;
    let last = loop {
        let t = env.step(1).unwrap();
        steps += 1;
        if t.terminated || t.truncated || steps > 50 {
            break t;
        }
    };
    assert!(
        last.truncated && !last.terminated && !last.info.success,
        "after {steps} steps: {last:?}"
    );
    assert!(
        (5..=12).contains(&steps),
        "the 40-tic episode took {steps} steps"
    );
    assert!(matches!(env.step(0), Err(EnvError::NeedsReset)));
    env.reset(Some(2)).unwrap();
    env.step(0).unwrap();
}

#[test]
fn reaching_the_target_terminates_with_success() {
    // deadly_corridor: the green armour lies straight ahead; walking forward reaches it.
    let mut env = BridgeEnv::start(doom("deadly_corridor")).unwrap();
    env.reset(Some(5)).unwrap();
    let mut total = 0.0;
    for step in 0..200 {
        let t = env.step(0).unwrap();
        total += t.reward;
        if t.terminated || t.truncated {
            assert!(
                t.terminated && !t.truncated && t.info.success,
                "step {step}: {t:?}"
            );
            assert!(total > 1000.0, "progress reward {total}");
            assert!(matches!(env.step(0), Err(EnvError::NeedsReset)));
            return;
        }
    }
    panic!("walking forward for 200 steps never reached the armour");
}

#[test]
fn a_killed_server_fails_the_step_and_the_next_reset_restarts_it() {
    let mut env = BridgeEnv::start(doom("my_way_home")).unwrap();
    env.reset(Some(9)).unwrap();
    for _ in 0..5 {
        env.step(0).unwrap();
    }
    let pid = env.server_pid().unwrap();
    let engines = children_of(pid);
    assert!(
        !engines.is_empty(),
        "no ViZDoom engine process under the server {pid}"
    );
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(100));
    let err = env.step(0).unwrap_err();
    assert!(is_server_died(&err), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("process {pid} exited")) && text.contains("SIGKILL"),
        "{text}"
    );
    assert!(text.contains("reset to restart"), "{text}");
    // The dead server's simulator went with it.
    for engine in engines {
        assert!(ended(engine), "engine {engine} outlived its server");
    }
    // The episode is gone: no step until a reset, which brings up a new server.
    assert!(matches!(env.step(0), Err(EnvError::NeedsReset)));
    let first = env.reset(Some(9)).unwrap();
    assert_ne!(env.server_pid(), Some(pid));
    assert_eq!(first.rgb.data.len(), 120 * 160 * 3);
    for _ in 0..5 {
        env.step(2).unwrap();
    }
}

/// Whether a process ends (or is a zombie) within three seconds: signals and reaping by init
/// take a moment.
fn ended(pid: u32) -> bool {
    for _ in 0..300 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if matches!(
                    stat.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().chars().next()),
                    Some(Some('Z' | 'X'))
                ) =>
            {
                return true
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

/// The pids whose parent is `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(vec![], |(_, r)| r.split_whitespace().collect());
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            children.push(child);
        }
    }
    children
}

/// Sends raw bytes on a fresh connection and returns the server's reply: (type, header).
fn raw_exchange(address: &Address, bytes: &[u8]) -> (u8, serde_json::Value) {
    let Address::Tcp(host_port) = address else {
        panic!("expected a TCP server")
    };
    let mut s = TcpStream::connect(host_port).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut payload).unwrap();
    let hlen = u32::from_be_bytes(payload[1..5].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&payload[5..5 + hlen]).unwrap();
    // After an error the server closes the connection.
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "the server kept the connection open"
    );
    (payload[0], header)
}

fn frame(kind: u8, header: &[u8]) -> Vec<u8> {
    let mut f = ((5 + header.len()) as u32).to_be_bytes().to_vec();
    f.push(kind);
    f.extend_from_slice(&(header.len() as u32).to_be_bytes());
    f.extend_from_slice(header);
    f
}

#[test]
fn the_server_answers_malformed_frames_with_errors_and_keeps_serving() {
    let mut cfg = doom("my_way_home");
    cfg.transport = Transport::Tcp;
    let server = BridgeServer::spawn(&cfg).unwrap();
    let address = server.address().clone();
    let mut bad_header_length = frame(1, b"{}");
    bad_header_length[5..9].copy_from_slice(&1000u32.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "exceeds the cap",
        ),
        (
            "short length",
            vec![0, 0, 0, 3, 1, 2, 3],
            "shorter than the 5-byte",
        ),
        ("header length", bad_header_length, "does not fit"),
        ("bad json", frame(1, b"{\"magic\": "), "not UTF-8 JSON"),
        ("unknown type", frame(42, b"{}"), "unknown message type 42"),
        (
            "step first",
            frame(4, b"{\"action\": 0}"),
            "first message must be HELLO",
        ),
        (
            "wrong magic",
            frame(1, br#"{"magic": "nope", "version": 1}"#),
            "magic",
        ),
    ];
    for (name, bytes, expected) in cases {
        let (kind, header) = raw_exchange(&address, &bytes);
        assert_eq!(kind, 8, "{name}: expected ERROR, got type {kind}");
        assert_eq!(header["kind"], "protocol", "{name}: {header}");
        let message = header["message"].as_str().unwrap();
        assert!(message.contains(expected), "{name}: {message}");
    }
    // Another protocol version: ERROR kind "version" naming the versions the server speaks.
    let hello = br#"{"magic": "sslbench-gym-bridge", "version": 99, "env": "vizdoom:my_way_home"}"#;
    let (kind, header) = raw_exchange(&address, &frame(1, hello));
    assert_eq!(
        (kind, header["kind"].as_str()),
        (8, Some("version")),
        "{header}"
    );
    assert_eq!(header["versions"], serde_json::json!([1]));
    assert!(
        header["message"].as_str().unwrap().contains("99"),
        "{header}"
    );

    // The server still serves a well-behaved client, and rebuilds its environment for the
    // client's options.
    let cfg = doom("my_way_home").with_option("resize", "30x40");
    let mut env = BridgeEnv::connect(&address.to_string(), cfg).unwrap();
    assert_eq!(env.server_pid(), None);
    assert_eq!(
        (
            env.spaces().observation.height,
            env.spaces().observation.width
        ),
        (30, 40)
    );
    env.reset(Some(1)).unwrap();
    assert_eq!(env.step(0).unwrap().observation.rgb.data.len(), 30 * 40 * 3);
    drop(env);
    // A client asking for another environment is refused with a config error.
    let err = BridgeEnv::connect(&address.to_string(), doom("deadly_corridor")).unwrap_err();
    assert!(
        matches!(&err, EnvError::Config(m) if m.contains("serves `vizdoom:my_way_home`")),
        "{err}"
    );
}

/// A one-connection fake server: reads a client frame before sending each reply in turn,
/// then closes.
fn fake_server(replies: Vec<Vec<u8>>) -> String {
    fake_server_holding(replies, Duration::ZERO)
}

/// The same, keeping the connection open for `hold` after the last reply (a hung server).
fn fake_server_holding(replies: Vec<Vec<u8>>, hold: Duration) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("tcp:{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        for reply in replies {
            let mut len = [0u8; 4];
            if s.read_exact(&mut len).is_err() {
                return;
            }
            let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
            if s.read_exact(&mut payload).is_err() {
                return;
            }
            let _ = s.write_all(&reply);
        }
        std::thread::sleep(hold);
    });
    address
}

fn frame_with_blobs(kind: u8, header: &serde_json::Value, blobs: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).unwrap();
    let mut f = ((5 + json.len() + blobs.len()) as u32)
        .to_be_bytes()
        .to_vec();
    f.push(kind);
    f.extend_from_slice(&(json.len() as u32).to_be_bytes());
    f.extend_from_slice(&json);
    f.extend_from_slice(blobs);
    f
}

fn welcome(version: u32) -> Vec<u8> {
    let header = serde_json::json!({
        "version": version, "description": "fake",
        "spaces": {"action": {"n": 2, "names": ["a", "b"]},
                   "observation": {"height": 2, "width": 2, "depth": false, "goal": 0}}
    });
    frame_with_blobs(2, &header, &[])
}

fn obs(shape: serde_json::Value, declared: usize, carried: usize) -> Vec<u8> {
    let header = serde_json::json!({
        "reward": 0.0, "terminated": false, "truncated": false, "success": false, "values": {},
        "blobs": [{"name": "rgb", "dtype": "u8", "shape": shape, "bytes": declared}]
    });
    frame_with_blobs(5, &header, &vec![7u8; carried])
}

fn fake_cfg() -> BridgeConfig {
    let mut cfg = BridgeConfig::new("fake:env");
    cfg.start_timeout = 5.0;
    cfg.request_timeout = 5.0;
    cfg
}

#[test]
fn the_client_turns_malformed_replies_into_protocol_errors() {
    // Garbage instead of WELCOME.
    let address = fake_server(vec![b"\xff\xff\xff\xffjunk".to_vec()]);
    let err = BridgeEnv::connect(&address, fake_cfg()).unwrap_err();
    assert!(
        matches!(&err, EnvError::Protocol(m) if m.contains("exceeds the cap")),
        "{err}"
    );

    // A reply of an unknown type.
    let address = fake_server(vec![frame(99, b"{}")]);
    let err = BridgeEnv::connect(&address, fake_cfg()).unwrap_err();
    assert!(
        matches!(&err, EnvError::Protocol(m) if m.contains("unknown message type 99")),
        "{err}"
    );

    // A frame whose blobs do not match the spaces: 3x2 instead of 2x2.
    let address = fake_server(vec![welcome(1), obs(serde_json::json!([3, 2, 3]), 18, 18)]);
    let mut env = BridgeEnv::connect(&address, fake_cfg()).unwrap();
    let err = env.reset(None).unwrap_err();
    assert!(
        matches!(&err, EnvError::Protocol(m) if m.contains("the spaces declare u8 [2, 2, 3]")),
        "{err}"
    );
    assert!(matches!(env.step(0), Err(EnvError::NeedsReset)));

    // A header declaring more blob bytes than the frame carries.
    let address = fake_server(vec![welcome(1), obs(serde_json::json!([2, 2, 3]), 12, 5)]);
    let mut env = BridgeEnv::connect(&address, fake_cfg()).unwrap();
    let err = env.reset(None).unwrap_err();
    assert!(
        matches!(&err, EnvError::Protocol(m) if m.contains("declares 12 bytes")),
        "{err}"
    );

    // A blob in shared memory this client never took.
    let header = serde_json::json!({"blobs": [
        {"name": "rgb", "dtype": "u8", "shape": [2, 2, 3], "bytes": 12, "shm_offset": 64}
    ]});
    let address = fake_server(vec![welcome(1), frame_with_blobs(5, &header, &[])]);
    let mut env = BridgeEnv::connect(&address, fake_cfg()).unwrap();
    assert!(!env.uses_shared_memory());
    let err = env.reset(None).unwrap_err();
    assert!(
        matches!(&err, EnvError::Protocol(m) if m.contains("did not take")),
        "{err}"
    );

    // A well-formed frame goes through.
    let address = fake_server(vec![welcome(1), obs(serde_json::json!([2, 2, 3]), 12, 12)]);
    let mut env = BridgeEnv::connect(&address, fake_cfg()).unwrap();
    assert_eq!(env.reset(None).unwrap().rgb.data, vec![7u8; 12]);

    // A server that hangs up mid-request.
    let address = fake_server(vec![welcome(1)]);
    let mut env = BridgeEnv::connect(&address, fake_cfg()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let err = env.reset(None).unwrap_err();
    assert!(is_server_died(&err), "{err}");
}

#[test]
fn a_silent_server_times_out() {
    let mut cfg = fake_cfg();
    cfg.start_timeout = 0.3;
    cfg.request_timeout = 0.3;
    let address = fake_server_holding(vec![], Duration::from_secs(3));
    let err = BridgeEnv::connect(&address, cfg.clone()).unwrap_err();
    assert!(
        matches!(&err, EnvError::Timeout { what, .. } if what == "handshake"),
        "{err}"
    );
    let address = fake_server_holding(vec![welcome(1)], Duration::from_secs(3));
    let mut env = BridgeEnv::connect(&address, cfg).unwrap();
    let err = env.reset(Some(1)).unwrap_err();
    assert!(
        matches!(&err, EnvError::Timeout { what, seconds, .. } if what == "reset" && *seconds == 0.3),
        "{err}"
    );
}

#[test]
fn a_hung_server_times_out_and_the_next_reset_replaces_it() {
    let mut cfg = doom("my_way_home");
    cfg.request_timeout = 1.0;
    let mut env = BridgeEnv::start(cfg).unwrap();
    env.reset(Some(2)).unwrap();
    env.step(0).unwrap();
    let pid = env.server_pid().unwrap();
    let engines = children_of(pid);
    assert!(Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let err = env.step(0).unwrap_err();
    assert!(
        matches!(&err, EnvError::Timeout { what, .. } if what == "step"),
        "{err}"
    );
    assert!(err.is_fatal());
    // The hung server was killed; reset starts another.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the hung server {pid} still exists"
    );
    for engine in engines {
        assert!(ended(engine), "engine {engine} outlived its server");
    }
    env.reset(Some(2)).unwrap();
    assert_ne!(env.server_pid(), Some(pid));
    env.step(1).unwrap();
}

#[test]
fn a_version_mismatch_names_both_versions() {
    let address = fake_server(vec![welcome(2)]);
    let err = BridgeEnv::connect(&address, fake_cfg()).unwrap_err();
    assert!(
        matches!(&err, EnvError::Version { ours: 1, theirs } if theirs == "2"),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("this client speaks 1, the server 2"),
        "{text}"
    );

    // A server of another version refusing our HELLO.
    let refusal = serde_json::json!({"kind": "version", "message": "this server speaks protocol version 2; the client asked for 1", "versions": [2]});
    let address = fake_server(vec![frame_with_blobs(8, &refusal, &[])]);
    let err = BridgeEnv::connect(&address, fake_cfg()).unwrap_err();
    assert!(
        matches!(&err, EnvError::Version { ours: 1, theirs } if theirs.starts_with("[2]")),
        "{err}"
    );
}

/// Runs the adapter in-process through envs/bridge/inprocess.py and returns the raw frames and
/// the per-step JSON lines.
fn record_in_process(
    cfg: &BridgeConfig,
    seed: u64,
    actions: &[usize],
) -> (Vec<u8>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frames.bin");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bridge/inprocess.py");
    let actions: Vec<String> = actions.iter().map(usize::to_string).collect();
    let status = Command::new("python3")
        .arg(script)
        .args(["record", "--env", &cfg.env, "--seed", &seed.to_string()])
        .args([
            "--options-json",
            &serde_json::to_string(&cfg.options).unwrap(),
        ])
        .args(["--actions", &actions.join(","), "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "inprocess.py record failed");
    let frames = std::fs::read(&out).unwrap();
    let lines = std::fs::read_to_string(out.with_extension("bin.json")).unwrap();
    let steps = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (frames, steps)
}

fn observation_bytes(o: &sslbench_envs::Observation) -> Vec<u8> {
    let mut bytes = o.rgb.data.clone();
    for v in o.depth.iter().chain(o.goal.iter()).flatten() {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

#[test]
fn frames_equal_the_engines_byte_for_byte() {
    let actions: Vec<usize> = (0..40u64).map(|i| ((i * 7 + i / 3) % 3) as usize).collect();
    let mut through_socket = doom("my_way_home")
        .with_option("depth", true)
        .with_option("resize", "60x90");
    through_socket.shared_memory = false;
    let configs = [
        doom("my_way_home")
            .with_option("depth", true)
            .with_option("goal", true),
        through_socket,
    ];
    for cfg in configs {
        let (expected, steps) = record_in_process(&cfg, 11, &actions);
        let mut env = BridgeEnv::start(cfg.clone()).unwrap();
        assert_eq!(env.uses_shared_memory(), cfg.shared_memory);
        let o = env.spaces().observation.clone();
        assert!(o.depth);
        let mut got = observation_bytes(&env.reset(Some(11)).unwrap());
        let per_frame = got.len();
        assert_eq!(per_frame, o.height * o.width * 7 + o.goal * 4);
        for (i, &a) in actions.iter().enumerate() {
            let t = env.step(a).unwrap();
            assert_eq!(
                t.reward,
                steps[i]["reward"].as_f64().unwrap(),
                "step {i} reward"
            );
            assert_eq!(t.truncated, steps[i]["truncated"].as_bool().unwrap());
            assert_eq!(
                t.info.values["distance"],
                steps[i]["values"]["distance"].as_f64().unwrap()
            );
            got.extend(observation_bytes(&t.observation));
        }
        assert_eq!(
            got.len(),
            expected.len(),
            "{:?}: frame count differs",
            cfg.options
        );
        for (i, (a, b)) in got
            .chunks(per_frame)
            .zip(expected.chunks(per_frame))
            .enumerate()
        {
            assert!(
                a == b,
                "{:?}: observation {i} differs from the in-process engine's",
                cfg.options
            );
        }
        // The depth is metric and varies: not a constant buffer.
        let depth = env.reset(Some(11)).unwrap().depth.unwrap();
        let (lo, hi) = depth
            .iter()
            .fold((f32::MAX, f32::MIN), |(l, h), &d| (l.min(d), h.max(d)));
        assert!(lo > 0.0 && hi > lo + 1.0, "depth range {lo}..{hi} m");
    }
}

#[test]
fn gymnasium_ids_are_served_too() {
    require_vizdoom();
    let mut env = BridgeEnv::start(BridgeConfig::new(
        "gym:vizdoom.gymnasium_wrapper:VizdoomMyWayHome-v1",
    ))
    .unwrap();
    let o = env.spaces().observation.clone();
    assert_eq!((o.height, o.width, o.depth), (240, 320, false));
    assert!(env.spaces().action.n >= 3);
    env.reset(Some(0)).unwrap();
    let t = env.step(1).unwrap();
    assert_eq!(t.observation.rgb.data.len(), 240 * 320 * 3);
}

#[test]
fn configuration_mistakes_are_named() {
    let err = BridgeEnv::start(doom("my_way_home").with_option("frame_skp", 4i64)).unwrap_err();
    assert!(
        matches!(&err, EnvError::Config(m) if m.contains("unknown option(s) frame_skp") && m.contains("frame_skip")),
        "{err}"
    );
    let err = BridgeEnv::start(doom("no_such_map")).unwrap_err();
    assert!(
        matches!(&err, EnvError::Config(m) if m.contains("my_way_home")),
        "{err}"
    );
    let err = BridgeEnv::start(BridgeConfig::new("atari")).unwrap_err();
    assert!(
        matches!(&err, EnvError::Config(m) if m.contains("<family>:<name>")),
        "{err}"
    );
    let mut cfg = doom("my_way_home");
    cfg.python = "/nonexistent/python3".into();
    let err = BridgeEnv::start(cfg).unwrap_err();
    assert!(
        matches!(&err, EnvError::Config(m) if m.contains("not found")),
        "{err}"
    );
    let err = BridgeEnv::start(BridgeConfig::new("gibson:Beechwood")).unwrap_err();
    assert!(
        matches!(&err, EnvError::Config(m) if m.contains("`gibson` is not importable")),
        "{err}"
    );
}

#[test]
fn dropping_the_env_stops_its_server() {
    let env = BridgeEnv::start(doom("my_way_home")).unwrap();
    let pid = env.server_pid().unwrap();
    let engines = children_of(pid);
    assert!(!engines.is_empty());
    let Address::Unix(socket) = env.address().clone() else {
        panic!("expected a Unix socket")
    };
    assert!(socket.exists());
    drop(env);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "server {pid} still runs"
    );
    assert!(!socket.exists(), "{} left behind", socket.display());
    for engine in engines {
        assert!(ended(engine), "engine {engine} outlived its server");
    }
}
