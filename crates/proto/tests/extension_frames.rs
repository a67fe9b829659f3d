//! One example of every frame the server sends that the browser extension
//! must understand, as lectern-proto writes it, kept in
//! `extension/test/fixtures/server-frames.json`; the extension's
//! `protocol.test.mjs` parses each one. A frame type the extension's parser
//! did not know was dropped with a warning: the Chromebook lock page never
//! got the school's look that way.
//!
//! [`for_extension`] matches every [`ServerMsg`] without a wildcard, so a new
//! frame type does not compile until someone decides whether the extension
//! gets it (and, if so, adds its example here).

use lectern_proto::aup::AcceptableUse;
use lectern_proto::requests::ChatLine;
use lectern_proto::{
    Command, Credential, ErrorCode, EvidenceAllowance, Policy, RefusedFrame, ServerMsg,
};

/// Whether the server sends `m` to a device running only the extension
/// (Chromebook mode). Frames for capabilities the extension never announces
/// (video, remote control, files, Wake-on-LAN) are not.
fn for_extension(m: &ServerMsg) -> bool {
    match m {
        ServerMsg::Welcome { .. }
        | ServerMsg::Command { .. }
        | ServerMsg::StartThumbnails { .. }
        | ServerMsg::StopThumbnails
        | ServerMsg::Policy { .. }
        | ServerMsg::BroadcastStart { .. }
        | ServerMsg::BroadcastStop
        | ServerMsg::ViewRequest { .. }
        | ServerMsg::Keywords { .. }
        | ServerMsg::EvidenceRequest { .. }
        | ServerMsg::ActivityAck { .. }
        | ServerMsg::InventoryRequest
        | ServerMsg::Refused { .. }
        | ServerMsg::Error { .. }
        | ServerMsg::HandClosed { .. }
        | ServerMsg::HandRaised
        | ServerMsg::Chat { .. }
        | ServerMsg::ChatHistory { .. }
        | ServerMsg::SchoolLook { .. }
        | ServerMsg::SchoolLogo { .. }
        | ServerMsg::AcceptableUse { .. }
        | ServerMsg::AcceptableUseClear
        | ServerMsg::StudentSignIn(_) => true,
        ServerMsg::StartVideo { .. }
        | ServerMsg::StopVideo
        | ServerMsg::Screenshot { .. }
        | ServerMsg::ControlStart { .. }
        | ServerMsg::ControlInput { .. }
        | ServerMsg::ControlStop
        | ServerMsg::WakeOnLan { .. }
        | ServerMsg::FileOffer(_)
        | ServerMsg::FileData { .. }
        | ServerMsg::CollectStart(_)
        | ServerMsg::CollectAck { .. }
        | ServerMsg::FileCancel { .. } => false,
    }
}

fn line(from_teacher: bool, author: &str, text: &str) -> ChatLine {
    ChatLine {
        id: 7,
        from_teacher,
        author: author.into(),
        text: text.into(),
        at: 1_764_000_000_000,
    }
}

