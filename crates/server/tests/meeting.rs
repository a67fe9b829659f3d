//! Meeting invites (issue 16 point 4) against a real server and agents: the
//! link opens on each device, with a result per device (done, failed with
//! the device's reason, offline); only https links; a separate right
//! (`command.meeting`) with control of the devices; audited with the link.

mod common;

use common::*;
use lectern_agent::Desktop;
use serde_json::{json, Value};

const LINK: &str = "https://meet.google.com/abc-defg-hij";

/// Posts a meeting invite to `device` as `token`, without waiting.
async fn invite(ts: &TestServer, token: &str, device: i64, url: &str) -> (u16, Value) {
    ts.post(
        token,
        "/api/v1/commands",
        json!({"devices": [device], "command": {"type": "meeting", "url": url}}),
    )
    .await
}

/// The target of `device` in a command record.
fn target(rec: &Value, device: i64) -> &Value {
    rec["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["device_id"] == device)
        .unwrap_or_else(|| panic!("no target {device} in {rec}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meeting_opens_on_each_device_with_a_result_per_device() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let amy = start_agent(&ts, &enroll, "ROOM7-PC01", Some("amy")).await;
    let ben = start_agent(&ts, &enroll, "ROOM7-PC02", Some("ben")).await;
    let cat = start_agent(&ts, &enroll, "ROOM7-PC03", Some("cat")).await;
    let (amy_id, ben_id, cat_id) = (amy.id(), ben.id(), cat.id());
    cat.stop().await;

    // Ben's internet is blocked: the meeting cannot open there, and his
    // result says why.
    let rec = ts
        .command(&admin, &[ben_id], json!({"type": "block_internet"}))
        .await;
    assert_eq!(target(&rec, ben_id)["status"], "done", "{rec}");

    let rec = ts
        .command(
            &admin,
            &[amy_id, ben_id, cat_id],
            json!({"type": "meeting", "url": LINK}),
        )
        .await;
    assert_eq!(rec["command"]["type"], "meeting", "{rec}");
    assert_eq!(target(&rec, amy_id)["status"], "done", "{rec}");
    let ben_result = target(&rec, ben_id);
    assert_eq!(ben_result["status"], "failed", "{rec}");
    assert!(
        ben_result["reason"]
            .as_str()
            .unwrap()
            .contains("internet is blocked"),
        "{rec}"
    );
    assert_eq!(target(&rec, cat_id)["status"], "offline", "{rec}");
    // The link is open on Amy's computer, as its reported page.
    wait_for(|| async {
        let d = ts.get(&admin, &format!("/api/v1/devices/{amy_id}")).await;
        (d["state"]["url"] == LINK).then_some(())
    })
    .await;

    // Audited as command.meeting, with the link.
    let audit = ts.get(&admin, "/api/v1/audit?action=command.meeting").await;
    let entry = audit.as_array().unwrap().first().expect("an audit entry");
    assert!(entry["detail"].as_str().unwrap().contains(LINK), "{entry}");
    assert_eq!(
        entry["outcome"], "sent to 2, offline 1, failed 0",
        "{entry}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_https_links_and_only_with_the_right_and_control() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let amy = start_agent(&ts, &enroll, "ROOM8-PC01", Some("amy")).await;
    let amy_id = amy.id();
    let room = computer_group(&ts, &admin, "Room 8", "ROOM8-*").await;

    // Hostile and plain links are refused whole, with a sentence, and nothing
    // is sent.
    for (url, says) in [
        ("http://meet.google.com/abc-defg-hij", "https://"),
        ("javascript:alert(1)", "not http or https"),
        ("file:///etc/passwd", "not http or https"),
        ("https://user:secret@meet.example/x", "credentials"),
        ("meet.google.com/abc", "relative URL"),
        ("https://meet.example/a b", "whitespace"),
    ] {
        let (s, v) = invite(&ts, &admin, amy_id, url).await;
        assert_eq!(s, 400, "{url}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(says),
            "{url}: {v}"
        );
    }
    let long = format!("https://meet.example/{}", "a".repeat(3000));
    let (s, _) = invite(&ts, &admin, amy_id, &long).await;
    assert_eq!(s, 400);
    assert!(amy.desktop.lock().unwrap().state().url.is_none());

    // Opening websites is not inviting to meetings: a separate right.
    let web_only = teacher_with_access(
        &ts,
        &admin,
        "web.only",
        &["devices.view", "command.launch_url"],
        &[(room, "control")],
        false,
    )
    .await;
    let (s, v) = invite(&ts, &web_only, amy_id, LINK).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "missing_right");
    assert_eq!(v["feature"], "command.meeting");
    assert_eq!(
        v["error"],
        "You can't invite these computers to a meeting. Ask your administrator."
    );

    // The right with only view access to the room: refused for the device.
    let viewer = teacher_with_access(
        &ts,
        &admin,
        "meet.viewer",
        &["devices.view", "command.meeting"],
        &[(room, "view")],
        false,
    )
    .await;
    let (s, v) = invite(&ts, &viewer, amy_id, LINK).await;
    assert_eq!(s, 403, "{v}");

    // With the right and control, it opens.
    let teacher = teacher_with_access(
        &ts,
        &admin,
        "meet.teacher",
        &["devices.view", "command.meeting"],
        &[(room, "control")],
        false,
    )
    .await;
    let rec = ts
        .command(&teacher, &[amy_id], json!({"type": "meeting", "url": LINK}))
        .await;
    assert_eq!(target(&rec, amy_id)["status"], "done", "{rec}");
    assert_eq!(
        amy.desktop.lock().unwrap().state().url.as_deref(),
        Some(LINK)
    );
    // `GET /me` offers the right to the teacher, so the console shows the
    // Meeting button; the web-only teacher does not get it.
    assert!(ts.get(&teacher, "/api/v1/me").await["usable"]
        .as_array()
        .unwrap()
        .contains(&json!("command.meeting")));
    assert!(!ts.get(&web_only, "/api/v1/me").await["usable"]
        .as_array()
        .unwrap()
        .contains(&json!("command.meeting")));
}
