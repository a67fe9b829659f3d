//! Files through the real Linux service (issue 13.7): `lectern-agent service`
//! (root) with a static X11 session for a throwaway local user on Xvfb. A
//! file sent through the REST API lands in that user's real home (found with
//! `getpwnam`), owned by them, never through a link; `~/Lectern/Hand-in`
//! comes back as a zip.
//!
//! Making a user needs root and `useradd`; without them the test says so and
//! checks nothing.

mod common;
#[path = "common/service.rs"]
mod service;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use service::*;

/// Deterministic content of `len` bytes (several chunks, not a repeating block).
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

async fn upload(ts: &TestServer, token: &str, device: i64, name: &str, bytes: Vec<u8>) -> Value {
    let r = ts
        .client()
        .post(ts.url("/api/v1/files"))
        .query(&[
            ("devices", device.to_string()),
            ("name", name.to_string()),
            ("title", "Week 1".to_string()),
        ])
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Waits until the delivery of transfer `id` ended; returns it.
async fn delivery(ts: &TestServer, token: &str, id: i64) -> Value {
    wait_for(|| async {
        let t = ts.get(token, &format!("/api/v1/files/{id}")).await;
        let d = t["deliveries"][0].clone();
        (d["status"] == "done" || d["status"] == "failed").then_some(d)
    })
    .await
}

async fn zip_entries(ts: &TestServer, token: &str, id: i64) -> BTreeMap<String, Vec<u8>> {
    let r = ts
        .client()
        .get(ts.url(&format!("/api/v1/collections/{id}/zip")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        out.insert(f.name().to_string(), data);
    }
    out
}

async fn online_device(ts: &TestServer, token: &str, user: &str) -> Value {
    loop {
        let list = ts.get(token, "/api/v1/devices").await;
        let found = list.as_array().and_then(|l| {
            l.iter()
                .find(|d| d["online"] == true && d["state"]["user"] == user)
                .cloned()
        });
        if let Some(d) = found {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pids of the processes running as `uid` (real uid).
fn processes_of(uid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Uid:"))
                        .and_then(|v| v.split_whitespace().next()?.parse::<u32>().ok())
                })
                == Some(uid)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_saves_into_the_real_users_home_as_them_and_collects_it_back() {
    if !is_root() || !have("useradd") || !have("userdel") {
        eprintln!("SKIP: needs root and useradd/userdel to make a throwaway user");
        return;
    }
    // Declared first, so dropped last: after the service stopped its helpers.
    let user = TempUser::create();
    let x = Xvfb::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let svc = Service::start(
        &format!(
            "server = \"{}\"\nfingerprint = \"{}\"\nhostname = \"LAB4-PC01\"\nbackend = \"x11\"\n\
             sessions = \"static\"\n[[session]]\ndisplay = \"{}\"\nuser = \"{}\"\n",
            ts.addr, ts.fingerprint, x.display, user.name
        ),
        Some(&enroll),
    );
    let Ok(dev) = tokio::time::timeout(
        Duration::from_secs(30),
        online_device(&ts, &admin, &user.name),
    )
    .await
    else {
        panic!(
            "device never online with its user\nservice log:\n{}",
            svc.log()
        );
    };
    let id = dev["id"].as_i64().unwrap();
    // The service started the session helper as the user (setuid from root).
    wait_for(|| async { (!processes_of(user.uid).is_empty()).then_some(()) }).await;

    // The student made ~/Lectern/Received a link out of their home: the root
    // service must not write through it.
    let outside = tempfile::tempdir().unwrap();
    let lectern = user.home.join("Lectern");
    std::fs::create_dir(&lectern).unwrap();
    user.own(&lectern);
    let received = lectern.join("Received");
    std::os::unix::fs::symlink(outside.path(), &received).unwrap();
    user.own(&received);
    let t = upload(&ts, &admin, id, "Sheet.txt", content(10, 9)).await;
    let d = delivery(&ts, &admin, t["id"].as_i64().unwrap()).await;
    assert_eq!(d["status"], "failed", "{d}\nservice log:\n{}", svc.log());
    // Refused while saving (the link is not opened as a folder), not for
    // want of a user or home.
    assert!(
        d["reason"]
            .as_str()
            .unwrap()
            .starts_with("cannot save the file"),
        "{d}"
    );
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "a file was written through a link"
    );

    // Without the link: saved in the user's real home, owned by them.
    std::fs::remove_file(&received).unwrap();
    let paper = content(300_000, 1);
    let t = upload(&ts, &admin, id, "Paper.pdf", paper.clone()).await;
    let d = delivery(&ts, &admin, t["id"].as_i64().unwrap()).await;
    assert_eq!(d["status"], "done", "{d}\nservice log:\n{}", svc.log());
    assert_eq!(d["saved_as"], "Lectern/Received/Week 1/Paper.pdf");
    let saved = user.home.join("Lectern/Received/Week 1/Paper.pdf");
    assert_eq!(std::fs::read(&saved).unwrap(), paper);
    for p in [
        saved.as_path(),
        &user.home.join("Lectern/Received/Week 1"),
        &user.home.join("Lectern/Received"),
    ] {
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(!m.file_type().is_symlink(), "{p:?}");
        assert_eq!((m.uid(), m.gid()), (user.uid, user.gid), "owner of {p:?}");
    }

    // The user's hand-in folder comes back as a zip.
    let hand_in = user.home.join("Lectern/Hand-in");
    std::fs::create_dir(&hand_in).unwrap();
    user.own(&hand_in);
    let essay = content(70_000, 3);
    std::fs::write(hand_in.join("Essay.txt"), &essay).unwrap();
    user.own(&hand_in.join("Essay.txt"));
    let (s, c) = ts
        .post(
            &admin,
            "/api/v1/collections",
            json!({"devices": [id], "path": "~/Lectern/Hand-in"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let cid = c["id"].as_i64().unwrap();
    let h = wait_for(|| async {
        let c = ts.get(&admin, &format!("/api/v1/collections/{cid}")).await;
        let h = c["hand_ins"][0].clone();
        (h["status"] == "done" || h["status"] == "failed").then_some(h)
    })
    .await;
    assert_eq!(h["status"], "done", "{h}\nservice log:\n{}", svc.log());
    assert_eq!(h["files"], 1);
    let entries = zip_entries(&ts, &admin, cid).await;
    let key = format!("{} - LAB4-PC01 ({id})/Hand-in/Essay.txt", user.name);
    assert_eq!(entries.get(&key), Some(&essay), "{:?}", entries.keys());
    // Stopping the service stops the user's helper: nothing is left running as them.
    drop(svc);
    wait_for(|| async { processes_of(user.uid).is_empty().then_some(()) }).await;
}
