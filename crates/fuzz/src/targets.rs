//! The fuzz targets: one function of raw bytes per parser, panicking when a
//! property fails.

use std::io::ErrorKind;

use arbitrary::Unstructured;
use lectern_agent::ipc::{ExtMsg, MAX_EXTENSION_MESSAGE};
use lectern_agent::native_host::{read_message, write_message};
use lectern_proto::console::{upload, upload_frame, Watch, MAX_CODECS, MAX_WATCH};
use lectern_proto::{
    AgentMsg, Evidence, MediaFrame, MediaKind, ProtoError, Screenshot, ServerMsg, VideoHeader,
    MAX_BINARY_FRAME, MAX_SERVER_TEXT_FRAME, MAX_TEXT_FRAME,
};

/// What a parser made of an input; accepted inputs seed further mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The parser accepted it.
    Accepted,
    /// The parser refused it (with an error, as it must).
    Refused,
}

/// One fuzz target.
pub struct Target {
    /// Name: the corpus and regression folder, and the runner's argument.
    pub name: &'static str,
    /// What is fuzzed.
    pub about: &'static str,
    /// Runs the parser on an input, panicking when a property fails.
    pub run: fn(&[u8]) -> Outcome,
    /// Most heap bytes one call may hold for an input of this length: the
    /// parser's own limit plus a generous multiple of the input (parsed
    /// values take more room than their JSON).
    pub heap_budget: fn(usize) -> usize,
    /// Longest input the mutator makes (inputs over the parser's limit are
    /// probed separately, see [`Target::over_limit`]).
    pub max_len: usize,
    /// An input length just over the size limit the parser itself enforces
    /// (0 when the limit is elsewhere, e.g. in a length prefix).
    pub over_limit: usize,
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "agent_msg",
        about: "AgentMsg::decode: JSON control frames from an agent (limit MAX_TEXT_FRAME)",
        run: agent_msg,
        heap_budget: |n| 64 * n + 64 * 1024,
        max_len: 8 * 1024,
        over_limit: MAX_TEXT_FRAME + 1,
    },
    Target {
        name: "server_msg",
        about: "ServerMsg::decode: JSON control frames from the server (limit MAX_SERVER_TEXT_FRAME)",
        run: server_msg,
        heap_budget: |n| 64 * n + 64 * 1024,
        max_len: 8 * 1024,
        over_limit: MAX_SERVER_TEXT_FRAME + 1,
    },
    Target {
        name: "media_frame",
        about: "MediaFrame::decode and Evidence::parse: binary media frame headers (limit MAX_BINARY_FRAME)",
        run: media_frame,
        heap_budget: |n| 4 * n + 64 * 1024,
        max_len: 4 * 1024,
        over_limit: MAX_BINARY_FRAME + 1,
    },
    Target {
        name: "console_watch",
        about: "console stream text: the Watch message (the socket caps messages at 64 KiB)",
        run: console_watch,
        heap_budget: |n| 64 * n + 64 * 1024,
        max_len: 8 * 1024,
        over_limit: 0,
    },
    Target {
        name: "console_upload",
        about: "console stream binary: broadcast uploads [2][u64 id][JPEG]",
        run: console_upload,
        heap_budget: |n| 4 * n + 64 * 1024,
        max_len: 4 * 1024,
        over_limit: 0,
    },
    Target {
        name: "console_control",
        about: "console stream text: parse_console_text, remote-control requests and their input events (the socket caps messages at 64 KiB)",
        run: console_control,
        heap_budget: |n| 64 * n + 64 * 1024,
        max_len: 8 * 1024,
        over_limit: 0,
    },
    Target {
        name: "native_host",
        about: "native-messaging host: Chrome framing (LE u32 length + JSON ExtMsg, limit MAX_EXTENSION_MESSAGE), direction of each message",
        run: native_host,
        heap_budget: |n| MAX_EXTENSION_MESSAGE + 64 * n + 64 * 1024,
        max_len: 8 * 1024,
        over_limit: 0,
    },
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// A WebSocket text frame is UTF-8 by the time a parser sees it.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Shared by both directions of control frames: the limit is enforced, and a
/// decoded message survives encode + decode unchanged (when its encoding fits
/// the limit too: defaults filled in can make it longer than its input).
fn control_frame<M: PartialEq + serde::Serialize>(
    data: &[u8],
    limit: usize,
    decode: fn(&str) -> Result<M, ProtoError>,
    encode: fn(&M) -> String,
) -> Outcome {
    let text = text(data);
    match decode(&text) {
        Ok(msg) => {
            assert!(
                text.len() <= limit,
                "accepted {} bytes over the limit",
                text.len()
            );
            let again = encode(&msg);
            if again.len() <= limit {
                let back = decode(&again).expect("an encoded message decodes");
                if back != msg {
                    // Opaque JSON (the keyword library) may hold floats, which
                    // serde_json parses to within an ulp unless its
                    // `float_roundtrip` feature is on: equal up to that.
                    let (a, b) = (to_value(&back), to_value(&msg));
                    assert!(same_json(&a, &b), "decode(encode(x)) != x:\n{a}\n{b}");
                }
            }
            Outcome::Accepted
        }
        Err(ProtoError::TooLarge { len, max }) => {
            assert!(len > max && max == limit && len == text.len());
            Outcome::Refused
        }
        Err(_) => {
            assert!(
                text.len() <= limit,
                "an oversized frame must be refused as TooLarge"
            );
            Outcome::Refused
        }
    }
}

