//! Files sent to devices and collected back (issue 13.7), end to end with a
//! real server, real agents writing into temporary homes, and raw agent
//! sessions for resumption after a dropped connection.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use common::*;
use futures_util::SinkExt;
use lectern_proto::{AgentMsg, Capability, CommandResult, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Deterministic content of `len` bytes (several chunks, not a repeating block).
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(7) as u8 ^ seed)
        .collect()
}

/// Uploads `bytes` as `name` to `devices`; returns (status, body).
async fn upload(
    ts: &TestServer,
    token: &str,
    devices: &[i64],
    name: &str,
    title: Option<&str>,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let ids: Vec<String> = devices.iter().map(i64::to_string).collect();
    let mut query = vec![("devices", ids.join(",")), ("name", name.to_string())];
    if let Some(t) = title {
        query.push(("title", t.to_string()));
    }
    let r = ts
        .client()
        .post(ts.url("/api/v1/files"))
        .query(&query)
        .bearer_auth(token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Waits until no delivery of transfer `id` is pending or sending; returns
/// each device's delivery.
async fn deliveries(ts: &TestServer, token: &str, id: i64) -> BTreeMap<i64, Value> {
    wait_for(|| async {
        let t = ts.get(token, &format!("/api/v1/files/{id}")).await;
        let d = t["deliveries"].as_array().unwrap().clone();
        d.iter()
            .all(|d| d["status"] == "done" || d["status"] == "failed")
            .then(|| {
                d.into_iter()
                    .map(|d| (d["device_id"].as_i64().unwrap(), d))
                    .collect()
            })
    })
    .await
}

/// Waits until every hand-in of collection `id` ended; returns them by device.
async fn hand_ins(ts: &TestServer, token: &str, id: i64) -> BTreeMap<i64, Value> {
    wait_for(|| async {
        let c = ts.get(token, &format!("/api/v1/collections/{id}")).await;
        let h = c["hand_ins"].as_array().unwrap().clone();
        h.iter()
            .all(|h| h["status"] == "done" || h["status"] == "failed")
            .then(|| {
                h.into_iter()
                    .map(|h| (h["device_id"].as_i64().unwrap(), h))
                    .collect()
            })
    })
    .await
}

/// An agent with `user` logged in whose homes live under `root`.
async fn agent_with_home(
    ts: &TestServer,
    enroll: &str,
    host: &str,
    user: &str,
    root: &Path,
) -> TestAgent {
    let a = start_agent(ts, enroll, host, Some(user)).await;
    a.desktop.lock().unwrap().set_home_root(root);
    a
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
    assert_eq!(r.headers()["content-type"], "application/zip");
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

fn home(root: &Path, user: &str) -> PathBuf {
    root.join(user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_sent_without_overwriting_and_hand_ins_come_back_as_a_zip() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let homes = tempfile::tempdir().unwrap();
    let amy = agent_with_home(&ts, &enroll, "LAB-PC01", "amy", homes.path()).await;
    let ben = agent_with_home(&ts, &enroll, "LAB-PC02", "ben", homes.path()).await;
    // Ben's Received folder is a link out of his home: nothing may be written through it.
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home(homes.path(), "ben").join("Lectern")).unwrap();
    std::os::unix::fs::symlink(
        outside.path(),
        home(homes.path(), "ben").join("Lectern/Received"),
    )
    .unwrap();

    // A hostile name: path, control character, a reserved device name.
    let paper = content(100_000, 1);
    let (s, t) = upload(
        &ts,
        &admin,
        &[amy.id(), ben.id()],
        "../..\\etc/con.t\u{1}xt",
        Some("Week 1"),
        paper.clone(),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    assert_eq!(t["name"], "_con.t_xt");
    assert_eq!(t["size"], 100_000);
    let d = deliveries(&ts, &admin, t["id"].as_i64().unwrap()).await;
    assert_eq!(d[&amy.id()]["status"], "done", "{:?}", d[&amy.id()]);
    assert_eq!(
        d[&amy.id()]["saved_as"],
        "Lectern/Received/Week 1/_con.t_xt"
    );
    let saved = home(homes.path(), "amy").join("Lectern/Received/Week 1/_con.t_xt");
    assert_eq!(std::fs::read(&saved).unwrap(), paper);
    assert_eq!(d[&ben.id()]["status"], "failed");
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "a file was written through a link"
    );

    // The same name again: a second file beside the first, the first untouched.
    let again = content(5, 2);
    let (s, t2) = upload(
        &ts,
        &admin,
        &[amy.id()],
        "_con.t_xt",
        Some("Week 1"),
        again.clone(),
    )
    .await;
    assert_eq!(s, 201, "{t2}");
    let d = deliveries(&ts, &admin, t2["id"].as_i64().unwrap()).await;
    assert_eq!(
        d[&amy.id()]["saved_as"],
        "Lectern/Received/Week 1/_con (2).t_xt"
    );
    assert_eq!(std::fs::read(&saved).unwrap(), paper);
    let second = home(homes.path(), "amy").join("Lectern/Received/Week 1/_con (2).t_xt");
    assert_eq!(std::fs::read(second).unwrap(), again);

    // Collect a folder: files in name order, a link inside is skipped.
    let hand_in = home(homes.path(), "amy").join("Lectern/Hand-in");
    std::fs::create_dir_all(hand_in.join("notes")).unwrap();
    let essay = content(70_000, 3);
    std::fs::write(hand_in.join("Essay.txt"), &essay).unwrap();
    std::fs::write(hand_in.join("notes/a.txt"), b"first").unwrap();
    std::fs::write(hand_in.join("empty.txt"), b"").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", hand_in.join("secret")).unwrap();
    let (s, c) = ts
        .post(
            &admin,
            "/api/v1/collections",
            json!({"devices": [amy.id(), ben.id()], "path": "~/Lectern/Hand-in"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_i64().unwrap();
    let h = hand_ins(&ts, &admin, id).await;
    assert_eq!(h[&amy.id()]["status"], "done", "{:?}", h[&amy.id()]);
    assert_eq!(h[&amy.id()]["files"], 3);
    assert_eq!(h[&ben.id()]["status"], "failed");
    assert!(h[&ben.id()]["reason"]
        .as_str()
        .unwrap()
        .contains("not found"));

    let entries = zip_entries(&ts, &admin, id).await;
    let amy_dir = format!("amy - LAB-PC01 ({})", amy.id());
    assert_eq!(entries[&format!("{amy_dir}/Hand-in/Essay.txt")], essay);
    assert_eq!(entries[&format!("{amy_dir}/Hand-in/notes/a.txt")], b"first");
    assert_eq!(entries[&format!("{amy_dir}/Hand-in/empty.txt")], b"");
    assert!(
        !entries.keys().any(|k| k.contains("secret")),
        "{:?}",
        entries.keys()
    );
    assert!(entries.contains_key(&format!("ben - LAB-PC02 ({})/", ben.id())));

    // Both were audited.
    let audit = ts.get(&admin, "/api/v1/audit").await.to_string();
    assert!(audit.contains("files.send") && audit.contains("files.collect"));
    assert!(audit.contains("files.download"));
    amy.stop().await;
    ben.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_bad_requests_get_clear_errors_and_lose_nothing() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let homes = tempfile::tempdir().unwrap();
    let amy = agent_with_home(&ts, &enroll, "LAB-PC01", "amy", homes.path()).await;

    let r = ts
        .client()
        .put(ts.url("/api/v1/files/limits"))
        .bearer_auth(&admin)
        .json(&json!({"max_upload_mib": 1, "max_collect_mib": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = ts
        .client()
        .put(ts.url("/api/v1/files/limits"))
        .bearer_auth(&admin)
        .json(&json!({"max_upload_mib": 0, "max_collect_mib": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Over the upload limit: 413, nothing recorded, nothing left on disk.
    let (s, v) = upload(
        &ts,
        &admin,
        &[amy.id()],
        "big.bin",
        None,
        vec![7; 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(s, 413, "{v}");
    assert!(v["error"].as_str().unwrap().contains("1 MiB"));
    assert_eq!(ts.get(&admin, "/api/v1/files").await, json!([]));
    let leftovers: Vec<_> = std::fs::read_dir(ts.data_dir().join("files"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Unknown devices, ids and paths that leave the folder.
    let (s, v) = upload(&ts, &admin, &[999], "a.txt", None, b"x".to_vec()).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("unknown device"));
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/collections",
            json!({"devices": [amy.id()], "path": "../../etc"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains(".."));
    for path in [
        "/api/v1/files/999",
        "/api/v1/collections/999",
        "/api/v1/collections/999/zip",
    ] {
        let r = ts
            .client()
            .get(ts.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }

    // A hand-in over the limit fails with the reason; the device stays connected.
    let dir = home(homes.path(), "amy").join("Lectern/Big");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.bin"), vec![1; 700_000]).unwrap();
    std::fs::write(dir.join("b.bin"), vec![2; 700_000]).unwrap();
    let (s, c) = ts
        .post(
            &admin,
            "/api/v1/collections",
            json!({"devices": [amy.id()], "path": "Big"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let h = hand_ins(&ts, &admin, c["id"].as_i64().unwrap()).await;
    assert_eq!(h[&amy.id()]["status"], "failed");
    assert!(
        h[&amy.id()]["reason"].as_str().unwrap().contains("limit"),
        "{:?}",
        h
    );
    // The server keeps serving it: a small file still arrives.
    let (s, t) = upload(&ts, &admin, &[amy.id()], "ok.txt", None, b"fine".to_vec()).await;
    assert_eq!(s, 201, "{t}");
    let d = deliveries(&ts, &admin, t["id"].as_i64().unwrap()).await;
    assert_eq!(d[&amy.id()]["status"], "done");
    amy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_teacher_without_control_of_a_device_cannot_send_or_collect() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let homes = tempfile::tempdir().unwrap();
    let amy = agent_with_home(&ts, &enroll, "LAB-PC01", "amy", homes.path()).await;
    // A user with command.files who only sees the devices.
    let everyone = entire_network(&ts, &admin).await;
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/users",
            json!({"username": "t.files", "password": "correct horse battery", "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = ts
        .post(&admin, "/api/v1/access-rules", json!({"principal": {"type": "user", "value": "t.files"}, "features": ["command.files"], "group_access": {everyone.to_string(): "view"}}))
        .await;
    assert_eq!(s, 201, "{v}");
    let teacher = ts.login_as("t.files", "correct horse battery").await;
    let (s, v) = upload(&ts, &teacher, &[amy.id()], "a.txt", None, b"x".to_vec()).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["reason"], "no_control");
    let (s, v) = ts
        .post(
            &teacher,
            "/api/v1/collections",
            json!({"devices": [amy.id()], "path": "Hand-in"}),
        )
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(ts.get(&admin, "/api/v1/files").await, json!([]));
    amy.stop().await;
}

/// The next file message from the server (others skipped).
async fn next_file_msg(ws: &mut lectern_agent::AgentStream) -> ServerMsg {
    loop {
        let m = next_server_msg(ws).await;
        if matches!(
            m,
            ServerMsg::FileOffer(_)
                | ServerMsg::FileData { .. }
                | ServerMsg::CollectStart(_)
                | ServerMsg::CollectAck { .. }
                | ServerMsg::FileCancel { .. }
        ) {
            return m;
        }
    }
}

async fn send(ws: &mut lectern_agent::AgentStream, msg: &AgentMsg) {
    ws.send(Message::text(msg.encode())).await.unwrap();
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_resume_where_they_stopped_after_a_dropped_connection() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let info = lectern_agent::local_device_info(Some("LAB-PC09".into()));
    let cred = lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, &enroll, &info)
        .await
        .unwrap();
    let id = cred.device_id;
    let paper = content(80_000, 9);

    // First session: the offer, two chunks, then the connection drops.
    let mut ws = raw_session(&ts, &cred, "LAB-PC09", vec![Capability::Files]).await;
    let (s, t) = upload(&ts, &admin, &[id], "paper.pdf", None, paper.clone()).await;
    assert_eq!(s, 201, "{t}");
    let transfer = t["id"].as_i64().unwrap();
    let ServerMsg::FileOffer(offer) = next_file_msg(&mut ws).await else {
        panic!("no offer")
    };
    assert_eq!((offer.transfer, offer.size), (transfer, 80_000));
    for offset in [0u64, 32_768] {
        send(&mut ws, &AgentMsg::FileRead { transfer, offset }).await;
        let ServerMsg::FileData {
            offset: o,
            data,
            eof,
            ..
        } = next_file_msg(&mut ws).await
        else {
            panic!("no data")
        };
        assert_eq!((o, eof), (offset, false));
        assert_eq!(data, b64(&paper[offset as usize..offset as usize + 32_768]));
    }
    // A hand-in starts too and stops after its first chunk.
    let (s, c) = ts
        .post(
            &admin,
            "/api/v1/collections",
            json!({"devices": [id], "path": "Hand-in/Essay.txt"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let collection = c["id"].as_i64().unwrap();
    let ServerMsg::CollectStart(start) = next_file_msg(&mut ws).await else {
        panic!("no collect")
    };
    assert_eq!((start.file_index, start.offset), (0, 0));
    let essay = content(40_000, 4);
    let chunk = |offset: usize, end: usize, last: bool| {
        AgentMsg::CollectData(Box::new(lectern_proto::files::CollectChunk {
            collection,
            file_index: 0,
            path: "Essay.txt".into(),
            offset: offset as u64,
            data: b64(&essay[offset..end]),
            last,
        }))
    };
    send(&mut ws, &chunk(0, 32_768, false)).await;
    let ServerMsg::CollectAck {
        file_index, offset, ..
    } = next_file_msg(&mut ws).await
    else {
        panic!("no ack")
    };
    assert_eq!((file_index, offset), (0, 32_768));
    drop(ws);

    // Second session: both are offered again and resume from where they were.
    let mut ws = raw_session(&ts, &cred, "LAB-PC09", vec![Capability::Files]).await;
    let mut resumed = 0;
    while resumed < 2 {
        match next_file_msg(&mut ws).await {
            ServerMsg::FileOffer(o) => {
                assert_eq!(o.transfer, transfer);
                resumed += 1;
            }
            ServerMsg::CollectStart(s) => {
                assert_eq!(
                    (s.collection, s.file_index, s.offset),
                    (collection, 0, 32_768)
                );
                resumed += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // A stale chunk from before the drop is answered with where the server is.
    send(&mut ws, &chunk(0, 32_768, false)).await;
    let ServerMsg::CollectAck { offset, .. } = next_file_msg(&mut ws).await else {
        panic!()
    };
    assert_eq!(offset, 32_768);
    send(&mut ws, &chunk(32_768, 40_000, true)).await;
    let ServerMsg::CollectAck {
        file_index, offset, ..
    } = next_file_msg(&mut ws).await
    else {
        panic!()
    };
    assert_eq!((file_index, offset), (1, 0));
    send(
        &mut ws,
        &AgentMsg::CollectDone(lectern_proto::files::CollectEnd {
            collection,
            result: CommandResult::Done,
        }),
    )
    .await;

    send(
        &mut ws,
        &AgentMsg::FileRead {
            transfer,
            offset: 65_536,
        },
    )
    .await;
    let ServerMsg::FileData {
        offset, data, eof, ..
    } = next_file_msg(&mut ws).await
    else {
        panic!()
    };
    assert_eq!((offset, eof), (65_536, true));
    assert_eq!(data, b64(&paper[65_536..]));
    send(
        &mut ws,
        &AgentMsg::FileDone {
            transfer,
            result: CommandResult::Done,
            saved_as: Some("Lectern/Received/paper/paper.pdf".into()),
        },
    )
    .await;

    let d = deliveries(&ts, &admin, transfer).await;
    assert_eq!(d[&id]["status"], "done");
    assert_eq!(d[&id]["bytes"], 80_000);
    let h = hand_ins(&ts, &admin, collection).await;
    assert_eq!(h[&id]["status"], "done");
    assert_eq!(h[&id]["bytes"], 40_000);
    let entries = zip_entries(&ts, &admin, collection).await;
    let file = entries
        .iter()
        .find(|(k, _)| k.ends_with("/Essay.txt"))
        .expect("the essay is in the zip");
    assert_eq!(file.1, &essay);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_without_files_gets_a_clear_failure_not_a_silent_wait() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let enroll = ts.enrollment_token(&admin, 10).await;
    let info = lectern_agent::local_device_info(Some("CHROMEBOOK-01".into()));
    let cred = lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, &enroll, &info)
        .await
        .unwrap();
    // Connected like the extension: no files capability.
    let _ws = raw_session(&ts, &cred, "CHROMEBOOK-01", vec![Capability::Message]).await;
    let id = cred.device_id;
    let (s, t) = upload(&ts, &admin, &[id], "a.txt", None, b"x".to_vec()).await;
    assert_eq!(s, 201, "{t}");
    let d = deliveries(&ts, &admin, t["id"].as_i64().unwrap()).await;
    assert_eq!(d[&id]["status"], "failed");
    assert!(
        d[&id]["reason"].as_str().unwrap().contains("browser"),
        "{:?}",
        d[&id]
    );
    let (s, c) = ts
        .post(
            &admin,
            "/api/v1/collections",
            json!({"devices": [id], "path": "Hand-in"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let h = hand_ins(&ts, &admin, c["id"].as_i64().unwrap()).await;
    assert_eq!(h[&id]["status"], "failed");
    assert!(h[&id]["reason"].as_str().unwrap().contains("browser"));
}