/// One example of each frame the extension gets, in the order of
/// [`ServerMsg`].
fn examples() -> Vec<ServerMsg> {
    let sha = "a".repeat(64);
    vec![
        ServerMsg::Welcome {
            device_id: 2,
            school: "Ysgol Gŵyr".into(),
            credential: Some(Credential {
                device_id: 2,
                secret: "s3cret".into(),
            }),
            heartbeat_secs: 20,
            evidence: Some(EvidenceAllowance {
                max_frames: 3,
                max_frame_bytes: 200_000,
            }),
        },
        ServerMsg::Command {
            command_id: 9,
            command: Command::Lock {
                text: Some("Eyes to the front 👀".into()),
                minutes: Some(5),
            },
        },
        ServerMsg::StartThumbnails {
            width: 320,
            interval_ms: 1000,
            privacy_bypass: false,
        },
        ServerMsg::StopThumbnails,
        ServerMsg::Policy {
            policy: Policy::default(),
        },
        ServerMsg::BroadcastStart {
            title: "Ms Jones".into(),
        },
        ServerMsg::BroadcastStop,
        ServerMsg::ViewRequest {
            request_id: 4,
            teacher: "Ms Jones".into(),
            timeout_secs: 30,
        },
        ServerMsg::Keywords {
            library: serde_json::json!({ "version": 1, "terms": [] }),
        },
        ServerMsg::EvidenceRequest {
            violation_id: 11,
            allowance: None,
        },
        ServerMsg::ActivityAck { up_to: 12 },
        ServerMsg::InventoryRequest,
        ServerMsg::Refused {
            code: ErrorCode::RateLimited,
            frame: RefusedFrame::Activity { first_seq: Some(3) },
            retry_after_ms: 500,
            message: "slow down".into(),
        },
        ServerMsg::Error {
            code: ErrorCode::NotAllowed,
            message: "no".into(),
        },
        ServerMsg::HandClosed {
            answer: Some("Coming".into()),
        },
        ServerMsg::HandRaised,
        ServerMsg::Chat {
            line: line(true, "Ms Jones", "Well done"),
        },
        ServerMsg::ChatHistory {
            lines: vec![line(false, "ada", "Help"), line(true, "Ms Jones", "Coming")],
        },
        ServerMsg::SchoolLook {
            name: "Ysgol Gŵyr — 東京".into(),
            logo_sha256: Some(sha.clone()),
        },
        ServerMsg::SchoolLogo {
            sha256: sha,
            png: "iVBORw0KGgo=".into(),
        },
        ServerMsg::AcceptableUse {
            policy: AcceptableUse {
                version_id: 3,
                version: 2,
                title: "Acceptable use".into(),
                text: "Be kind.\n\nAsk first.".into(),
                published_at: 1_764_000_000_000,
            },
        },
        ServerMsg::AcceptableUseClear,
        ServerMsg::StudentSignIn(lectern_proto::signin::SignInOutcome::SignedIn {
            name: "amy.ng".into(),
            display_name: "Amy Ng".into(),
        }),
    ]
}

/// The type tag of a frame as written.
fn tag(m: &ServerMsg) -> String {
    serde_json::to_value(m).unwrap()["type"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn every_extension_frame_has_one_example() {
    let frames = examples();
    assert!(frames.iter().all(for_extension));
    let mut tags: Vec<String> = frames.iter().map(tag).collect();
    let n = tags.len();
    tags.sort();
    tags.dedup();
    assert_eq!(tags.len(), n, "one example per frame type");
    // Each variant for the extension appears: counted from for_extension's
    // list (23 types), so leaving one out of examples() fails here.
    assert_eq!(n, 23, "examples() lacks a frame type for_extension lists");
}

#[test]
fn the_extension_fixture_is_what_lectern_proto_writes() {
    let frames: Vec<serde_json::Value> = examples()
        .iter()
        .map(|m| serde_json::to_value(m).unwrap())
        .collect();
    check_fixture(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../extension/test/fixtures/server-frames.json"
        ),
        &frames,
    );
}

/// Fails unless the committed fixture at `path` is `value` as pretty JSON
/// (rewrites it with `LECTERN_UPDATE_FIXTURES` set).
fn check_fixture(path: &str, value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var_os("LECTERN_UPDATE_FIXTURES").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "{path} is stale: run LECTERN_UPDATE_FIXTURES=1 cargo test -p lectern-proto --test extension_frames"
    );
}

/// The picture grid of student sign-in, as the extension's sign-in page
/// must show it (`extension/signin-core.js`, checked against this file by
/// `extension/test/signin.test.mjs`): a picture password made in the
/// console must be the same pictures on the Chromebook.
#[test]
fn the_extension_pictures_fixture_is_lectern_protos_grid() {
    let grid: Vec<[&str; 2]> = lectern_proto::signin::PICTURES
        .iter()
        .map(|(picture, name)| [*picture, *name])
        .collect();
    check_fixture(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../extension/test/fixtures/pictures.json"
        ),
        &grid,
    );
}
