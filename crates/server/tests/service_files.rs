//! Files through the real Linux service (issue 13.7): `lectern-agent service`
//! (root) with a static X11 session for a throwaway local user on Xvfb. A
//! file sent through the REST API lands in that user's real home (found with
//! `getpwnam`), owned by them, never through a link; `~/Lectern/Hand-in`
//! comes back as a zip.
//!
//! Making a user needs root and `useradd`; without them the test says so and
//! checks nothing.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn have(tool: &str) -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(tool).exists())
}

/// A throwaway local user with a home under a temporary folder; `userdel -r`
/// when dropped, also when the test panics.
struct TempUser {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    _root: tempfile::TempDir,
}

impl TempUser {
    fn create() -> TempUser {
        let root = tempfile::tempdir().unwrap();
        // The user's own processes (the session helper) may walk to their home.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(root.path().join("home")).unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Unique per run; short (useradd allows 32) and lower case.
        let name = format!("lsf{}x{}", std::process::id(), nanos % 100_000);
        let home = root.path().join("home").join(&name);
        let out = Command::new("useradd")
            .args(["-m", "-U", "-s", "/bin/sh", "-d"])
            .arg(&home)
            .arg(&name)
            .output()
            .expect("run useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta = std::fs::metadata(&home).expect("useradd made the home");
        TempUser {
            name,
            uid: meta.uid(),
            gid: meta.gid(),
            home,
            _root: root,
        }
    }

    /// Makes `path` (under the home) owned by the user, as if they made it.
    fn own(&self, path: &Path) {
        std::os::unix::fs::lchown(path, Some(self.uid), Some(self.gid)).unwrap();
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["-r", "-f", &self.name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// An Xvfb of our own on a free display, killed when dropped.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x720x24"])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (apt-get install -y xvfb; scripts/test-all.sh does this)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let n: u32 = line.trim().parse().expect("Xvfb display number");
        Xvfb {
            child,
            display: format!(":{n}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lectern-agent service` with its own config, state and socket; stopped
/// with SIGTERM when dropped so that it stops its helpers (which run as the
/// temporary user, who is deleted next).
struct Service {
    child: Child,
    dir: tempfile::TempDir,
}

impl Service {
    fn start(extra: &str, token: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        // Helpers run as the session user and must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.path();
        std::fs::write(p.join("enrollment-token"), format!("{token}\n")).unwrap();
        let toml = format!(
            "token_file = {:?}\nstate_dir = {:?}\nsocket = {:?}\nsession_poll_secs = 1\n{extra}",
            p.join("enrollment-token"),
            p.join("state"),
            p.join("run/agent.sock"),
        );
        std::fs::write(p.join("agent.toml"), toml).unwrap();
        let log = std::fs::File::create(p.join("service.log")).unwrap();
        let child = Command::new(agent_bin())
            .args(["service", "--config"])
            .arg(p.join("agent.toml"))
            .env("RUST_LOG", "info")
            .env("LECTERN_LOG", "stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Service { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        &enroll,
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
