//! Issue 13 points 4 and 8 through the server: application lists are group
//! settings with human labels, checked entry by entry (a bad line refused
//! whole, nothing saved), and reach the device in its policy; the printing
//! and removable-media settings reach it the same way. Real server, a raw
//! agent session over real TLS and WebSockets on loopback.

mod common;

use common::*;
use lectern_proto::{AppMode, Capability, ServerMsg};
use serde_json::json;

/// The next policy the device is sent.
async fn next_policy(ws: &mut lectern_agent::AgentStream) -> lectern_proto::Policy {
    loop {
        if let ServerMsg::Policy { policy } = next_server_msg(ws).await {
            return policy;
        }
    }
}

#[tokio::test]
async fn application_lists_are_checked_labelled_and_sent_to_the_device() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    let cat = ts.get(&admin, "/api/v1/settings/catalogue").await;
    let spec = |key: &str| {
        cat.as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{key} is in the catalogue"))
    };
    assert_eq!(spec("app_mode")["label"], "Applications");
    assert_eq!(
        spec("app_mode")["values"],
        json!(["off", "allow_list", "block_list"])
    );
    assert_eq!(
        spec("app_mode")["value_labels"]["block_list"],
        "All but blocked applications"
    );
    assert_eq!(spec("app_allow_list")["label"], "Allowed applications");
    assert_eq!(spec("app_block_list")["label"], "Blocked applications");
    assert_eq!(spec("app_block_list")["type"], "apps");

    let enroll = ts.enrollment_token(&admin, 1).await;
    let cred = enroll_as(&ts, &enroll, "LAB-07").await;
    let mut ws = raw_session(&ts, &cred, "LAB-07", vec![Capability::Thumbnails]).await;
    let first = next_policy(&mut ws).await;
    assert_eq!(first.app_mode, AppMode::Off);

    let lab = computer_group(&ts, &admin, "Lab", "LAB-*").await;
    let path = format!("/api/v1/groups/{lab}");
    // A path, a space or a 65-character name is refused naming its line.
    for (bad, line) in [
        (json!(["steam", "/usr/bin/xterm"]), "line 2"),
        (json!(["two words"]), "line 1"),
        (json!(["ok", "ok2", "x".repeat(65)]), "line 3"),
    ] {
        let (s, v) = ts
            .put(
                &admin,
                &path,
                json!({"settings": {"app_mode": "block_list", "app_block_list": bad}}),
            )
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains(line), "{v}");
    }
    let too_many: Vec<String> = (0..201).map(|i| format!("app{i}")).collect();
    let (s, _) = ts
        .put(
            &admin,
            &path,
            json!({"settings": {"app_allow_list": too_many}}),
        )
        .await;
    assert_eq!(s, 400);
    let g = ts.get(&admin, &path).await;
    assert!(
        g["settings"].get("app_mode").is_none(),
        "nothing was saved: {g}"
    );

    let (s, v) = ts
        .put(
            &admin,
            &path,
            json!({"settings": {"app_mode": "block_list", "app_block_list": ["Steam", "XTerm"],
                            "printing_disabled": true, "removable_media_disabled": true}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let p = next_policy(&mut ws).await;
    assert_eq!(p.app_mode, AppMode::BlockList);
    assert_eq!(p.app_block_list, ["steam", "xterm"]);
    assert!(p.printing_disabled && p.removable_media_disabled);

    let r = ts
        .get(
            &admin,
            &format!("/api/v1/resultant?device={}", cred.device_id),
        )
        .await;
    assert_eq!(r["settings"]["app_mode"]["value"], "block_list");
    assert_eq!(r["settings"]["app_mode"]["source"]["group_id"], lab);
}
