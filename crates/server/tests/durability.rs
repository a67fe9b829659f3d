//! Activity events survive crashes: a real `lectern-server` process and a real
//! `lectern-agent` process, each killed with SIGKILL mid-burst, and an agent
//! that collects a backlog while the server is down. Every event must end up
//! in the server's SQLite file exactly once.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::agent_bin;
use lectern_server::init::{init, InitOptions};
use lectern_store::{ActivityFilter, SqliteStore, Store};

const BURST: usize = 10_000;

struct Proc(Child);

impl Proc {
    fn kill9(&mut self) {
        let _ = self.0.kill(); // SIGKILL
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Setup {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    fingerprint: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = init(&InitOptions {
            data_dir: dir.path().join("data"),
            school: "Durable School".into(),
            admin: "admin".into(),
            password: Some("correct horse battery".into()),
            cert: None,
            names: vec![],
            listen: None,
            postgres: None,
        })
        .unwrap();
        Setup {
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            fingerprint: out.fingerprint,
            dir,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn server(&self) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        Proc(
            Command::new(env!("CARGO_BIN_EXE_lectern-server"))
                .args(["serve", "--data-dir"])
                .arg(self.data())
                .args(["--listen", &self.addr.to_string()])
                .env("LECTERN_LOG", "stderr")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    /// Enrolls a device (in this process, against a running server).
    async fn enroll(&self, state: &Path) {
        let store = SqliteStore::open(&self.data().join("lectern.db")).unwrap();
        let school = store.first_school().unwrap().unwrap();
        let (token, _) = store
            .create_enrollment_token(
                school.id,
                "t",
                1,
                lectern_store::now_ms() + 3_600_000,
                "test",
            )
            .unwrap();
        let info = lectern_agent::local_device_info(Some("DUR-PC01".into()));
        let mut last = None;
        for _ in 0..100 {
            match lectern_agent::enroll(&self.addr.to_string(), &self.fingerprint, &token, &info)
                .await
            {
                Ok(cred) => {
                    cred.save(state).unwrap();
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("enrollment failed: {last:?}");
    }

    fn agent(&self, state: &Path, burst: usize) -> Proc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        Proc(
            Command::new(agent_bin())
                .args([
                    "run",
                    "--backend",
                    "headless",
                    "--user",
                    "amy",
                    "--state-dir",
                ])
                .arg(state)
                .args(["--activity-burst", &burst.to_string()])
                .env("LECTERN_LOG", "stderr")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    /// Sequence numbers stored for the device, sorted.
    fn stored(&self) -> Vec<i64> {
        let store = SqliteStore::open(&self.data().join("lectern.db")).unwrap();
        let school = store.first_school().unwrap().unwrap();
        let rows = store
            .activity(
                school.id,
                &ActivityFilter {
                    kind: Some("web".into()),
                    limit: 10_000,
                    ..Default::default()
                },
            )
            .unwrap();
        let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq.expect("numbered")).collect();
        seqs.sort_unstable();
        seqs
    }

    async fn wait_stored(&self, what: &str, ok: impl Fn(usize) -> bool) {
        for _ in 0..600 {
            if ok(self.stored().len()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{what}: {} stored\nserver log:\n{}\nagent log:\n{}",
            self.stored().len(),
            std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
        );
    }

    /// Every event 1..=BURST stored exactly once.
    fn assert_exactly_once(&self) {
        let seqs = self.stored();
        let expected: Vec<i64> = (1..=BURST as i64).collect();
        assert_eq!(seqs.len(), BURST, "each event once");
        assert_eq!(seqs, expected, "no gaps, no duplicates");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn server_killed_mid_burst_loses_and_duplicates_nothing() {
    let s = Setup::new();
    let state = s.dir.path().join("agent");
    let mut server = s.server();
    s.enroll(&state).await;
    let _agent = s.agent(&state, BURST);
    s.wait_stored("part of the burst", |n| n >= 500).await;
    server.kill9();
    let partial = s.stored().len();
    assert!(partial < BURST, "killed mid-burst ({partial} stored)");
    let _server = s.server();
    s.wait_stored("the rest after the restart", |n| n >= BURST)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // replays settle
    s.assert_exactly_once();
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_killed_mid_send_loses_nothing() {
    let s = Setup::new();
    let state = s.dir.path().join("agent");
    let _server = s.server();
    s.enroll(&state).await;
    let mut agent = s.agent(&state, BURST);
    s.wait_stored("part of the burst", |n| n >= 500).await;
    agent.kill9();
    let partial = s.stored().len();
    assert!(partial < BURST, "killed mid-send ({partial} stored)");
    let _agent = s.agent(&state, 0);
    s.wait_stored("the rest after the agent restarts", |n| n >= BURST)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.assert_exactly_once();
    assert!(
        std::fs::read_to_string(state.join("events/events.acked"))
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap()
            >= BURST,
        "the agent saw every acknowledgement"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_backlog_syncs_on_reconnect() {
    let s = Setup::new();
    let state = s.dir.path().join("agent");
    {
        let _server = s.server();
        s.enroll(&state).await;
    }
    // The server is down while the agent collects its backlog.
    let _agent = s.agent(&state, BURST);
    // Waits for the agent to write its backlog (a loaded machine may take a
    // while to start it), not for a fixed time.
    let log = state.join("events/events.log");
    let on_disk = || {
        std::fs::read_to_string(&log)
            .map(|l| l.lines().count())
            .unwrap_or(0)
    };
    for _ in 0..600 {
        if on_disk() >= BURST {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(on_disk(), BURST, "the backlog is on disk");
    assert_eq!(s.stored().len(), 0);
    let _server = s.server();
    s.wait_stored("the backlog after reconnecting", |n| n >= BURST)
        .await;
    s.assert_exactly_once();
}
