//! The real Linux agent end to end: a real server, `lectern-agent service`
//! (root) enrolling itself from `agent.toml` and a token file, a session
//! helper it starts as user `nobody` on a real Xvfb display, and teachers'
//! commands through the REST API checked on screenshots of the root window.
//!
//! The service must start helpers as another user, so these tests need root;
//! run as another user they say so and check nothing.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use lectern_agent::ipc::ServiceStatus;
use lectern_x11::{LOCK_BG, MESSAGE_BG};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat};

/// The session user: present on every Debian system, never root.
const USER: &str = "nobody";
const NOBODY_UID: u32 = 65534;
const W: u16 = 1280;
const H: u16 = 720;

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
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

    /// Share of root-window pixels within 8 of `c` (Xvfb at depth 24 is BGRX).
    fn share(&self, c: [u8; 3]) -> f32 {
        let (conn, n) = x11rb::connect(Some(&self.display)).unwrap();
        let root = conn.setup().roots[n].root;
        let img = conn
            .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, W, H, !0)
            .unwrap()
            .reply()
            .unwrap();
        let near = |a: u8, b: u8| a.abs_diff(b) <= 8;
        let hits = img
            .data
            .chunks_exact(4)
            .filter(|p| near(p[2], c[0]) && near(p[1], c[1]) && near(p[0], c[2]))
            .count();
        hits as f32 / (W as usize * H as usize) as f32
    }

    async fn wait_share(&self, what: &str, c: [u8; 3], ok: impl Fn(f32) -> bool) {
        for _ in 0..200 {
            if ok(self.share(c)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: share of {c:?} is {}", self.share(c));
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `lectern-agent service` with its own config, state and socket.
struct Service {
    child: Child,
    dir: tempfile::TempDir,
}

impl Service {
    fn config(&self) -> PathBuf {
        self.dir.path().join("agent.toml")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/agent.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// Starts the service with `extra` TOML after the common settings.
    fn start(extra: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        // Helpers run as `nobody` and must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.path();
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

    fn status_as(&self, uid: Option<u32>) -> std::process::Output {
        let mut cmd = Command::new(agent_bin());
        cmd.args(["status", "--json", "--config"])
            .arg(self.config());
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        cmd.output().unwrap()
    }

    fn status(&self) -> Option<ServiceStatus> {
        let out = self.status_as(None);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    async fn wait_status(&self, what: &str, ok: impl Fn(&ServiceStatus) -> bool) -> ServiceStatus {
        for _ in 0..300 {
            if let Some(s) = self.status().filter(&ok) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{what}: status {:?}\nservice log:\n{}",
            self.status(),
            self.log()
        );
    }

    /// SIGTERM, as systemd stops it; returns whether it exited in time.
    fn stop(&mut self) -> bool {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn solid_jpeg(rgb: [u8; 3]) -> Vec<u8> {
    let (w, h) = (64u32, 36u32);
    lectern_agent::encode_jpeg(
        &lectern_agent::Frame {
            width: w,
            height: h,
            rgb: rgb.repeat((w * h) as usize),
        },
        90,
    )
    .unwrap()
}

async fn online_device(ts: &TestServer, token: &str) -> Value {
    loop {
        let list = ts.get(token, "/api/v1/devices").await;
        let found = list.as_array().and_then(|l| {
            l.iter()
                .find(|d| d["online"] == true && d["state"]["user"] == USER)
                .cloned()
        });
        if let Some(d) = found {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn target_status(rec: &Value) -> String {
    rec["targets"][0]["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn service_enrolls_itself_and_drives_a_real_x11_session() {
    if !is_root() {
        eprintln!("SKIP: the agent service starts helpers as another user, which needs root");
        return;
    }
    let x = Xvfb::start();
    let ts = TestServer::start().await;
    let token = ts.login().await;
    let enroll_token = ts.enrollment_token(&token, 1).await;
    let mut svc = Service::start(&format!(
        "server = \"{}\"\nfingerprint = \"{}\"\nhostname = \"LAB3-PC07\"\nbackend = \"x11\"\n\
         sessions = \"static\"\n[[session]]\ndisplay = \"{}\"\nuser = \"{USER}\"\n",
        ts.addr, ts.fingerprint, x.display
    ));
    // The token arrives after the service started (as with an image whose
    // token is dropped in later): it keeps trying until it can enroll.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(
        svc.dir.path().join("enrollment-token"),
        format!("# lab 3\n{enroll_token}\n"),
    )
    .unwrap();

    let Ok(dev) = tokio::time::timeout(Duration::from_secs(30), online_device(&ts, &token)).await
    else {
        let list = ts.get(&token, "/api/v1/devices").await;
        panic!(
            "device never online with its user: {list}\nservice log:\n{}",
            svc.log()
        );
    };
    assert_eq!(dev["hostname"], "LAB3-PC07");
    let id = dev["id"].as_i64().unwrap();
    let cred = svc.dir.path().join("state/credential.json");
    let mode = std::fs::metadata(&cred).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "credential is private");

    let st = svc
        .wait_status("connected with a helper", |s| {
            s.connection == "connected" && s.sessions.iter().any(|s| s.helper_pid.is_some())
        })
        .await;
    assert_eq!(st.school.as_deref(), Some("Test School"));
    assert_eq!(st.device_id, Some(id));
    assert_eq!(st.sessions[0].user, USER);
    assert_eq!(st.sessions[0].display, x.display);
    let helper = st.sessions[0].helper_pid.unwrap();
    let helper_uid = std::fs::read_to_string(format!("/proc/{helper}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().unwrap().to_string())
        })
        .unwrap();
    assert_eq!(
        helper_uid,
        NOBODY_UID.to_string(),
        "the helper runs as the session user"
    );

    // The session's start and the machine's boot are in the activity log.
    let kinds = wait_for(|| async {
        let rows = ts
            .get(&token, &format!("/api/v1/activity?device={id}"))
            .await;
        let kinds: Vec<String> = rows
            .as_array()?
            .iter()
            .map(|r| r["kind"].as_str().unwrap_or("").to_string())
            .collect();
        (kinds.contains(&"login".to_string()) && kinds.contains(&"power_on".to_string()))
            .then_some(kinds)
    })
    .await;
    assert!(!kinds.is_empty());

    // Lock through the REST API: the lock window covers the real screen.
    let rec = ts
        .command(&token, &[id], json!({"type": "lock", "text": "Eyes on me"}))
        .await;
    assert_eq!(target_status(&rec), "done", "{rec}");
    x.wait_share("locked", LOCK_BG, |s| s > 0.9).await;

    // The helper dies: the service starts another, which locks again.
    // SAFETY: killing a process this test owns (via the service).
    unsafe { libc::kill(helper as i32, libc::SIGKILL) };
    let st = svc
        .wait_status("helper restarted", |s| {
            s.sessions[0].starts >= 2 && s.sessions[0].helper_pid.is_some_and(|p| p != helper)
        })
        .await;
    x.wait_share("still locked after the restart", LOCK_BG, |s| s > 0.9)
        .await;
    assert!(st.sessions[0].helper_pid.is_some());

    let rec = ts.command(&token, &[id], json!({"type": "unlock"})).await;
    assert_eq!(target_status(&rec), "done", "{rec}");
    x.wait_share("unlocked", LOCK_BG, |s| s < 0.05).await;

    // A message window on the real screen.
    let rec = ts
        .command(
            &token,
            &[id],
            json!({"type": "message", "text": "Hand in your work"}),
        )
        .await;
    assert_eq!(target_status(&rec), "done", "{rec}");
    x.wait_share("message shown", MESSAGE_BG, |s| s > 0.05)
        .await;

    // Thumbnails of the real screen reach a watching console.
    let mut ws = console_stream(&ts, &token).await;
    ws.send(Message::text(json!({"watch": [id]}).to_string()))
        .await
        .unwrap();
    let jpeg = tokio::time::timeout(Duration::from_secs(20), async {
        use futures_util::StreamExt;
        loop {
            if let Some(Ok(Message::Binary(b))) = ws.next().await {
                if b.first() == Some(&1) && b[1..9] == id.to_be_bytes() {
                    return b[9..].to_vec();
                }
            }
        }
    })
    .await
    .expect("a thumbnail arrives");
    let mut dec = jpeg_decoder::Decoder::new(&jpeg[..]);
    let px = dec.decode().unwrap();
    let info = dec.info().unwrap();
    assert_eq!(
        (info.width, info.height),
        (320, 180),
        "1280x720 scaled to 320 wide"
    );
    let yellow = px
        .chunks_exact(3)
        .filter(|p| p[0] > 200 && p[1] > 170 && p[2] < 140)
        .count();
    assert!(
        yellow > 320 * 180 / 50,
        "the message shows in the thumbnail: {yellow} px"
    );

    // A broadcast of the teacher's screen covers the student's.
    let (s, b) = ts
        .post(
            &token,
            "/api/v1/broadcasts",
            json!({"devices": [id], "source": {"type": "console"}, "title": "Watch this"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let bid = b["id"].as_u64().unwrap();
    let green = [40, 200, 60];
    let mut frame = vec![2u8];
    frame.extend_from_slice(&bid.to_be_bytes());
    frame.extend_from_slice(&solid_jpeg(green));
    for _ in 0..3 {
        ws.send(Message::binary(frame.clone())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    x.wait_share("broadcast shown", green, |s| s > 0.5).await;
    let r = ts
        .client()
        .delete(ts.url(&format!("/api/v1/broadcasts/{bid}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    x.wait_share("broadcast gone", green, |s| s < 0.01).await;

    // Log out: every process of the session ends (here a stand-in session
    // process the test started as the user).
    let mut session_proc = Command::new("sleep")
        .arg("600")
        .uid(NOBODY_UID)
        .gid(NOBODY_UID)
        .spawn()
        .unwrap();
    let rec = ts.command(&token, &[id], json!({"type": "logout"})).await;
    assert_eq!(target_status(&rec), "done", "{rec}");
    let mut ended = false;
    for _ in 0..100 {
        if session_proc.try_wait().unwrap().is_some() {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "logout ended the session's processes");

    // Stopping the service stops its helpers: nothing is left behind.
    let st = svc
        .wait_status("helper back after logout", |s| {
            s.sessions[0].helper_pid.is_some()
        })
        .await;
    let last_helper = st.sessions[0].helper_pid.unwrap();
    assert!(svc.stop(), "service stops on SIGTERM");
    assert!(!pid_alive(last_helper), "helper stopped with the service");
    assert!(!svc.socket().exists(), "socket removed");
}

#[tokio::test(flavor = "multi_thread")]
async fn service_socket_judges_peers_by_their_credentials() {
    if !is_root() {
        eprintln!("SKIP: the agent service starts helpers as another user, which needs root");
        return;
    }
    // No server: the service keeps trying to enroll while serving its socket.
    let svc = Service::start(&format!(
        "backend = \"headless\"\nsessions = \"static\"\n[[session]]\ndisplay = \":91\"\nuser = \"{USER}\"\n"
    ));
    let st = svc
        .wait_status("helper connected", |s| {
            s.sessions.iter().any(|s| s.helper_pid.is_some())
        })
        .await;
    assert!(st.connection.starts_with("enrolling"), "{}", st.connection);
    assert!(
        st.connection.contains("enrollment token"),
        "{}",
        st.connection
    );
    let real_helper = st.sessions[0].helper_pid.unwrap();

    // A student may not read the status.
    let out = svc.status_as(Some(NOBODY_UID));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root only"), "{err}");

    // A student's process posing as the session's helper is turned away.
    let out = Command::new(agent_bin())
        .args([
            "session-helper",
            "--session",
            "static::91",
            "--backend",
            "headless",
            "--socket",
        ])
        .arg(svc.socket())
        .env("LECTERN_LOG", "stderr")
        .uid(NOBODY_UID)
        .gid(NOBODY_UID)
        .output()
        .unwrap();
    let mut refused = false;
    for _ in 0..50 {
        if svc.log().contains("is not the helper started for session") {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused,
        "impostor refused; helper said {out:?}\nlog:\n{}",
        svc.log()
    );
    let st = svc.status().unwrap();
    assert_eq!(
        st.sessions[0].helper_pid,
        Some(real_helper),
        "the real helper stays"
    );

    // Garbage on the socket is refused and the service keeps serving.
    {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(svc.socket()).unwrap();
        s.write_all(&[0xff; 64]).unwrap();
    }
    assert!(svc.status().is_some(), "still serving after garbage");

    // A helper will not serve a socket that a non-root user bound: the user
    // cannot impersonate the service.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let fake = dir.path().join("fake.sock");
    let mut listener = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen(1)\nprint('ready',flush=True)\nc,_=s.accept()\ntime.sleep(5)",
        ])
        .arg(&fake)
        .uid(NOBODY_UID)
        .gid(NOBODY_UID)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(listener.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let out = Command::new(agent_bin())
        .args([
            "session-helper",
            "--session",
            "x",
            "--backend",
            "headless",
            "--socket",
        ])
        .arg(&fake)
        .env("LECTERN_LOG", "stderr")
        .output()
        .unwrap();
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not root"), "{err}");
}