fn to_value(m: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(m).expect("messages serialize")
}

/// JSON equality with floats equal within a few ulps.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::{Array, Number, Object};
    match (a, b) {
        (Number(x), Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y)),
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn agent_msg(data: &[u8]) -> Outcome {
    control_frame(data, MAX_TEXT_FRAME, AgentMsg::decode, AgentMsg::encode)
}

fn server_msg(data: &[u8]) -> Outcome {
    control_frame(
        data,
        MAX_SERVER_TEXT_FRAME,
        ServerMsg::decode,
        ServerMsg::encode,
    )
}

fn media_frame(data: &[u8]) -> Outcome {
    // The bytes as received.
    let outcome = match MediaFrame::decode(data) {
        Ok(f) => {
            assert!(data.len() <= MAX_BINARY_FRAME && !f.payload.is_empty());
            assert_eq!(f.encode(), data, "a decoded frame re-encodes to its bytes");
            if f.kind == MediaKind::Evidence {
                if let Ok((e, jpeg)) = Evidence::parse(f.payload) {
                    assert!(e.index < e.total && !jpeg.is_empty());
                    assert_eq!(e.payload(jpeg), f.payload);
                }
            }
            if f.kind == MediaKind::Video {
                if let Ok((h, h264)) = VideoHeader::parse(f.payload) {
                    assert!(h264.starts_with(&[0, 0, 1]) || h264.starts_with(&[0, 0, 0, 1]));
                    assert_eq!(h.payload(h264), f.payload);
                }
            }
            if f.kind == MediaKind::Screenshot {
                if let Ok((s, jpeg)) = Screenshot::parse(f.payload) {
                    assert!(jpeg.starts_with(&[0xFF, 0xD8]));
                    assert_eq!(s.payload(jpeg), f.payload);
                }
            }
            Outcome::Accepted
        }
        Err(ProtoError::TooLarge { .. }) => {
            assert!(data.len() > MAX_BINARY_FRAME);
            Outcome::Refused
        }
        Err(_) => Outcome::Refused,
    };
    // The same bytes read as a frame to encode: decode(encode(x)) == x.
    let mut u = Unstructured::new(data);
    let kinds = [
        MediaKind::Thumbnail,
        MediaKind::Broadcast,
        MediaKind::Evidence,
        MediaKind::Video,
        MediaKind::Screenshot,
    ];
    if let (Ok(kind), Ok(width), Ok(height)) = (u.choose(&kinds), u.arbitrary(), u.arbitrary()) {
        let payload = u.take_rest();
        let f = MediaFrame {
            kind: *kind,
            width,
            height,
            payload,
        };
        let bytes = f.encode();
        match MediaFrame::decode(&bytes) {
            Ok(back) => assert_eq!(back, f),
            Err(_) => assert!(payload.is_empty() || bytes.len() > MAX_BINARY_FRAME),
        }
        let mut u = Unstructured::new(data);
        if let (Ok(violation_id), Ok(index), Ok(total)) =
            (u.arbitrary(), u.arbitrary(), u.arbitrary())
        {
            let e = Evidence {
                violation_id,
                index,
                total,
            };
            let jpeg = u.take_rest();
            let payload = e.payload(jpeg);
            match Evidence::parse(&payload) {
                Ok(back) => assert_eq!(back, (e, jpeg)),
                Err(_) => assert!(jpeg.is_empty() || index >= total),
            }
        }
    }
    outcome
}

