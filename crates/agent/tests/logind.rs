//! User sessions from systemd-logind's D-Bus signals, against a real
//! `dbus-daemon` of the test's own (a private bus on a Unix socket in a temp
//! dir) on which the test serves a small logind: the `Manager` with
//! `ListSessions`, `SessionNew` and `SessionRemoved`, and one `Session`
//! object per session with its properties and their `PropertiesChanged`.
//! First the session source alone ([`LogindWatch`]), then the real
//! `lectern-agent service` with `sessions = "logind"` pointed at the bus by
//! `DBUS_SYSTEM_BUS_ADDRESS`, starting a helper as `nobody` on Xvfb.
//! (Linux only: logind is the Linux service's source of sessions.)
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_agent::ipc::ServiceStatus;
use lectern_agent::linux::logind::LogindWatch;
use lectern_agent::linux::sessions::LogindSession;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{ObjectPath, OwnedObjectPath};
use zbus::Connection;

/// Generous: a loaded machine may be slow, but a change must come.
const WAIT: Duration = Duration::from_secs(30);

/// A `dbus-daemon` of our own, stopped when dropped.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        // Helpers run as `nobody`; nothing of theirs uses this bus, but the
        // socket must be reachable to whoever the service is.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="org.freedesktop.login1"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start dbus-daemon (apt-get install -y dbus-daemon)");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        Bus {
            child,
            address: address.trim().to_string(),
            _dir: dir,
        }
    }

    async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .unwrap()
            .build()
            .await
            .unwrap()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One row of `ListSessions`: id, uid, user, seat, object path.
type Row = (String, u32, String, String, OwnedObjectPath);

/// The fake logind's manager: the sessions it lists.
struct Manager {
    rows: Arc<Mutex<Vec<Row>>>,
}

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl Manager {
    fn list_sessions(&self) -> Vec<Row> {
        self.rows.lock().unwrap().clone()
    }

    #[zbus(signal)]
    async fn session_new(e: &SignalEmitter<'_>, id: &str, path: ObjectPath<'_>)
        -> zbus::Result<()>;

    #[zbus(signal)]
    async fn session_removed(
        e: &SignalEmitter<'_>,
        id: &str,
        path: ObjectPath<'_>,
    ) -> zbus::Result<()>;
}

/// One session object of the fake logind, with logind's property names.
#[derive(Clone)]
struct FakeSession {
    id: String,
    user: String,
    uid: u32,
    display: String,
    kind: String,
    remote: bool,
    active: bool,
    class: String,
    state: String,
}

impl FakeSession {
    /// A local, active X11 session of `user` on `display`.
    fn x11(id: &str, user: &str, uid: u32, display: &str) -> FakeSession {
        FakeSession {
            id: id.into(),
            user: user.into(),
            uid,
            display: display.into(),
            kind: "x11".into(),
            remote: false,
            active: true,
            class: "user".into(),
            state: "active".into(),
        }
    }

    fn path(&self) -> OwnedObjectPath {
        OwnedObjectPath::try_from(format!("/org/freedesktop/login1/session/_3{}", self.id)).unwrap()
    }
}

#[zbus::interface(name = "org.freedesktop.login1.Session")]
impl FakeSession {
    #[zbus(property)]
    fn id(&self) -> String {
        self.id.clone()
    }
    #[zbus(property)]
    fn name(&self) -> String {
        self.user.clone()
    }
    #[zbus(property)]
    fn user(&self) -> (u32, OwnedObjectPath) {
        let path = format!("/org/freedesktop/login1/user/_{}", self.uid);
        (self.uid, OwnedObjectPath::try_from(path).unwrap())
    }
    #[zbus(property)]
    fn display(&self) -> String {
        self.display.clone()
    }
    #[zbus(property, name = "Type")]
    fn kind(&self) -> String {
        self.kind.clone()
    }
    #[zbus(property)]
    fn remote(&self) -> bool {
        self.remote
    }
    #[zbus(property)]
    fn active(&self) -> bool {
        self.active
    }
    #[zbus(property)]
    fn class(&self) -> String {
        self.class.clone()
    }
    #[zbus(property)]
    fn state(&self) -> String {
        self.state.clone()
    }
    #[zbus(property)]
    fn seat(&self) -> (String, OwnedObjectPath) {
        let path = OwnedObjectPath::try_from("/org/freedesktop/login1/seat/seat0").unwrap();
        ("seat0".into(), path)
    }
    #[zbus(property)]
    fn leader(&self) -> u32 {
        // No process: the service finds no XAUTHORITY and uses none.
        0
    }
}

/// A fake systemd-logind serving on `bus` as `org.freedesktop.login1`.
struct FakeLogind {
    conn: Connection,
    rows: Arc<Mutex<Vec<Row>>>,
}

impl FakeLogind {
    async fn start(bus: &Bus) -> FakeLogind {
        let rows = Arc::new(Mutex::new(Vec::new()));
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .unwrap()
            .name("org.freedesktop.login1")
            .unwrap()
            .serve_at("/org/freedesktop/login1", Manager { rows: rows.clone() })
            .unwrap()
            .build()
            .await
            .unwrap();
        FakeLogind { conn, rows }
    }

