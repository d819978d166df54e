//! The wire protocol, version 1 (envs/bridge/PROTOCOL.md): frames of a u32 big-endian payload
//! length, then the payload: a message type byte, a u32 big-endian header length, a UTF-8 JSON
//! header, and raw binary blobs whose names, types and shapes the header declares.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

use crate::{Frame, Observation, Spaces};

/// The protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The HELLO's magic name.
pub const MAGIC: &str = "sslbench-gym-bridge";
/// The largest payload either side accepts (256 MiB).
pub const MAX_FRAME: u32 = 256 << 20;
const MAX_HEADER: u32 = 1 << 20;

/// Message types (the payload's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Hello = 1,
    Welcome = 2,
    Reset = 3,
    Step = 4,
    Obs = 5,
    Close = 6,
    Bye = 7,
    Error = 8,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        use Kind::*;
        [Hello, Welcome, Reset, Step, Obs, Close, Bye, Error]
            .into_iter()
            .find(|k| *k as u8 == b)
    }
}

/// A failure while reading or writing a frame.
#[derive(Debug)]
pub(crate) enum WireError {
    /// The socket failed (closed, reset, timed out).
    Io(io::Error),
    /// The bytes do not follow the protocol.
    Malformed(String),
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        WireError::Io(e)
    }
}

fn malformed<T>(message: String) -> Result<T, WireError> {
    Err(WireError::Malformed(message))
}

/// HELLO: the client introduces itself.
#[derive(Debug, Serialize)]
pub(crate) struct Hello<'a> {
    pub magic: &'a str,
    pub version: u32,
    pub env: &'a str,
    pub options: &'a BTreeMap<String, super::OptionValue>,
    pub shm: bool,
}

/// WELCOME: the server's spaces and description.
#[derive(Debug, Deserialize)]
pub(crate) struct Welcome {
    pub version: u32,
    #[serde(default)]
    pub env: String,
    pub spaces: Spaces,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub shm: Option<ShmOffer>,
}

/// The shared memory a server offers: a file the client opens, checked by its first 16 bytes.
#[derive(Debug, Deserialize)]
pub(crate) struct ShmOffer {
    pub path: String,
    pub bytes: u64,
    pub token: String,
}

/// The shared memory as the client holds it.
#[derive(Debug)]
pub(crate) struct SharedFile {
    file: File,
    size: u64,
}

impl SharedFile {
    /// Opens the offered file and checks its token; None when it is not the server's (another
    /// PID namespace, another host) or cannot be opened.
    pub(crate) fn open(offer: &ShmOffer) -> Option<SharedFile> {
        let file = File::open(&offer.path).ok()?;
        let mut token = [0u8; 16];
        file.read_exact_at(&mut token, 0).ok()?;
        let hex: String = token.iter().map(|b| format!("{b:02x}")).collect();
        (hex == offer.token).then_some(SharedFile {
            file,
            size: offer.bytes,
        })
    }
}

/// ERROR: what failed on the server.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorReply {
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub versions: Vec<u32>,
}

/// One binary blob as the header declares it.
#[derive(Debug, Deserialize)]
pub(crate) struct Blob {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub bytes: usize,
    /// Where the blob lies in the shared memory; absent: inline in the frame.
    #[serde(default)]
    pub shm_offset: Option<u64>,
}

/// OBS: the step's scalars and the observation's blobs.
#[derive(Debug, Deserialize)]
pub(crate) struct ObsHeader {
    #[serde(default)]
    pub reward: f64,
    #[serde(default)]
    pub terminated: bool,
    #[serde(default)]
    pub truncated: bool,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
    pub blobs: Vec<Blob>,
}

/// A frame's type, JSON header (raw), and the length of the blobs that follow it.
#[derive(Debug)]
pub(crate) struct Head {
    pub kind: Kind,
    pub json: Vec<u8>,
    pub blob_bytes: usize,
}

