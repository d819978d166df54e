//! The few protocol buffers TensorBoard reads from an event file, encoded by hand: `Event`
//! (wall_time = 1, step = 2, file_version = 3, summary = 5, session_log = 7), `Summary`
//! (value = 1), `Summary.Value` (tag = 1, simple_value = 2, image = 4), `Summary.Image`
//! (height = 1, width = 2, colorspace = 3, encoded_image_string = 4) and `SessionLog`
//! (status = 1), as tensorboard/compat/proto/{event,summary}.proto define them.

/// What one event carries besides its time and step.
pub enum Payload<'a> {
    /// The first event of a file: `file_version`, "brain.Event:2" (readers then honour
    /// `SessionLog` restarts).
    FileVersion,
    /// A `SessionLog` START: a session (re)starts here, so TensorBoard discards the events
    /// it holds from this step on.
    SessionStart,
    /// A `Summary` of scalars, one `simple_value` per tag.
    Scalars(&'a [(String, f32)]),
    /// A `Summary` of one encoded image.
    Image(&'a Image<'a>),
}

/// An image as `Summary.Image` holds it.
pub struct Image<'a> {
    /// The summary's tag.
    pub tag: &'a str,
    /// Pixel rows.
    pub height: u32,
    /// Pixel columns.
    pub width: u32,
    /// Channels: 1 grey, 3 RGB, 4 RGBA.
    pub colorspace: u32,
    /// The encoded file (PNG).
    pub encoded: &'a [u8],
}

/// The encoded `Event` at `wall_time` (seconds since the epoch) and `step`.
pub fn event(wall_time: f64, step: i64, payload: &Payload) -> Vec<u8> {
    let mut out = Vec::new();
    key(&mut out, 1, FIXED64);
    out.extend_from_slice(&wall_time.to_le_bytes());
    key(&mut out, 2, VARINT);
    varint(&mut out, step as u64);
    match payload {
        Payload::FileVersion => bytes(&mut out, 3, b"brain.Event:2"),
        Payload::SessionStart => {
            let mut log = Vec::new();
            key(&mut log, 1, VARINT);
            varint(&mut log, 1); // SessionLog.SessionStatus.START
            bytes(&mut out, 7, &log);
        }
        Payload::Scalars(values) => {
            let mut summary = Vec::new();
            for (tag, v) in values.iter() {
                let mut value = Vec::new();
                bytes(&mut value, 1, tag.as_bytes());
                key(&mut value, 2, FIXED32);
                value.extend_from_slice(&v.to_le_bytes());
                bytes(&mut summary, 1, &value);
            }
            bytes(&mut out, 5, &summary);
        }
        Payload::Image(im) => {
            let mut image = Vec::new();
            for (field, v) in [(1, im.height), (2, im.width), (3, im.colorspace)] {
                key(&mut image, field, VARINT);
                varint(&mut image, u64::from(v));
            }
            bytes(&mut image, 4, im.encoded);
            let mut value = Vec::new();
            bytes(&mut value, 1, im.tag.as_bytes());
            bytes(&mut value, 4, &image);
            let mut summary = Vec::new();
            bytes(&mut summary, 1, &value);
            bytes(&mut out, 5, &summary);
        }
    }
    out
}

/// Wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, LENGTH_DELIMITED);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_the_bytes_tensorboards_event_pb2_serialises() {
        // Event { wall_time: 1.5, step: 300, summary { value { tag: "loss" simple_value: 0.25 } } }
        // as tensorboard's `event_pb2` serialises it.
        let e = event(1.5, 300, &Payload::Scalars(&[("loss".into(), 0.25)]));
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0xac, 0x02, 0x2a, 0x0d, 0x0a, 0x0b, 0x0a, 0x04]);
        want.extend_from_slice(b"loss");
        want.push(0x15);
        want.extend_from_slice(&0.25f32.to_le_bytes());
        assert_eq!(e, want);
        // Event { wall_time: 2.0, step: 7, session_log { status: START } }
        let e = event(2.0, 7, &Payload::SessionStart);
        let mut want = vec![0x09];
        want.extend_from_slice(&2.0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x07, 0x3a, 0x02, 0x08, 0x01]);
        assert_eq!(e, want);
    }
}