    fn manager(&self) -> SignalEmitter<'_> {
        SignalEmitter::new(&self.conn, "/org/freedesktop/login1").unwrap()
    }

    /// A session appears: its object, its row, then `SessionNew`.
    async fn add(&self, s: FakeSession) {
        let path = s.path();
        let row = (
            s.id.clone(),
            s.uid,
            s.user.clone(),
            "seat0".into(),
            path.clone(),
        );
        self.conn
            .object_server()
            .at(&path, s.clone())
            .await
            .unwrap();
        self.rows.lock().unwrap().push(row);
        Manager::session_new(&self.manager(), &s.id, path.as_ref())
            .await
            .unwrap();
    }

    /// A session ends: gone from the list and the bus, then `SessionRemoved`.
    async fn remove(&self, s: &FakeSession) {
        let path = s.path();
        self.rows.lock().unwrap().retain(|r| r.0 != s.id);
        self.conn
            .object_server()
            .remove::<FakeSession, _>(&path)
            .await
            .unwrap();
        Manager::session_removed(&self.manager(), &s.id, path.as_ref())
            .await
            .unwrap();
    }

    /// `Active` (and `State` with it) changes, as on a VT switch or logout;
    /// like logind, only `Active` is announced.
    async fn set_active(&self, s: &FakeSession, active: bool, state: &str) {
        let iface = self
            .conn
            .object_server()
            .interface::<_, FakeSession>(s.path())
            .await
            .unwrap();
        {
            let mut s = iface.get_mut().await;
            s.active = active;
            s.state = state.into();
        }
        iface
            .get()
            .await
            .active_changed(iface.signal_emitter())
            .await
            .unwrap();
    }
}

fn ids(list: &[LogindSession]) -> Vec<&str> {
    list.iter().map(|s| s.id.as_str()).collect()
}

async fn next_change(watch: &mut LogindWatch) -> Option<Vec<LogindSession>> {
    tokio::time::timeout(WAIT, watch.next_change())
        .await
        .expect("logind's change is reported")
}

#[tokio::test]
async fn sessions_follow_loginds_signals_and_keep_only_local_x11_user_ones() {
    let mut bus = Bus::start();
    let logind = FakeLogind::start(&bus).await;
    let amy = FakeSession::x11("1", "amy", 1001, ":0");
    logind.add(amy.clone()).await;

    let mut watch = LogindWatch::start_on(bus.connect().await).await.unwrap();
    let listed = watch.usable();
    assert_eq!(ids(&listed), ["1"], "listed at start");
    assert_eq!(
        (listed[0].name.as_str(), listed[0].display.as_str()),
        ("amy", ":0")
    );

    // Sessions that get no helper come and go unnoticed: the next change
    // reported is the usable one announced after them.
    for (id, edit) in [
        (
            "2",
            (|s: &mut FakeSession| s.kind = "wayland".into()) as fn(&mut FakeSession),
        ),
        ("3", |s| s.class = "greeter".into()),
        ("4", |s| s.remote = true),
        ("5", |s| s.kind = "tty".into()),
    ] {
        let mut s = FakeSession::x11(id, "bob", 1002, ":1");
        edit(&mut s);
        logind.add(s).await;
    }
    let ben = FakeSession::x11("6", "ben", 1003, ":2");
    logind.add(ben.clone()).await;
    assert_eq!(ids(&next_change(&mut watch).await.unwrap()), ["1", "6"]);

    // A VT switch (Active false, State online) keeps the session, as
    // loginctl's rule does; a logout that leaves processes behind (Active
    // false, State closing) drops it.
    logind.set_active(&amy, false, "online").await;
    logind.set_active(&ben, false, "closing").await;
    assert_eq!(ids(&next_change(&mut watch).await.unwrap()), ["1"]);

    // SessionRemoved: gone.
    logind.remove(&amy).await;
    assert_eq!(next_change(&mut watch).await.unwrap(), []);

    // A new session after all that is still seen.
    logind.add(FakeSession::x11("7", "cat", 1004, ":3")).await;
    assert_eq!(ids(&next_change(&mut watch).await.unwrap()), ["7"]);

    // The bus goes away: the watch says so (the service then falls back).
    bus.stop();
    assert_eq!(next_change(&mut watch).await, None);
}

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
            .args(["-displayfd", "1", "-screen", "0", "1024x768x24"])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (apt-get install -y xvfb)");
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

/// `lectern-agent service` following logind on `bus`.
struct Service {
    child: Child,
    dir: tempfile::TempDir,
}

