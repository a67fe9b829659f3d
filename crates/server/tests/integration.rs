//! End-to-end tests: a real server and real agents over real TLS WebSockets on
//! loopback, with a real SQLite file.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use lectern_agent::{ConnStatus, Desktop};
use lectern_proto::{AgentMsg, Auth, DeviceInfo, ErrorCode, Hello, ServerMsg, PROTOCOL_VERSION};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

fn status_of(rec: &Value, device: i64) -> (String, Option<String>) {
    let t = rec["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["device_id"] == device)
        .unwrap();
    (
        t["status"].as_str().unwrap().to_string(),
        t["reason"].as_str().map(str::to_string),
    )
}

async fn device(ts: &TestServer, token: &str, id: i64) -> Value {
    ts.get(token, &format!("/api/v1/devices/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_and_every_command_is_acknowledged() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 3).await;
    let amy = start_agent(&ts, &enroll, "LAB1-PC01", Some("amy")).await;
    let nobody = start_agent(&ts, &enroll, "LAB1-PC02", None).await;
    let offline = start_agent(&ts, &enroll, "LAB1-PC03", Some("cat")).await;
    let offline_id = offline.id();
    offline.stop().await;
    wait_for(|| async {
        (!device(&ts, &token, offline_id).await["online"]
            .as_bool()
            .unwrap())
        .then_some(())
    })
    .await;

    let devices = ts.get(&token, "/api/v1/devices").await;
    assert_eq!(devices.as_array().unwrap().len(), 3);
    let d = device(&ts, &token, amy.id()).await;
    assert_eq!(d["hostname"], "LAB1-PC01");
    assert_eq!(d["online"], true);
    assert_eq!(d["state"]["user"], "amy");
    assert_eq!(d["os"], std::env::consts::OS);

    let all = [amy.id(), nobody.id(), offline_id];
    let rec = ts
        .command(&token, &all, json!({"type": "lock", "text": "Eyes front"}))
        .await;
    assert_eq!(status_of(&rec, amy.id()).0, "done");
    assert_eq!(status_of(&rec, nobody.id()).0, "done");
    assert_eq!(status_of(&rec, offline_id).0, "offline");
    assert_eq!(device(&ts, &token, amy.id()).await["state"]["locked"], true);
    assert!(
        amy.desktop.lock().unwrap().state().locked,
        "the agent's desktop is locked"
    );

    let rec = ts
        .command(&token, &all[..2], json!({"type": "unlock"}))
        .await;
    assert_eq!(rec["summary"]["done"], 2);
    assert_eq!(
        device(&ts, &token, amy.id()).await["state"]["locked"],
        false
    );

    let rec = ts
        .command(
            &token,
            &all[..2],
            json!({"type": "message", "text": "Hand in your essays"}),
        )
        .await;
    assert_eq!(rec["summary"]["done"], 2);
    assert_eq!(
        amy.desktop.lock().unwrap().message(),
        Some("Hand in your essays")
    );
    assert_eq!(
        device(&ts, &token, amy.id()).await["state"]["message_shown"],
        true
    );

    let rec = ts
        .command(
            &token,
            &all[..2],
            json!({"type": "launch_url", "url": "https://example.org/maths"}),
        )
        .await;
    assert_eq!(status_of(&rec, amy.id()).0, "done");
    let (st, reason) = status_of(&rec, nobody.id());
    assert_eq!(st, "failed");
    assert!(reason.unwrap().contains("no user is logged in"));
    assert_eq!(
        device(&ts, &token, amy.id()).await["state"]["url"],
        "https://example.org/maths"
    );

    let rec = ts
        .command(&token, &all[..2], json!({"type": "block_internet"}))
        .await;
    assert_eq!(rec["summary"]["done"], 2);
    assert_eq!(
        device(&ts, &token, nobody.id()).await["state"]["internet_blocked"],
        true
    );
    let rec = ts
        .command(&token, &all[..2], json!({"type": "unblock_internet"}))
        .await;
    assert_eq!(rec["summary"]["done"], 2);
    assert_eq!(
        device(&ts, &token, nobody.id()).await["state"]["internet_blocked"],
        false
    );

    let rec = ts
        .command(&token, &all[..2], json!({"type": "logout"}))
        .await;
    assert_eq!(status_of(&rec, amy.id()).0, "done");
    assert_eq!(status_of(&rec, nobody.id()).0, "failed");
    assert_eq!(
        device(&ts, &token, amy.id()).await["state"]["user"],
        Value::Null
    );

    // Every command is in the audit log with who, what, which devices and outcome.
    let audit = ts.get(&token, "/api/v1/audit?limit=100").await;
    let lock = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "command.lock")
        .unwrap();
    assert_eq!(lock["actor"], "admin");
    assert_eq!(lock["address"], "127.0.0.1");
    assert_eq!(lock["devices"].as_array().unwrap().len(), 3);
    assert!(
        lock["outcome"].as_str().unwrap().contains("offline 1"),
        "{lock}"
    );
    assert!(lock["detail"].as_str().unwrap().contains("Eyes front"));
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "login" && e["outcome"] == "ok"));
    amy.stop().await;
    nobody.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_commands_are_refused_and_audited() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let a = start_agent(&ts, &enroll, "PC", Some("amy")).await;
    for (body, want) in [
        (
            json!({"devices": [a.id()], "command": {"type": "launch_url", "url": "javascript:alert(1)"}}),
            400,
        ),
        (
            json!({"devices": [a.id()], "command": {"type": "launch_url", "url": "file:///etc/shadow"}}),
            400,
        ),
        (
            json!({"devices": [a.id()], "command": {"type": "message", "text": ""}}),
            400,
        ),
        (json!({"devices": [], "command": {"type": "lock"}}), 400),
        (
            json!({"devices": [999_999], "command": {"type": "lock"}}),
            400,
        ),
        (
            json!({"devices": [a.id()], "command": {"type": "format_disk"}}),
            422,
        ),
        (
            json!({"devices": [a.id()], "command": {"type": "lock"}, "extra": 1}),
            422,
        ),
    ] {
        let (s, v) = ts.post(&token, "/api/v1/commands", body.clone()).await;
        assert_eq!(s, want, "{body} -> {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "clear error for {body}: {v}"
        );
    }
    let r = ts
        .client()
        .post(ts.url("/api/v1/commands"))
        .bearer_auth(&token)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(!a.desktop.lock().unwrap().state().locked);
    let audit = ts.get(&token, "/api/v1/audit").await;
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "command.launch_url"
            && e["outcome"].as_str().unwrap().starts_with("refused")));
    a.stop().await;
}