/// Writes one message without blobs (every client message) in a single write.
pub(crate) fn write_message<W: Write>(
    w: &mut W,
    kind: Kind,
    header: &impl Serialize,
) -> Result<(), WireError> {
    let json = serde_json::to_vec(header)
        .map_err(|e| WireError::Malformed(format!("cannot encode a header: {e}")))?;
    let mut frame = Vec::with_capacity(9 + json.len());
    frame.extend_from_slice(&(5 + json.len() as u32).to_be_bytes());
    frame.push(kind as u8);
    frame.extend_from_slice(&(json.len() as u32).to_be_bytes());
    frame.extend_from_slice(&json);
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads a frame up to its blobs, checking the lengths before reading what they announce.
pub(crate) fn read_head<R: Read>(r: &mut R) -> Result<Head, WireError> {
    let mut four = [0u8; 4];
    r.read_exact(&mut four)?;
    let length = u32::from_be_bytes(four);
    if length < 5 {
        return malformed(format!(
            "frame length {length} is shorter than the 5-byte message head"
        ));
    }
    if length > MAX_FRAME {
        return malformed(format!(
            "frame length {length} exceeds the cap of {MAX_FRAME} bytes"
        ));
    }
    let mut five = [0u8; 5];
    r.read_exact(&mut five)?;
    let kind = Kind::from_byte(five[0]);
    let header_len = u32::from_be_bytes([five[1], five[2], five[3], five[4]]);
    if header_len > length - 5 || header_len > MAX_HEADER {
        return malformed(format!(
            "header length {header_len} does not fit the {length}-byte frame"
        ));
    }
    let Some(kind) = kind else {
        return malformed(format!("unknown message type {}", five[0]));
    };
    let mut json = vec![0u8; header_len as usize];
    r.read_exact(&mut json)?;
    Ok(Head {
        kind,
        json,
        blob_bytes: (length - 5 - header_len) as usize,
    })
}

/// Decodes a header into its typed form.
pub(crate) fn parse<T: serde::de::DeserializeOwned>(head: &Head) -> Result<T, WireError> {
    serde_json::from_slice(&head.json).map_err(|e| {
        let text = String::from_utf8_lossy(&head.json);
        let shown: String = text.chars().take(200).collect();
        WireError::Malformed(format!("malformed {:?} header ({e}): {shown}", head.kind))
    })
}

/// Reads an OBS frame's blobs into an observation, checking every declared name, type, shape
/// and length against the spaces before reading a byte of them.
pub(crate) fn read_observation<R: Read>(
    r: &mut R,
    head: &Head,
    spaces: &Spaces,
    shared: Option<&SharedFile>,
) -> Result<(ObsHeader, Observation), WireError> {
    let obs: ObsHeader = parse(head)?;
    let o = &spaces.observation;
    let declared: usize = obs
        .blobs
        .iter()
        .filter(|b| b.shm_offset.is_none())
        .map(|b| b.bytes)
        .sum();
    if declared != head.blob_bytes {
        return malformed(format!(
            "the OBS header declares {declared} bytes of inline blobs; the frame carries {}",
            head.blob_bytes
        ));
    }
    for b in &obs.blobs {
        if let Some(offset) = b.shm_offset {
            let Some(shared) = shared else {
                return malformed(format!(
                    "blob {:?} is in shared memory, which this client did not take",
                    b.name
                ));
            };
            if offset.saturating_add(b.bytes as u64) > shared.size {
                return malformed(format!(
                    "blob {:?} at offset {offset} ({} bytes) overruns the {}-byte shared memory",
                    b.name, b.bytes, shared.size
                ));
            }
        }
    }
    for (i, b) in obs.blobs.iter().enumerate() {
        let (dtype, shape, size) = match b.name.as_str() {
            "rgb" => ("u8", vec![o.height, o.width, 3], 1),
            "depth" if o.depth => ("f32", vec![o.height, o.width], 4),
            "goal" if o.goal > 0 => ("f32", vec![o.goal], 4),
            other => return malformed(format!("unexpected blob {other:?} for the spaces {o:?}")),
        };
        if obs.blobs[..i].iter().any(|p| p.name == b.name) {
            return malformed(format!("blob {:?} appears twice", b.name));
        }
        if b.dtype != dtype || b.shape != shape || b.bytes != shape.iter().product::<usize>() * size
        {
            return malformed(format!(
                "blob {:?} is {} {:?} in {} bytes; the spaces declare {dtype} {shape:?}",
                b.name, b.dtype, b.shape, b.bytes
            ));
        }
    }
    let mut rgb = None;
    let mut depth = None;
    let mut goal = None;
    for b in &obs.blobs {
        let mut bytes = vec![0u8; b.bytes];
        match (b.shm_offset, shared) {
            (Some(offset), Some(shared)) => shared.file.read_exact_at(&mut bytes, offset)?,
            _ => r.read_exact(&mut bytes)?,
        }
        match b.name.as_str() {
            "rgb" => rgb = Some(bytes),
            "depth" => depth = Some(f32s(&bytes)),
            _ => goal = Some(f32s(&bytes)),
        }
    }
    let Some(data) = rgb else {
        return malformed("the OBS frame carries no rgb blob".into());
    };
    let observation = Observation {
        rgb: Frame {
            height: o.height,
            width: o.width,
            data,
        },
        depth,
        goal,
    };
    spaces
        .check_observation(&observation)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    Ok((obs, observation))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads and drops `n` bytes (the blobs of a message that carries none we use).
pub(crate) fn skip<R: Read>(r: &mut R, n: usize) -> Result<(), WireError> {
    io::copy(&mut r.take(n as u64), &mut io::sink())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, json: &[u8], blobs: &[u8]) -> Vec<u8> {
        let mut f = ((5 + json.len() + blobs.len()) as u32)
            .to_be_bytes()
            .to_vec();
        f.push(kind);
        f.extend_from_slice(&(json.len() as u32).to_be_bytes());
        f.extend_from_slice(json);
        f.extend_from_slice(blobs);
        f
    }

    fn malformed_message(bytes: &[u8]) -> String {
        match read_head(&mut &bytes[..]) {
            Err(WireError::Malformed(m)) => m,
            other => panic!("expected a malformed frame, got {other:?}"),
        }
    }

    #[test]
    fn a_message_reads_back_as_written() {
        let mut bytes = Vec::new();
        write_message(&mut bytes, Kind::Step, &serde_json::json!({"action": 2})).unwrap();
        let head = read_head(&mut &bytes[..]).unwrap();
        assert_eq!((head.kind, head.blob_bytes), (Kind::Step, 0));
        assert_eq!(parse::<serde_json::Value>(&head).unwrap()["action"], 2);
    }

    #[test]
    fn bad_lengths_and_headers_are_named_before_anything_is_read() {
        assert!(malformed_message(&[0, 0, 0, 4, 1, 0, 0, 0, 0]).contains("shorter than"));
        assert!(malformed_message(&[0x7f, 0, 0, 0]).contains("exceeds the cap"));
        let mut long_header = frame(2, b"{}", &[]);
        long_header[5..9].copy_from_slice(&99u32.to_be_bytes());
        assert!(malformed_message(&long_header).contains("does not fit"));
        assert!(malformed_message(&frame(0, b"{}", &[])).contains("unknown message type 0"));
        // A truncated frame is an I/O error (the stream ended), not a frame.
        let cut = frame(5, b"{}", &[1, 2, 3]);
        assert!(matches!(read_head(&mut &cut[..7]), Err(WireError::Io(_))));
    }

    #[test]
    fn observations_are_checked_against_the_spaces() {
        let spaces: Spaces = serde_json::from_str(
            r#"{"action": {"n": 1, "names": ["a"]}, "observation": {"height": 1, "width": 2, "depth": true, "goal": 0}}"#,
        )
        .unwrap();
        let header = br#"{"blobs": [{"name": "rgb", "dtype": "u8", "shape": [1, 2, 3], "bytes": 6},
                                      {"name": "depth", "dtype": "f32", "shape": [1, 2], "bytes": 8}]}"#;
        let mut blobs = vec![1, 2, 3, 4, 5, 6];
        blobs.extend_from_slice(&1.5f32.to_le_bytes());
        blobs.extend_from_slice(&(-2.0f32).to_le_bytes());
        let bytes = frame(5, header, &blobs);
        let mut r = &bytes[..];
        let head = read_head(&mut r).unwrap();
        let (_, obs) = read_observation(&mut r, &head, &spaces, None).unwrap();
        assert_eq!(obs.rgb.data, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(obs.depth, Some(vec![1.5, -2.0]));
        // Without the depth blob the space is not met.
        let header =
            br#"{"blobs": [{"name": "rgb", "dtype": "u8", "shape": [1, 2, 3], "bytes": 6}]}"#;
        let bytes = frame(5, header, &blobs[..6]);
        let mut r = &bytes[..];
        let head = read_head(&mut r).unwrap();
        match read_observation(&mut r, &head, &spaces, None) {
            Err(WireError::Malformed(m)) => assert!(m.contains("depth"), "{m}"),
            other => panic!("expected a malformed observation, got {other:?}"),
        }
    }
}