impl Service {
    /// With `x11` helpers (else headless ones).
    fn start(bus: &Bus, x11: bool) -> Service {
        let dir = tempfile::tempdir().unwrap();
        // The helper runs as `nobody` and must reach the socket inside.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = dir.path();
        let toml = format!(
            "token_file = {:?}\nstate_dir = {:?}\nsocket = {:?}\nbackend = {:?}\nsessions = \"logind\"\nsession_poll_secs = 1\n",
            p.join("enrollment-token"),
            p.join("state"),
            p.join("run/agent.sock"),
            if x11 { "x11" } else { "headless" },
        );
        std::fs::write(p.join("agent.toml"), toml).unwrap();
        let log = std::fs::File::create(p.join("service.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lectern-agent"))
            .args(["service", "--config"])
            .arg(p.join("agent.toml"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
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

    fn status(&self) -> Option<ServiceStatus> {
        let out = Command::new(env!("CARGO_BIN_EXE_lectern-agent"))
            .args(["status", "--json", "--config"])
            .arg(self.dir.path().join("agent.toml"))
            .output()
            .unwrap();
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

    async fn wait_log(&self, what: &str) {
        for _ in 0..300 {
            if self.log().contains(what) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {what:?} in the service log:\n{}", self.log());
    }

    /// How many times the supervisor thread has gone to sleep and woken (the
    /// kernel's context switch counts for it).
    fn supervisor_wakes(&self) -> u64 {
        let tasks = PathBuf::from(format!("/proc/{}/task", self.child.id()));
        for t in std::fs::read_dir(&tasks).unwrap().flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if comm.trim() != "supervisor" {
                continue;
            }
            let status = std::fs::read_to_string(t.path().join("status")).unwrap();
            return status
                .lines()
                .filter(|l| l.contains("ctxt_switches"))
                .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        }
        panic!("no supervisor thread in {}", tasks.display());
    }

    /// Wakes of the supervisor over a quiet stretch in which nothing happens.
    async fn wakes_while_quiet(&self) -> u64 {
        let before = self.supervisor_wakes();
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.supervisor_wakes() - before
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn service_starts_and_stops_helpers_as_logind_announces_sessions() {
    if !is_root() {
        eprintln!("SKIP: starting helpers as another user needs root");
        return;
    }
    let x = Xvfb::start();
    let mut bus = Bus::start();
    let logind = FakeLogind::start(&bus).await;
    let service = Service::start(&bus, true);
    service
        .wait_log("following logind's sessions on the system bus")
        .await;
    let st = service.wait_status("service up", |_| true).await;
    assert!(st.sessions.is_empty(), "{st:?}");
    assert_eq!(service.wakes_while_quiet().await, 0, "woke with no session");

    // logind announces a session: a helper starts as its user, on its display.
    let s = FakeSession::x11("9", "nobody", 65534, &x.display);
    let before = service.supervisor_wakes();
    logind.add(s.clone()).await;
    let st = service
        .wait_status("helper connected", |st| {
            st.sessions
                .iter()
                .any(|s| s.session == "9" && s.helper_pid.is_some())
        })
        .await;
    assert_eq!(st.sessions.len(), 1, "{st:?}");
    assert_eq!(
        (
            st.sessions[0].user.as_str(),
            st.sessions[0].display.as_str()
        ),
        ("nobody", x.display.as_str())
    );
    let helper = st.sessions[0].helper_pid.unwrap();
    assert!(
        service.supervisor_wakes() > before,
        "the wake count is live"
    );
    assert_eq!(service.wakes_while_quiet().await, 0, "woke while serving");

    // A VT switch is announced but changes nothing to serve: no wake.
    logind.set_active(&s, false, "online").await;
    assert_eq!(service.wakes_while_quiet().await, 0, "woke for a VT switch");

    // logind removes it: the helper is stopped.
    logind.remove(&s).await;
    service.wait_log("session ended; stopping its helper").await;
    let st = service
        .wait_status("session gone", |st| st.sessions.is_empty())
        .await;
    assert!(st.sessions.is_empty());
    for _ in 0..300 {
        if !PathBuf::from(format!("/proc/{helper}")).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !PathBuf::from(format!("/proc/{helper}")).exists(),
        "helper {helper} still runs"
    );
    let log = service.log();
    assert!(
        !log.contains("watching its files"),
        "no fallback was used:\n{log}"
    );

    // The bus goes away: the service says so once and falls back to
    // logind's files (or, with none here, the timer).
    bus.stop();
    service
        .wait_log("lost the system bus; watching logind's files instead")
        .await;
}

#[tokio::test]
async fn without_a_bus_the_service_falls_back_and_says_so_once() {
    let mut bus = Bus::start();
    bus.stop(); // Its socket address now leads nowhere.
    let service = Service::start(&bus, false);
    service.wait_status("service up", |_| true).await;
    service
        .wait_log("cannot follow logind on the system bus")
        .await;
    // With logind's files here they are watched; without, the timer runs.
    if !std::path::Path::new("/run/systemd/sessions").is_dir() {
        service.wait_log("looking for sessions every 1 s").await;
    }
    // Several looks on the timer later, each fallback is still said once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = service.log();
    assert_eq!(log.matches("cannot follow logind").count(), 1, "{log}");
    assert!(
        log.matches("looking for sessions every").count() <= 1,
        "{log}"
    );
    assert!(!log.contains("following logind's sessions"), "{log}");
}