/// Share of pixels within 25 of the lock screen's colour.
fn lock_share(jpeg: &[u8]) -> f32 {
    let mut dec = jpeg_decoder::Decoder::new(jpeg);
    let px = dec.decode().unwrap();
    let lock = [24i32, 28, 64];
    let near = px
        .chunks(3)
        .filter(|p| p.iter().zip(lock).all(|(a, b)| (*a as i32 - b).abs() < 25))
        .count();
    near as f32 / (px.len() / 3) as f32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_flow_only_while_watched_and_show_the_lock() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let a = start_agent(&ts, &enroll, "PC-A", Some("amy")).await;
    let b = start_agent(&ts, &enroll, "PC-B", Some("ben")).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        ts.metric("lectern_thumbnails_received_total").await,
        0,
        "no frames while nobody watches"
    );

    let mut ws = console_stream(&ts, &token).await;
    ws.send(Message::text(json!({"watch": [a.id()]}).to_string()))
        .await
        .unwrap();
    let first = next_thumb(&mut ws).await;
    assert_eq!(first.0, a.id(), "only the watched device streams");
    let (w, h) = jpeg_size(&first.1);
    assert_eq!((w, h), (320, 180), "default thumbnail size");
    assert!(lock_share(&first.1) < 0.05);

    ts.command(&token, &[a.id()], json!({"type": "lock"})).await;
    let mut locked_seen = false;
    for _ in 0..10 {
        let (id, jpeg) = next_thumb(&mut ws).await;
        assert_eq!(id, a.id());
        if lock_share(&jpeg) > 0.6 {
            locked_seen = true;
            break;
        }
    }
    assert!(locked_seen, "the lock screen appears in the thumbnail");

    ws.close(None).await.unwrap();
    drop(ws);
    wait_for(|| async { (ts.server().state.hub.console_count() == 0).then_some(()) }).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // let a frame already in flight land
    let after_close = ts.metric("lectern_thumbnails_received_total").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        ts.metric("lectern_thumbnails_received_total").await,
        after_close,
        "streaming stops with the last watcher"
    );
    a.stop().await;
    b.stop().await;
}

fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
    let mut dec = jpeg_decoder::Decoder::new(jpeg);
    dec.read_info().unwrap();
    let i = dec.info().unwrap();
    (i.width, i.height)
}

async fn next_thumb<S>(ws: &mut S) -> (i64, Vec<u8>)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Message::Binary(b) = ws.next().await.unwrap().unwrap() {
                assert_eq!(b[0], 1);
                return (
                    i64::from_be_bytes(b[1..9].try_into().unwrap()),
                    b[9..].to_vec(),
                );
            }
        }
    })
    .await
    .expect("a thumbnail within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_reconnects_after_server_restart() {
    let mut ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let mut a = start_agent(&ts, &enroll, "PC", Some("amy")).await;
    ts.restart().await;
    a.wait_status(|s| *s != ConnStatus::Connected).await;
    a.wait_status(|s| *s == ConnStatus::Connected).await;
    let token = ts.login().await; // sessions survive in the database, but log in afresh anyway
    wait_for(|| async { (device(&ts, &token, a.id()).await["online"] == true).then_some(()) })
        .await;
    let rec = ts.command(&token, &[a.id()], json!({"type": "lock"})).await;
    assert_eq!(rec["summary"]["done"], 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_refuses_missing_sessions_bad_passwords_and_forged_writes() {
    let ts = TestServer::start().await;
    let c = ts.client();
    assert_eq!(
        c.get(ts.url("/api/v1/devices"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.get(ts.url("/api/v1/devices"))
            .bearer_auth("forged")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let bad = c
        .post(ts.url("/api/v1/session"))
        .json(&json!({"username": "admin", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert!(bad.headers().get("set-cookie").is_none());

    // The console's cookie works for reads; writes need the CSRF token.
    let login = c
        .post(ts.url("/api/v1/session"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let body: Value = login.json().await.unwrap();
    let csrf = body["csrf_token"].as_str().unwrap();
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = c
        .get(ts.url("/api/v1/devices"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let write = |csrf: Option<&str>| {
        let mut rq = c
            .post(ts.url("/api/v1/enrollment-tokens"))
            .header("cookie", &pair)
            .json(&json!({}));
        if let Some(t) = csrf {
            rq = rq.header("x-csrf-token", t);
        }
        rq.send()
    };
    assert_eq!(write(None).await.unwrap().status(), 403);
    assert_eq!(write(Some("guess")).await.unwrap().status(), 403);
    assert_eq!(write(Some(csrf)).await.unwrap().status(), 201);

    // Pages: the console redirects to login without a session and renders with one.
    let no_redirect = reqwest::Client::builder()
        .use_preconfigured_tls(
            (*lectern_agent::tls::pinned_client_config(&ts.fingerprint).unwrap()).clone(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(ts.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login");
    let page = no_redirect
        .get(ts.url("/"))
        .header("cookie", &pair)
        .send()
        .await
        .unwrap();
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert!(
        page.text().await.unwrap().contains(csrf),
        "console page carries the CSRF token"
    );

    // Failed logins slow the user name from that address (3 free, then a delay
    // that doubles), and every attempt is audited.
    let mut codes = Vec::new();
    for _ in 0..8 {
        let r = c
            .post(ts.url("/api/v1/session"))
            .json(&json!({"username": "mallory", "password": "x"}))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes[..3], [401, 401, 401], "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
    let refused = codes.iter().filter(|c| **c == 401).count();
    let token = ts.login().await;
    // (A failed sign-in is audited off the answer's path.)
    let audit = wait_for(|| async {
        let audit = ts.get(&token, "/api/v1/audit?limit=1000").await;
        let audited = audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["actor"] == "mallory" && e["outcome"] == "bad_credentials")
            .count();
        let all = audit.as_array().unwrap();
        let admin_failed = all
            .iter()
            .any(|e| e["actor"] == "admin" && e["outcome"] == "bad_credentials");
        let limited = all
            .iter()
            .any(|e| e["actor"] == "mallory" && e["outcome"] == "rate_limited");
        (audited == refused && admin_failed && limited).then_some(audit)
    })
    .await;
    let entries = audit.as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["actor"] == "mallory" && e["outcome"] == "rate_limited"));
    assert!(entries
        .iter()
        .any(|e| e["actor"] == "admin" && e["outcome"] == "bad_credentials"));
}

async fn raw_agent(ts: &TestServer) -> lectern_agent::AgentStream {
    lectern_agent::connect(&ts.addr.to_string(), &ts.fingerprint)
        .await
        .unwrap()
}

fn hello(auth: Auth, version: u32) -> String {
    AgentMsg::Hello(Hello {
        protocol_version: version,
        auth,
        info: DeviceInfo {
            hostname: "evil".into(),
            os: "linux".into(),
            agent_version: "0".into(),
        },
        capabilities: vec![],
        state: Default::default(),
    })
    .encode()
}

/// Sends `frames` on a raw agent connection and returns the server's error code
/// and whether it then closed the connection.
async fn refusal(ts: &TestServer, frames: Vec<Message>) -> (Option<ErrorCode>, bool) {
    let mut ws = raw_agent(ts).await;
    for f in frames {
        if ws.send(f).await.is_err() {
            break;
        }
    }
    let mut code = None;
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => match ServerMsg::decode(&t) {
                    Ok(ServerMsg::Error { code: c, .. }) => code = Some(c),
                    Ok(ServerMsg::Welcome { .. }) => {}
                    Ok(_) => {} // policy and the like arrive after a welcome
                    Err(e) => panic!("undecodable server frame: {e}"),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    (code, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_agents_get_clear_errors_and_others_keep_working() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let good = start_agent(&ts, &enroll, "GOOD", Some("amy")).await;
    let victim = start_agent(&ts, &enroll, "VICTIM", Some("ben")).await;
    let secret = victim.credential.secret.clone();
    let text = |s: String| Message::text(s);

    let cases: Vec<(&str, Vec<Message>, Option<ErrorCode>)> = vec![
        (
            "malformed json",
            vec![text("{\"type\":".into())],
            Some(ErrorCode::Malformed),
        ),
        (
            "unknown message",
            vec![text(r#"{"type":"format_disk"}"#.into())],
            Some(ErrorCode::Malformed),
        ),
        (
            "oversized text",
            vec![text(format!(
                r#"{{"type":"heartbeat","x":"{}"}}"#,
                "a".repeat(70_000)
            ))],
            Some(ErrorCode::TooLarge),
        ),
        (
            "binary before hello",
            vec![Message::binary(vec![1u8, 0, 1, 0, 1, 9])],
            Some(ErrorCode::Protocol),
        ),
        (
            "heartbeat before hello",
            vec![text(AgentMsg::Heartbeat.encode())],
            Some(ErrorCode::Protocol),
        ),
        (
            "wrong version",
            vec![text(hello(
                Auth::Device {
                    device_id: victim.id(),
                    secret: secret.clone(),
                },
                99,
            ))],
            Some(ErrorCode::UnsupportedVersion),
        ),
        (
            "wrong secret",
            vec![text(hello(
                Auth::Device {
                    device_id: victim.id(),
                    secret: "guess".into(),
                },
                PROTOCOL_VERSION,
            ))],
            Some(ErrorCode::Unauthorized),
        ),
        (
            "unknown device",
            vec![text(hello(
                Auth::Device {
                    device_id: 4242,
                    secret: secret.clone(),
                },
                PROTOCOL_VERSION,
            ))],
            Some(ErrorCode::Unauthorized),
        ),
        (
            "bad enrollment token",
            vec![text(hello(
                Auth::Enroll {
                    token: "nope".into(),
                },
                PROTOCOL_VERSION,
            ))],
            Some(ErrorCode::BadToken),
        ),
        (
            "oversized binary after hello",
            vec![
                text(hello(
                    Auth::Device {
                        device_id: victim.id(),
                        secret: secret.clone(),
                    },
                    PROTOCOL_VERSION,
                )),
                Message::binary(vec![1u8; lectern_proto::MAX_BINARY_FRAME + 10]),
            ],
            None, // the WebSocket layer drops it; the connection closes
        ),
        (
            "bad media frame after hello",
            vec![
                text(hello(
                    Auth::Device {
                        device_id: victim.id(),
                        secret: secret.clone(),
                    },
                    PROTOCOL_VERSION,
                )),
                Message::binary(vec![7u8, 0, 0, 0, 0, 1]),
            ],
            Some(ErrorCode::Malformed),
        ),
        (
            "second hello",
            vec![
                text(hello(
                    Auth::Device {
                        device_id: victim.id(),
                        secret: secret.clone(),
                    },
                    PROTOCOL_VERSION,
                )),
                text(hello(
                    Auth::Device {
                        device_id: victim.id(),
                        secret: secret.clone(),
                    },
                    PROTOCOL_VERSION,
                )),
            ],
            Some(ErrorCode::Protocol),
        ),
    ];
    for (name, frames, want) in cases {
        let (code, closed) = refusal(&ts, frames).await;
        assert!(closed, "{name}: connection closed");
        if want.is_some() {
            assert_eq!(code, want, "{name}");
        }
    }
    assert!(ts.metric("lectern_agent_refused_total").await >= 10);
    // A wrong certificate fingerprint: the agent refuses the server.
    let wrong = "00".repeat(32);
    let Err(err) = lectern_agent::connect(&ts.addr.to_string(), &wrong).await else {
        panic!("pinning refuses a wrong certificate")
    };
    assert!(format!("{err:#}").contains("fingerprint"), "{err:#}");
    let info = lectern_agent::local_device_info(Some("x".into()));
    assert!(
        lectern_agent::enroll(&ts.addr.to_string(), &wrong, &enroll, &info)
            .await
            .is_err()
    );

    // The well-behaved agent was never disturbed.
    let rec = ts
        .command(
            &token,
            &[good.id()],
            json!({"type": "message", "text": "still here?"}),
        )
        .await;
    assert_eq!(rec["summary"]["done"], 1);
    good.stop().await;
    victim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_device_is_disconnected_and_refused() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 1).await;
    let mut a = start_agent(&ts, &enroll, "PC", Some("amy")).await;
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/devices/{}", a.id())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    a.wait_status(|s| matches!(s, ConnStatus::Refused(m) if m.contains("Revoked")))
        .await;
    let d = device(&ts, &token, a.id()).await;
    assert_eq!(d["revoked"], true);
    assert_eq!(d["online"], false);
    let (s, v) = ts
        .post(
            &token,
            "/api/v1/commands",
            json!({"devices": [a.id()], "command": {"type": "lock"}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // Reconnecting with the old credential is refused too.
    let (code, closed) = refusal(
        &ts,
        vec![Message::text(hello(
            Auth::Device {
                device_id: a.id(),
                secret: a.credential.secret.clone(),
            },
            PROTOCOL_VERSION,
        ))],
    )
    .await;
    assert_eq!(code, Some(ErrorCode::Revoked));
    assert!(closed);
    // The enrollment token had one use.
    let info = lectern_agent::local_device_info(Some("again".into()));
    assert!(
        lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, &enroll, &info)
            .await
            .is_err()
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_openapi_route_exists_and_needs_a_session() {
    let ts = TestServer::start().await;
    let c = ts.client();
    let doc: Value = c
        .get(ts.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8);
    for (path, ops) in paths {
        let url = ts.url(&format!("/api/v1{}", path.replace("{id}", "1")));
        for (method, op) in ops.as_object().unwrap() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = c
                .request(m, &url)
                .json(&json!({}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            let public = op
                .get("security")
                .is_some_and(|s| s.as_array().unwrap().is_empty());
            if public {
                assert_ne!(status, 404, "{method} {path}");
            } else {
                assert_eq!(status, 401, "{method} {path} without a session");
            }
        }
    }
    assert_eq!(
        c.get(ts.url("/api/v1/nope")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_show_a_screen_on_targets_until_stopped() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 3).await;
    let src = start_agent(&ts, &enroll, "SRC", Some("amy")).await;
    let t1 = start_agent(&ts, &enroll, "T1", Some("ben")).await;
    let t2 = start_agent(&ts, &enroll, "T2", Some("cat")).await;
    let frames = |a: &TestAgent| a.desktop.lock().unwrap().broadcast_frames();

    // A student's screen to two others.
    let (s, b) = ts
        .post(
            &token,
            "/api/v1/broadcasts",
            json!({"devices": [t1.id(), t2.id()], "source": {"type": "device", "id": src.id()}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["title"], "amy's screen");
    wait_for(|| async {
        (frames(&t1).unwrap_or(0) >= 2 && frames(&t2).unwrap_or(0) >= 2).then_some(())
    })
    .await;
    assert!(t1.desktop.lock().unwrap().state().broadcast_shown);
    assert_eq!(frames(&src), None, "the source does not watch itself");
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/broadcasts/{}", b["id"])))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    wait_for(|| async {
        (!t1.desktop.lock().unwrap().state().broadcast_shown
            && !t2.desktop.lock().unwrap().state().broadcast_shown)
            .then_some(())
    })
    .await;
    // With nobody watching, the source stops streaming.
    // Frames already in flight may still land, so wait for the counter to
    // settle (bounded), then require it to stay put over a further window.
    let mut settled = false;
    let mut last = ts.metric("lectern_thumbnails_received_total").await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let now = ts.metric("lectern_thumbnails_received_total").await;
        if now == last {
            settled = true;
            break;
        }
        last = now;
    }
    assert!(
        settled,
        "the source kept streaming after the broadcast stopped"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(ts.metric("lectern_thumbnails_received_total").await, last);

    // The teacher's screen, uploaded by the console over its stream.
    let (s, b) = ts
        .post(
            &token,
            "/api/v1/broadcasts",
            json!({"devices": [t1.id()], "source": {"type": "console"}, "title": "Watch this"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let mut ws = console_stream(&ts, &token).await;
    let jpeg = lectern_agent::encode_jpeg(
        &lectern_agent::Frame {
            width: 16,
            height: 16,
            rgb: vec![200; 16 * 16 * 3],
        },
        80,
    )
    .unwrap();
    let mut upload = vec![2u8];
    upload.extend_from_slice(&b["id"].as_u64().unwrap().to_be_bytes());
    upload.extend_from_slice(&jpeg);
    // A loaded agent shows only the newest of frames that arrive together,
    // so frames are sent until three were shown, not counted one for one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while frames(&t1).unwrap_or(0) < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the console's frames did not reach the target: {:?}",
            frames(&t1)
        );
        ws.send(Message::binary(upload.clone())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(frames(&t2), None, "only the chosen targets");
    // A bad upload gets an error message and changes nothing.
    ws.send(Message::binary(vec![2u8, 0, 0])).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                if t.contains("\"error\"") {
                    return t.to_string();
                }
            }
        }
    })
    .await
    .unwrap();
    assert!(err.contains("broadcast frames"), "{err}");
    // Refused: targets without control, the source as a target, an unknown broadcast.
    let (s, _) = ts
        .post(
            &token,
            "/api/v1/broadcasts",
            json!({"devices": [src.id()], "source": {"type": "device", "id": src.id()}}),
        )
        .await;
    assert_eq!(s, 400);
    let r = ts
        .client()
        .delete(ts.url("/api/v1/broadcasts/999"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    for a in [src, t1, t2] {
        a.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tabs_web_lists_and_activity_flow_through_the_api() {
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll = ts.enrollment_token(&token, 2).await;
    let amy = start_agent(&ts, &enroll, "LAB2-PC01", Some("amy")).await;

    // The tabs the browser reports are in the device's state.
    let dev = device(&ts, &token, amy.id()).await;
    assert_eq!(dev["state"]["extension"], "connected");
    let tabs = dev["state"]["tabs"].as_array().unwrap().clone();
    assert_eq!(tabs.len(), 2, "{dev}");

    // Close one through the REST API: it is gone from the state.
    let first = tabs[0]["id"].as_i64().unwrap();
    let rec = ts
        .command(
            &token,
            &[amy.id()],
            json!({"type": "close_tab", "tab_id": first}),
        )
        .await;
    assert_eq!(status_of(&rec, amy.id()).0, "done");
    let dev = device(&ts, &token, amy.id()).await;
    let left: Vec<i64> = dev["state"]["tabs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert!(!left.contains(&first), "{dev}");
    // An unknown tab is a clear failure, not a crash.
    let rec = ts
        .command(
            &token,
            &[amy.id()],
            json!({"type": "close_tab", "tab_id": 999}),
        )
        .await;
    let (status, reason) = status_of(&rec, amy.id());
    assert_eq!(status, "failed");
    assert!(reason.unwrap().contains("no tab 999"));

    // Web lists reach the device; bad patterns are refused before sending.
    let rec = ts
        .command(
            &token,
            &[amy.id()],
            json!({"type": "set_web_filter", "mode": "allow_list", "allow": ["*.school.example", "encyclopedia.example"]}),
        )
        .await;
    assert_eq!(status_of(&rec, amy.id()).0, "done");
    let set = amy.desktop.lock().unwrap().web_filter().cloned();
    assert_eq!(
        set,
        Some((
            lectern_proto::WebFilterMode::AllowList,
            vec![
                "*.school.example".to_string(),
                "encyclopedia.example".to_string()
            ],
            vec![]
        ))
    );
    let (s, v) = ts
        .post(
            &token,
            "/api/v1/commands",
            json!({"devices": [amy.id()], "command": {"type": "set_web_filter", "mode": "block_list", "block": ["bad site.example"]}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // A visited site lands in the activity log.
    ts.command(
        &token,
        &[amy.id()],
        json!({"type": "launch_url", "url": "https://volcano.example/lava"}),
    )
    .await;
    let rows = wait_for(|| async {
        let rows = ts
            .get(
                &token,
                &format!("/api/v1/activity?device={}&kind=web", amy.id()),
            )
            .await;
        (!rows.as_array().unwrap().is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(rows[0]["url"], "https://volcano.example/lava");
    assert_eq!(rows[0]["user"], "amy");
    let found = ts.get(&token, "/api/v1/activity?q=VOLCANO.example").await;
    assert_eq!(
        found.as_array().unwrap().len(),
        1,
        "search is case-insensitive"
    );
    let r = ts
        .client()
        .get(ts.url("/api/v1/activity?kind=teleport"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = ts
        .client()
        .get(ts.url("/api/v1/activity?device=424242"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // A hostile agent sending unknown activity kinds is cut off; others go on.
    let ben = start_agent(&ts, &enroll, "LAB2-PC02", Some("ben")).await;
    let cred = ben.credential.clone();
    ben.stop().await;
    let mut ws = raw_agent(&ts).await;
    ws.send(Message::text(hello(
        Auth::Device {
            device_id: cred.device_id,
            secret: cred.secret.clone(),
        },
        PROTOCOL_VERSION,
    )))
    .await
    .unwrap();
    ws.send(Message::text(
        json!({"type": "activity", "events": [{"kind": "keystrokes", "at": 1}]}).to_string(),
    ))
    .await
    .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(m) = ws.next().await {
            if let Ok(Message::Text(t)) = m {
                if t.contains("unknown activity kind") {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(closed, "refused with a reason");
    let rec = ts
        .command(&token, &[amy.id()], json!({"type": "lock"}))
        .await;
    assert_eq!(
        status_of(&rec, amy.id()).0,
        "done",
        "server still serves others"
    );
}