fn console_watch(data: &[u8]) -> Outcome {
    // What the stream loop does with a text message.
    match serde_json::from_str::<Watch>(&text(data)) {
        Ok(w) => {
            let acted_on = w.check().is_ok();
            assert_eq!(
                acted_on,
                w.watch.len() <= MAX_WATCH
                    && w.live.is_none_or(|d| w.watch.contains(&d))
                    && w.codecs.len() <= MAX_CODECS.0
                    && w.codecs.iter().all(|c| c.len() <= MAX_CODECS.1)
            );
            let again = serde_json::to_string(&w).expect("a watch message serializes");
            assert_eq!(
                serde_json::from_str::<Watch>(&again).ok().as_ref(),
                Some(&w)
            );
            Outcome::Accepted
        }
        Err(_) => Outcome::Refused,
    }
}

fn console_control(data: &[u8]) -> Outcome {
    use lectern_proto::control::{
        parse_console_text, reserved, ConsoleText, ControlRequest, InputEvent, MAX_INPUT_EVENTS,
        MAX_WHEEL,
    };
    match parse_console_text(&text(data)) {
        Ok(ConsoleText::Watch(w)) => {
            assert!(w.check().is_ok(), "a parsed watch message passed its check");
            Outcome::Accepted
        }
        Ok(ConsoleText::Control(r)) => {
            if let ControlRequest::Input { events, .. } = &r {
                assert!(events.len() <= MAX_INPUT_EVENTS);
                for e in events {
                    // What the server sends on is exactly what passes.
                    let ok = match e {
                        InputEvent::Key { mods, .. } => {
                            e.evdev().is_some_and(|c| reserved(c, *mods).is_none())
                        }
                        InputEvent::Wheel { dx, dy } => {
                            dx.unsigned_abs() <= MAX_WHEEL as u8
                                && dy.unsigned_abs() <= MAX_WHEEL as u8
                        }
                        _ => true,
                    };
                    assert_eq!(e.check().is_ok(), ok, "{e:?}");
                }
            }
            let again = serde_json::to_string(&r).expect("a request serializes");
            assert_eq!(
                serde_json::from_str::<ControlRequest>(&again).ok().as_ref(),
                Some(&r)
            );
            Outcome::Accepted
        }
        Err(_) => Outcome::Refused,
    }
}

fn console_upload(data: &[u8]) -> Outcome {
    let outcome = match upload(data) {
        Some((id, jpeg)) => {
            assert!(jpeg.len() >= 3 && jpeg.starts_with(&[0xFF, 0xD8]));
            assert_eq!(upload_frame(id, jpeg), data);
            Outcome::Accepted
        }
        None => Outcome::Refused,
    };
    let mut u = Unstructured::new(data);
    if let Ok(id) = u.arbitrary::<u64>() {
        let jpeg = u.take_rest();
        let ok = jpeg.len() >= 3 && jpeg.starts_with(&[0xFF, 0xD8]);
        assert_eq!(upload(&upload_frame(id, jpeg)), ok.then_some((id, jpeg)));
    }
    outcome
}

/// Whether the agent may send this message to the extension: the host relays
/// each message in exactly one direction.
fn agent_sends(msg: &ExtMsg) -> bool {
    matches!(
        msg,
        ExtMsg::Policy { .. } | ExtMsg::CloseTab { .. } | ExtMsg::GetTabs | ExtMsg::OpenUrl { .. }
    )
}

fn native_host(data: &[u8]) -> Outcome {
    // The browser's side of stdin: frames until the end or the first error
    // (an oversized length or a short frame ends the relay).
    let mut input = data;
    let mut outcome = Outcome::Refused;
    for _ in 0..1000 {
        match read_message(&mut input) {
            Ok(Some(msg)) => {
                outcome = Outcome::Accepted;
                assert_ne!(
                    msg.from_extension(),
                    agent_sends(&msg),
                    "one direction: {msg:?}"
                );
                let mut framed = Vec::new();
                if write_message(&mut framed, &msg).is_err() {
                    // Only when defaults filled in push it over the limit.
                    let json = serde_json::to_vec(&msg).expect("messages serialize");
                    assert!(json.len() > MAX_EXTENSION_MESSAGE);
                    continue;
                }
                let len = u32::from_le_bytes(framed[..4].try_into().unwrap()) as usize;
                assert_eq!(len, framed.len() - 4);
                assert!(len <= MAX_EXTENSION_MESSAGE);
                assert_eq!(read_message(&mut &framed[..]).unwrap(), Some(msg));
            }
            Ok(None) => break,
            Err(e) => {
                assert!(matches!(
                    e.kind(),
                    ErrorKind::InvalidData | ErrorKind::UnexpectedEof
                ));
                break;
            }
        }
    }
    outcome
}
