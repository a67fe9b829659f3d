//! The live view as H.264: a console that says it decodes H.264 gets the
//! live device's screen as video from a real agent (headless desktop) over
//! real TLS WebSockets, decodable from its first picture, and JPEG frames
//! again when it stops saying so; full-size screenshots are taken, kept and
//! downloaded through the API.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Console =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A binary message from the console stream: (kind, device, rest).
async fn next_binary(ws: &mut Console) -> (u8, i64, Vec<u8>) {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("something within 20 s")
            .expect("the stream is open")
            .expect("a good message");
        if let Message::Binary(b) = m {
            let id = i64::from_be_bytes(b[1..9].try_into().unwrap());
            return (b[0], id, b[9..].to_vec());
        }
    }
}

/// The next live video picture of `device`: (width, height, keyframe, seq, H.264).
async fn next_video(ws: &mut Console, device: i64) -> (u16, u16, bool, u32, Vec<u8>) {
    for _ in 0..500 {
        let (kind, id, rest) = next_binary(ws).await;
        if kind != 4 || id != device {
            continue;
        }
        let w = u16::from_be_bytes([rest[0], rest[1]]);
        let h = u16::from_be_bytes([rest[2], rest[3]]);
        let (head, h264) = lectern_proto::VideoHeader::parse(&rest[4..]).unwrap();
        return (w, h, head.keyframe, head.seq, h264.to_vec());
    }
    panic!("no video picture of device {device}");
}

async fn send(ws: &mut Console, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h264_console_gets_decodable_video_and_others_jpeg() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "PC-VIDEO", Some("amy")).await;
    let mut ws = console_stream(&ts, &token).await;
    send(
        &mut ws,
        json!({"watch": [a.id()], "live": a.id(), "codecs": ["h264"]}),
    )
    .await;

    // The first picture this console gets is a keyframe; the next are
    // consecutive and decode at the screen's full width.
    let mut dec = openh264::decoder::Decoder::new().unwrap();
    let (w, h, key, seq, h264) = next_video(&mut ws, a.id()).await;
    assert!(key, "a new viewer starts at a keyframe");
    assert_eq!(w, 1920, "full size (the headless screen is 1920 wide)");
    let mut decoded = 0;
    let mut last = seq;
    if dec.decode(&h264).unwrap().is_some() {
        decoded += 1;
    }
    for _ in 0..5 {
        let (_, _, _, seq, h264) = next_video(&mut ws, a.id()).await;
        assert_eq!(seq, last.wrapping_add(1), "no gap on a fast console");
        last = seq;
        if let Some(yuv) = dec.decode(&h264).unwrap() {
            use openh264::formats::YUVSource;
            assert_eq!(yuv.dimensions(), (usize::from(w), usize::from(h)));
            decoded += 1;
        }
    }
    assert!(decoded >= 5, "pictures decode: {decoded}");

    // Without "h264", the same console gets the live view as JPEG frames.
    send(&mut ws, json!({"watch": [a.id()], "live": a.id()})).await;
    let mut jpeg = false;
    for _ in 0..200 {
        let (kind, id, rest) = next_binary(&mut ws).await;
        if kind == 1 && id == a.id() {
            let mut d = jpeg_decoder::Decoder::new(&rest[..]);
            d.read_info().unwrap();
            if d.info().unwrap().width == 1280 {
                jpeg = true;
                break;
            }
        }
    }
    assert!(jpeg, "live JPEG frames 1280 px wide");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_are_taken_kept_and_downloaded() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "PC-SHOT", Some("amy")).await;
    let path = format!("/api/v1/devices/{}/screenshots", a.id());
    // The agent is online once its policy is known (remote_view allow).
    let info = wait_for(|| async {
        let (status, v) = ts.post(&token, &path, json!({})).await;
        (status == 201).then_some(v)
    })
    .await;
    assert_eq!(info["device_id"], a.id());
    assert_eq!(info["width"], 2560, "full size, at most 2560 px wide");
    let list = ts.get(&token, &path).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], info["id"]);
    let r = ts
        .client()
        .get(ts.url(&format!("{path}/{}", info["id"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let jpeg = r.bytes().await.unwrap();
    let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
    d.read_info().unwrap();
    assert_eq!(d.info().unwrap().width, 2560);
    // Bad input: another device's id, an unknown screenshot.
    let (status, _) = ts
        .post(&token, "/api/v1/devices/9999/screenshots", json!({}))
        .await;
    assert_eq!(status, 404);
    let r = ts
        .client()
        .get(ts.url(&format!("{path}/999999")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// A teacher with `features` on the computers named LAB-*.
async fn lab_teacher(ts: &TestServer, admin: &str, name: &str, features: Value) -> String {
    let g = match ts
        .get(admin, "/api/v1/groups")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Lab")
    {
        Some(g) => g.clone(),
        None => {
            let (s, g) = ts
                .post(
                    admin,
                    "/api/v1/groups",
                    json!({"name": "Lab", "kind": "computer", "priority": "low",
                           "members": [{"type": "hostname", "value": "LAB-*"}]}),
                )
                .await;
            assert_eq!(s, 201, "{g}");
            g
        }
    };
    let password = format!("{name}-password");
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": name, "password": password, "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": name}, "features": features,
                   "group_access": {g["id"].to_string(): "view"}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, &password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_need_live_view_on_a_computer_the_teacher_sees() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let viewer = lab_teacher(&ts, &admin, "ms.view", json!(["devices.view"])).await;
    let live = lab_teacher(&ts, &admin, "ms.live", json!(["devices.view", "live_view"])).await;
    let enroll = ts.enrollment_token(&admin, 2).await;
    let lab = start_agent(&ts, &enroll, "LAB-1", Some("amy")).await;
    let office = start_agent(&ts, &enroll, "OFFICE-1", Some("bob")).await;
    let path = |id: i64| format!("/api/v1/devices/{id}/screenshots");
    // The live-view teacher takes one of their own computer once it is online.
    let shot = wait_for(|| async {
        let (status, v) = ts.post(&live, &path(lab.id()), json!({})).await;
        (status == 201).then_some(v)
    })
    .await;
    // Without the live_view right: refused, and nothing listed or read.
    let (status, v) = ts.post(&viewer, &path(lab.id()), json!({})).await;
    assert_eq!(status, 403, "{v}");
    let r = ts
        .client()
        .get(ts.url(&format!("{}/{}", path(lab.id()), shot["id"])))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A computer outside their groups does not exist for them.
    let (status, _) = ts.post(&live, &path(office.id()), json!({})).await;
    assert_eq!(status, 404);
    let office_shot = wait_for(|| async {
        let (status, v) = ts.post(&admin, &path(office.id()), json!({})).await;
        (status == 201).then_some(v)
    })
    .await;
    let r = ts
        .client()
        .get(ts.url(&format!("{}/{}", path(office.id()), office_shot["id"])))
        .bearer_auth(&live)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Nor can a screenshot of one device be read through another's path.
    let r = ts
        .client()
        .get(ts.url(&format!("{}/{}", path(lab.id()), office_shot["id"])))
        .bearer_auth(&live)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let mine = ts.get(&live, &path(lab.id())).await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    // Taking one is audited.
    let audit = ts.get(&admin, "/api/v1/audit?limit=100").await;
    let entries = audit["entries"]
        .as_array()
        .or(audit.as_array())
        .unwrap()
        .clone();
    assert!(entries
        .iter()
        .any(|e| e["actor"] == "ms.live" && e["action"] == "screenshot"));
}
