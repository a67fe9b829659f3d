//! Helpers for integration tests: a real server on loopback over real TLS, real
//! agents, and an HTTPS client that pins the server's certificate.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_agent::{
    enroll, run_agent, AgentConfig, ConnStatus, HeadlessDesktop, StoredCredential,
};
use lectern_server::init::{init, InitOptions};
use lectern_server::Server;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub server: Option<Server>,
    pub addr: std::net::SocketAddr,
    pub fingerprint: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_on(None).await
    }

    /// A server whose store is SQLite (`None`) or the PostgreSQL database
    /// these connection parameters name (`[cluster]`).
    pub async fn start_on(postgres: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let opts = InitOptions {
            data_dir: dir.path().join("data"),
            school: "Test School".into(),
            admin: "admin".into(),
            password: Some(PASSWORD.into()),
            cert: None,
            names: vec![],
            listen: None,
            postgres,
        };
        // Blocking, as the command line runs it (PostgreSQL's client runs
        // its own runtime).
        tokio::task::spawn_blocking(move || init(&opts))
            .await
            .unwrap()
            .unwrap();
        let server = Server::start(
            &dir.path().join("data"),
            Some("127.0.0.1:0".parse().unwrap()),
        )
        .await
        .unwrap();
        let (addr, fingerprint) = (server.addr, server.fingerprint.clone());
        TestServer {
            dir,
            server: Some(server),
            addr,
            fingerprint,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// An HTTPS client trusting only this server's certificate.
    pub fn client(&self) -> reqwest::Client {
        let tls = lectern_agent::tls::pinned_client_config(&self.fingerprint).unwrap();
        reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .build()
            .unwrap()
    }

    /// Logs in as the admin and returns a bearer token.
    pub async fn login(&self) -> String {
        self.login_as("admin", PASSWORD).await
    }

    /// Logs in as `user` of the school `init` made (named, as the console's
    /// sign-in page does once a server has several) and returns a bearer
    /// token.
    pub async fn login_as(&self, user: &str, password: &str) -> String {
        let school = home_school(&self.server().state);
        let r = self
            .client()
            .post(self.url("/api/v1/session"))
            .json(&json!({"username": user, "password": password, "school": school}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> Value {
        let r = self
            .client()
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client()
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `PUT path` with a JSON body: the status and the JSON answer (null if none).
    pub async fn put(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client()
            .put(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `DELETE path` as `token`; the status.
    pub async fn delete(&self, token: &str, path: &str) -> u16 {
        self.client()
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    pub async fn enrollment_token(&self, token: &str, uses: i64) -> String {
        let (s, v) = self
            .post(
                token,
                "/api/v1/enrollment-tokens",
                json!({"uses": uses, "label": "test"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Sends a command and waits until no target is pending; returns the record.
    pub async fn command(&self, token: &str, devices: &[i64], command: Value) -> Value {
        let (s, v) = self
            .post(
                token,
                "/api/v1/commands",
                json!({"devices": devices, "command": command}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_i64().unwrap();
        wait_for(|| async {
            let rec = self.get(token, &format!("/api/v1/commands/{id}")).await;
            (rec["summary"]["pending"] == 0).then_some(rec)
        })
        .await
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let text = self
            .client()
            .get(self.url("/metrics"))
            .bearer_auth(metrics_token(&self.data_dir()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no metric {name}"))
            .parse()
            .unwrap()
    }

    pub async fn restart(&mut self) {
        self.server.take().unwrap().stop().await;
        let s = Server::start(&self.data_dir(), Some(self.addr))
            .await
            .unwrap();
        assert_eq!(s.fingerprint, self.fingerprint);
        self.server = Some(s);
    }
}

/// Polls `f` every 50 ms for up to 20 s until it returns `Some`.
pub async fn wait_for<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct TestAgent {
    pub credential: StoredCredential,
    pub desktop: Arc<Mutex<HeadlessDesktop>>,
    pub status: watch::Receiver<ConnStatus>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl TestAgent {
    pub fn id(&self) -> i64 {
        self.credential.device_id
    }

    pub async fn wait_status(&mut self, want: impl Fn(&ConnStatus) -> bool) {
        tokio::time::timeout(Duration::from_secs(20), self.status.wait_for(|s| want(s)))
            .await
            .expect("agent status not reached")
            .unwrap();
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Enrolls a headless agent named `host` with `user` logged in, and runs it.
pub async fn start_agent(
    ts: &TestServer,
    token: &str,
    host: &str,
    user: Option<&str>,
) -> TestAgent {
    let info = lectern_agent::local_device_info(Some(host.into()));
    let credential = enroll(&ts.addr.to_string(), &ts.fingerprint, token, &info)
        .await
        .unwrap();
    run_enrolled(credential, host, user).await
}

/// Runs an already enrolled agent.
pub async fn run_enrolled(
    credential: StoredCredential,
    host: &str,
    user: Option<&str>,
) -> TestAgent {
    run_enrolled_with_policy(credential, host, user, None).await
}

/// Runs an already enrolled agent that keeps its policy in `policy_file`, and
/// waits for it to connect.
pub async fn run_enrolled_with_policy(
    credential: StoredCredential,
    host: &str,
    user: Option<&str>,
    policy_file: Option<PathBuf>,
) -> TestAgent {
    let mut a = start_with(credential, host, user, policy_file);
    a.wait_status(|s| *s == ConnStatus::Connected).await;
    a
}

thread_local! {
    /// When set, the next agent this test thread starts scans its own
    /// activity for keywords. (A test's own future is always polled on its
    /// thread, so parallel tests do not see each other's flag.)
    pub static SCAN_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Starts an agent (no user logged in) without waiting for a connection.
pub async fn start_unconnected(
    credential: StoredCredential,
    host: &str,
    policy_file: Option<PathBuf>,
) -> TestAgent {
    start_with(credential, host, None, policy_file)
}

fn start_with(
    credential: StoredCredential,
    host: &str,
    user: Option<&str>,
    policy_file: Option<PathBuf>,
) -> TestAgent {
    let info = lectern_agent::local_device_info(Some(host.into()));
    let desktop = Arc::new(Mutex::new(HeadlessDesktop::new(
        host,
        user.map(str::to_string),
    )));
    let (stop, stop_rx) = watch::channel(false);
    let (tx, status) = watch::channel(ConnStatus::Connecting);
    let config = AgentConfig {
        credential: credential.clone(),
        info,
        policy_file,
        evidence_frames: 3,
        scan_keywords: SCAN_NEXT.with(|f| f.replace(false)),
        school_choice: Default::default(),
    };
    let task = tokio::spawn(run_agent(config, desktop.clone(), stop_rx, Some(tx)));
    TestAgent {
        credential,
        desktop,
        status,
        stop,
        task,
    }
}

/// The `lectern-agent` binary, built (once per test binary) so it is current:
/// it lives in another package of the workspace, which this test run does not
/// necessarily build.
pub fn agent_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let server = PathBuf::from(env!("CARGO_BIN_EXE_lectern-server"));
            let mut cargo = std::process::Command::new(env!("CARGO"));
            cargo.args(["build", "-p", "lectern-agent"]);
            // Cargo gives this test its package's CARGO_PKG_*/CARGO_MANIFEST_* (and
            // more); build scripts that watch those (ring's) would see a change and
            // rebuild, here and again in the next plain build.
            for (key, _) in std::env::vars_os() {
                let k = key.to_string_lossy();
                if [
                    "CARGO_PKG_",
                    "CARGO_MANIFEST_",
                    "CARGO_CRATE_",
                    "CARGO_BIN_",
                ]
                .iter()
                .any(|p| k.starts_with(p))
                    || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*k)
                {
                    cargo.env_remove(&key);
                }
            }
            let ok = cargo.status().expect("running cargo").success();
            assert!(ok, "building lectern-agent failed");
            server.parent().unwrap().join("lectern-agent")
        })
        .clone()
}

/// The console's live WebSocket (`/api/v1/stream`), authenticated with `token`.
pub async fn console_stream(
    ts: &TestServer,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tls = lectern_agent::tls::pinned_client_config(&ts.fingerprint).unwrap();
    let tcp = tokio::net::TcpStream::connect(ts.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .unwrap();
    let mut req = format!("wss://{}/api/v1/stream", ts.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::client_async(req, stream)
        .await
        .unwrap()
        .0
}

/// The `/metrics` bearer token `init` wrote into the data directory's server.toml.
pub fn metrics_token(data_dir: &std::path::Path) -> String {
    lectern_server::config::ServerConfig::load(data_dir)
        .unwrap()
        .metrics_token
}

impl TestServer {
    /// A server whose `server.toml`, as `init` wrote it, is first changed by
    /// `edit` (limits, timeouts and other settings a test needs).
    pub async fn start_with_config(edit: impl FnOnce(&mut toml::Value)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        init(&InitOptions {
            data_dir: data.clone(),
            school: "Test School".into(),
            admin: "admin".into(),
            password: Some(PASSWORD.into()),
            cert: None,
            names: vec![],
            listen: None,
            postgres: None,
        })
        .unwrap();
        let path = data.join("server.toml");
        let mut config: toml::Value =
            toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut config);
        std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
        let server = Server::start(&data, Some("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let (addr, fingerprint) = (server.addr, server.fingerprint.clone());
        TestServer {
            dir,
            server: Some(server),
            addr,
            fingerprint,
        }
    }
}

/// Sets `[devices.defaults]` in a `server.toml` (per-device limits).
pub fn set_device_defaults(config: &mut toml::Value, defaults: Value) {
    let defaults: toml::Value = serde_json::from_value(defaults).unwrap();
    config["devices"]
        .as_table_mut()
        .unwrap()
        .insert("defaults".into(), defaults);
}

/// Enrolls a device named `host` and returns its credential.
pub async fn enroll_as(
    ts: &TestServer,
    token: &str,
    host: &str,
) -> lectern_agent::StoredCredential {
    let info = lectern_agent::local_device_info(Some(host.into()));
    lectern_agent::enroll(&ts.addr.to_string(), &ts.fingerprint, token, &info)
        .await
        .unwrap()
}

/// An agent session driven by hand (to leave commands unanswered, flood, or
/// speak the protocol badly), past the server's welcome, which must be its
/// first control frame.
pub async fn raw_session(
    ts: &TestServer,
    cred: &lectern_agent::StoredCredential,
    host: &str,
    capabilities: Vec<lectern_proto::Capability>,
) -> lectern_agent::AgentStream {
    use futures_util::SinkExt;
    let mut ws = lectern_agent::connect(&ts.addr.to_string(), &ts.fingerprint)
        .await
        .unwrap();
    let hello = lectern_proto::AgentMsg::Hello(lectern_proto::Hello {
        protocol_version: lectern_proto::PROTOCOL_VERSION,
        auth: lectern_proto::Auth::Device {
            device_id: cred.device_id,
            secret: cred.secret.clone(),
        },
        info: lectern_agent::local_device_info(Some(host.into())),
        capabilities,
        state: Default::default(),
    });
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        hello.encode(),
    ))
    .await
    .unwrap();
    match next_server_msg(&mut ws).await {
        lectern_proto::ServerMsg::Welcome { .. } => ws,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// The next control frame from the server (binary frames skipped), within 20 s.
pub async fn next_server_msg(ws: &mut lectern_agent::AgentStream) -> lectern_proto::ServerMsg {
    use futures_util::StreamExt;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame from the server within 20 s")
            .expect("the session is open")
            .expect("a good frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            return lectern_proto::ServerMsg::decode(&t).unwrap();
        }
    }
}

/// A computer group `name` whose members are the hostnames matching `pattern`.
pub async fn computer_group(ts: &TestServer, token: &str, name: &str, pattern: &str) -> i64 {
    let (s, g) = ts
        .post(
            token,
            "/api/v1/groups",
            json!({"name": name, "kind": "computer", "priority": "low",
                   "members": [{"type": "hostname", "value": pattern}]}),
        )
        .await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

/// The id of the built-in Entire Network group.
pub async fn entire_network(ts: &TestServer, token: &str) -> i64 {
    ts.get(token, "/api/v1/groups")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Entire Network")
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

/// Creates teacher `name` with `features`, access to `groups` and maybe the
/// bypass right, and logs in.
pub async fn teacher_with_access(
    ts: &TestServer,
    admin: &str,
    name: &str,
    features: &[&str],
    groups: &[(i64, &str)],
    bypass: bool,
) -> String {
    let password = format!("{name}-password");
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": name, "password": password, "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let access: serde_json::Map<String, Value> = groups
        .iter()
        .map(|(g, a)| (g.to_string(), json!(a)))
        .collect();
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "user", "value": name}, "features": features,
                   "group_access": access, "bypass_privacy": bypass}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, &password).await
}

/// Signs in to `school` (or the server's first when `None`): the token,
/// or the status.
pub async fn sign_in_to(
    ts: &TestServer,
    user: &str,
    password: &str,
    school: Option<i64>,
) -> Result<String, u16> {
    let r = ts
        .client()
        .post(ts.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password, "school": school}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status != 200 {
        return Err(status);
    }
    let v: Value = r.json().await.unwrap();
    Ok(v["token"].as_str().unwrap().to_string())
}

/// Registers a device named `host` with `code`; the server's refusal code
/// if it refuses.
pub async fn try_register(
    ts: &TestServer,
    code: &str,
    host: &str,
) -> Result<lectern_agent::StoredCredential, lectern_proto::ErrorCode> {
    let info = lectern_agent::local_device_info(Some(host.into()));
    lectern_agent::register(
        &ts.addr.to_string(),
        &ts.fingerprint,
        &lectern_agent::Registration::SchoolCode(code.into()),
        &info,
    )
    .await
    .map_err(
        |e| match e.downcast_ref::<lectern_agent::HandshakeError>() {
            Some(lectern_agent::HandshakeError::Refused { code, .. }) => *code,
            _ => panic!("not a refusal: {e:#}"),
        },
    )
}

/// Another school in the server's store (made there: there is no route
/// that makes one), with an administrator `admin`; its id.
pub fn second_school(ts: &TestServer, name: &str, admin: &str, password: &str) -> i64 {
    use lectern_store::Store;
    let store = lectern_store::SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    let school = store.create_school(name).unwrap();
    store
        .create_user(school, admin, password, lectern_store::Role::Admin)
        .unwrap();
    school
}

/// The school `init` made: the test server's first (and often only) school.
/// The server itself keeps no such default; tests name the school they mean.
#[allow(dead_code)]
pub fn home_school(st: &lectern_server::state::AppState) -> i64 {
    // On a thread outside the test's runtime: PostgreSQL's client blocks on
    // a runtime of its own, which cannot start inside another.
    std::thread::scope(|s| s.spawn(|| st.store.first_school()).join())
        .expect("the store call ran")
        .expect("the store answers")
        .expect("init made a school")
        .id
}
