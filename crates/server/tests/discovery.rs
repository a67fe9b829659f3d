//! Server discovery: the UDP responder on loopback (malformed datagrams, rate
//! limit, `discovery = false`), the DNS and DNS-SD steps against a real TLS
//! server with an injected resolver and a tiny DNS server, and the broadcast
//! across real network namespaces (a veth pair, 10.77.0.1 ↔ 10.77.0.2) with the
//! real `lectern-server` and `lectern-agent` binaries.
//!
//! The namespace tests need root (or passwordless sudo) and iproute2's `ip`;
//! without them they fail with a message saying so, rather than pass unseen.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{agent_bin, TestServer};
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use lectern_agent::discovery::{Resolve, ResolveFuture};
use lectern_agent::{discover, DiscoveryOptions, Method};
use lectern_proto::discovery::{DiscoveryAnswer, DiscoveryMsg, DiscoveryQuery};
use tokio::net::UdpSocket;

const SERVER: &str = env!("CARGO_BIN_EXE_lectern-server");

// ---------------------------------------------------------------------------
// The responder on loopback

/// Sends `bytes` and returns the datagram that comes back within 400 ms, if any.
async fn exchange(socket: &UdpSocket, to: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    socket.send_to(bytes, to).await.unwrap();
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(Duration::from_millis(400), socket.recv_from(&mut buf)).await {
        Ok(Ok((len, _))) => Some(buf[..len].to_vec()),
        _ => None,
    }
}

fn query() -> DiscoveryQuery {
    DiscoveryQuery::new(rand::random())
}

#[tokio::test]
async fn malformed_datagrams_get_no_answer_and_good_ones_still_do() {
    let ts = TestServer::start().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = ts.addr;
    let mut oversized = serde_json::to_value(DiscoveryMsg::Query(query())).unwrap();
    oversized["padding"] = "x".repeat(600).into();
    let mut wrong_magic = serde_json::to_value(DiscoveryMsg::Query(query())).unwrap();
    wrong_magic["magic"] = "someone-else".into();
    let stray_answer =
        DiscoveryMsg::Answer(DiscoveryAnswer::new(&query(), 1, "Evil", &"ee".repeat(32)));
    let random: Vec<u8> = (0..300).map(|_| rand::random()).collect();
    let bad: Vec<Vec<u8>> = vec![
        random,
        Vec::new(),
        vec![b'{'; 65_000],
        serde_json::to_vec(&oversized).unwrap(),
        serde_json::to_vec(&wrong_magic).unwrap(),
        stray_answer.encode(),
        br#"{"type":"query","magic":"lectern-discovery","version":1,"nonce":"short"}"#.to_vec(),
    ];
    for b in &bad {
        assert_eq!(
            exchange(&socket, to, b).await,
            None,
            "answered {:?}",
            String::from_utf8_lossy(&b[..b.len().min(80)])
        );
    }
    let q = query();
    let reply = exchange(&socket, to, &DiscoveryMsg::Query(q.clone()).encode())
        .await
        .expect("no answer to a good query after the bad ones");
    match DiscoveryMsg::decode(&reply).unwrap() {
        DiscoveryMsg::Answer(a) => {
            assert_eq!(a.nonce, q.nonce);
            assert_eq!(a.port, ts.addr.port());
            assert_eq!(a.school, "Test School");
            assert_eq!(a.fingerprint, ts.fingerprint);
        }
        other => panic!("{other:?}"),
    }
    // And the HTTPS side is unharmed.
    assert_eq!(
        ts.client()
            .get(ts.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn answers_are_rate_limited_per_source() {
    let ts = TestServer::start().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..30 {
        socket
            .send_to(&DiscoveryMsg::Query(query()).encode(), ts.addr)
            .await
            .unwrap();
    }
    let mut answers = 0;
    let mut buf = vec![0u8; 2048];
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(400), socket.recv_from(&mut buf)).await
    {
        answers += 1;
    }
    assert!(
        (1..=6).contains(&answers),
        "{answers} answers to 30 queries"
    );
}

#[tokio::test]
async fn discovery_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    lectern_server::init::init(&lectern_server::init::InitOptions {
        data_dir: data.clone(),
        school: "Quiet School".into(),
        admin: "admin".into(),
        password: Some(common::PASSWORD.into()),
        cert: None,
        names: vec![],
        listen: None,
        postgres: None,
    })
    .unwrap();
    let text = std::fs::read_to_string(data.join("server.toml")).unwrap();
    assert!(text.contains("discovery = true"), "{text}");
    std::fs::write(
        data.join("server.toml"),
        text.replace("discovery = true", "discovery = false"),
    )
    .unwrap();
    let server = lectern_server::Server::start(&data, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let q = DiscoveryMsg::Query(query()).encode();
    assert_eq!(exchange(&socket, server.addr, &q).await, None);
    server.stop().await;
}

// ---------------------------------------------------------------------------
// Steps 1-3 with a real TLS server on loopback

/// A resolver that knows only the names it is given.
struct MapResolver(HashMap<String, IpAddr>);

impl Resolve for MapResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move {
            match self.0.get(host) {
                Some(ip) => Ok(vec![SocketAddr::new(*ip, port)]),
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "unknown host",
                )),
            }
        })
    }
}

fn options(ts: &TestServer, methods: &[Method], names: &[&str]) -> DiscoveryOptions {
    DiscoveryOptions {
        methods: methods.to_vec(),
        server_file: "/nonexistent/lectern/server".into(),
        resolv_conf: "/nonexistent/resolv.conf".into(),
        port: ts.addr.port(),
        step_timeout: Duration::from_secs(2),
        verify_timeout: Duration::from_secs(5),
        resolver: Arc::new(MapResolver(
            names
                .iter()
                .map(|n| (n.to_string(), ts.addr.ip()))
                .collect(),
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn dns_names_are_verified_over_tls() {
    let ts = TestServer::start().await;
    // Only the second name exists: the step goes on to it.
    let mut opts = options(&ts, &[Method::DnsName], &["lectern_server"]);
    opts.pin = Some(ts.fingerprint.to_uppercase());
    let found = discover(&opts).await.unwrap();
    assert_eq!(found.addr, format!("lectern_server:{}", ts.addr.port()));
    assert_eq!(found.method, Method::DnsName);
    assert_eq!(found.fingerprint.as_deref(), Some(ts.fingerprint.as_str()));

    // Without a pin nothing vouches for the certificate: found, but no fingerprint.
    opts.pin = None;
    let found = discover(&opts).await.unwrap();
    assert_eq!(found.fingerprint, None);

    // A server that does not present the pinned certificate is not used.
    opts.pin = Some("ab".repeat(32));
    let err = discover(&opts).await.unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    assert!(err.contains("lectern-server: not found"), "{err}");
}

#[tokio::test]
async fn the_file_comes_first() {
    let ts = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server");
    std::fs::write(&file, format!("# the server\n{}\n", ts.addr)).unwrap();
    let mut opts = options(&ts, &Method::ALL, &["lectern-server"]);
    opts.server_file = file;
    opts.pin = Some(ts.fingerprint.clone());
    // Broadcast to a silent loopback socket, should it ever get that far.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    opts.broadcast_targets = vec![silent.local_addr().unwrap()];
    let found = discover(&opts).await.unwrap();
    assert_eq!(found.method, Method::File);
    assert_eq!(found.addr, ts.addr.to_string());
}

/// A tiny DNS server on loopback serving `_lectern._tcp.school.test`: an SRV
/// record pointing at `lectern.school.test:port` (address in the additional
/// section) and a TXT record `fp=<fingerprint>`.
async fn dns_server(port: u16, fingerprint: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let service = Name::from_ascii("_lectern._tcp.school.test.").unwrap();
        let target = Name::from_ascii("lectern.school.test.").unwrap();
        let mut buf = vec![0u8; 4096];
        loop {
            let (len, peer) = socket.recv_from(&mut buf).await.unwrap();
            let Ok(q) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.add_query(q.queries[0].clone());
            let name = q.queries[0].name().clone();
            if name != service {
                r.metadata.response_code = ResponseCode::NXDomain;
            } else if q.queries[0].query_type() == RecordType::SRV {
                r.add_answer(Record::from_rdata(
                    name,
                    60,
                    RData::SRV(SRV::new(0, 0, port, target.clone())),
                ));
                r.add_additional(Record::from_rdata(
                    target.clone(),
                    60,
                    RData::A(A::new(127, 0, 0, 1)),
                ));
            } else if q.queries[0].query_type() == RecordType::TXT {
                r.add_answer(Record::from_rdata(
                    name,
                    60,
                    RData::TXT(TXT::new(vec![format!("fp={fingerprint}")])),
                ));
            }
            socket.send_to(&r.to_vec().unwrap(), peer).await.unwrap();
        }
    });
    (addr, task)
}

#[tokio::test]
async fn dns_sd_finds_and_vouches_for_the_server() {
    let ts = TestServer::start().await;
    let (dns, task) = dns_server(ts.addr.port(), ts.fingerprint.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("resolv.conf");
    std::fs::write(&conf, "nameserver 127.0.0.1\nsearch school.test\n").unwrap();
    let mut opts = options(&ts, &[Method::DnsName, Method::DnsSd], &[]);
    opts.resolv_conf = conf;
    opts.dns_port = dns.port();
    let found = discover(&opts).await.unwrap();
    assert_eq!(found.method, Method::DnsSd);
    assert_eq!(
        found.addr,
        format!("lectern.school.test:{}", ts.addr.port())
    );
    // No pin: the TXT record's fingerprint, checked against the real certificate.
    assert_eq!(found.fingerprint.as_deref(), Some(ts.fingerprint.as_str()));
    task.abort();

    // A TXT fingerprint the certificate does not have: not verified.
    let (dns, task) = dns_server(ts.addr.port(), "0".repeat(64)).await;
    opts.dns_port = dns.port();
    let err = discover(&opts).await.unwrap_err().to_string();
    assert!(err.contains("does not match"), "{err}");
    task.abort();
}

// ---------------------------------------------------------------------------
// The broadcast across network namespaces

/// How to run `ip` as root: `Ok(false)` directly (we are root), `Ok(true)`
/// through `sudo -n`, `Err` saying what is missing.
fn root_access() -> &'static Result<bool, String> {
    static HOW: std::sync::OnceLock<Result<bool, String>> = std::sync::OnceLock::new();
    HOW.get_or_init(|| {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| e.to_string())?;
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        if !root
            && !Command::new("sudo")
                .args(["-n", "true"])
                .status()
                .is_ok_and(|s| s.success())
        {
            return Err(
                "the discovery namespace tests need root or passwordless sudo \
                        (they create network namespaces with `ip netns`); run them as root, \
                        e.g. through scripts/test-all.sh"
                    .into(),
            );
        }
        let ip = if root {
            Command::new("ip").arg("-V").output()
        } else {
            Command::new("sudo").args(["-n", "ip", "-V"]).output()
        };
        if !ip.is_ok_and(|o| o.status.success()) {
            return Err("the discovery namespace tests need iproute2's `ip` \
                        (apt-get install iproute2; scripts/test-all.sh installs it)"
                .into());
        }
        Ok(!root)
    })
}

/// `ip`, run as root. Panics with what is missing when that cannot be done.
fn ip_command() -> Command {
    match root_access() {
        Ok(true) => {
            let mut c = Command::new("sudo");
            c.args(["-n", "ip"]);
            c
        }
        Ok(false) => Command::new("ip"),
        Err(e) => panic!("{e}"),
    }
}

fn ip(args: &[&str]) {
    let out = ip_command().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two namespaces joined by a veth pair: `server` with 10.77.0.1/24 and `agent`
/// with 10.77.0.2/24 (broadcast 10.77.0.255). Dropping it deletes both (and
/// with them the veth pair), also when a test fails.
struct NetPair {
    server: String,
    agent: String,
}

impl NetPair {
    fn new() -> NetPair {
        static N: AtomicUsize = AtomicUsize::new(0);
        // Fail here, with the reason, before there is anything to clean up.
        drop(ip_command());
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = format!("{:x}{n}", std::process::id());
        let pair = NetPair {
            server: format!("lectern-s-{id}"),
            agent: format!("lectern-a-{id}"),
        };
        // Interface names are at most 15 bytes.
        let (vs, va) = (format!("lvs{id}"), format!("lva{id}"));
        ip(&["netns", "add", &pair.server]);
        ip(&["netns", "add", &pair.agent]);
        ip(&["link", "add", &vs, "type", "veth", "peer", "name", &va]);
        ip(&["link", "set", &vs, "netns", &pair.server]);
        ip(&["link", "set", &va, "netns", &pair.agent]);
        for (ns, dev, addr) in [
            (&pair.server, &vs, "10.77.0.1/24"),
            (&pair.agent, &va, "10.77.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", addr, "brd", "+", "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    /// A command running `program` inside namespace `ns`.
    fn exec(ns: &str, program: &Path) -> Command {
        let mut c = ip_command();
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // Never panic here: this may run while a failed test unwinds.
        if root_access().is_ok() {
            for ns in [&self.server, &self.agent] {
                let _ = ip_command().args(["netns", "del", ns]).status();
            }
        }
    }
}

/// A `lectern-server serve` process, killed on drop.
struct ServerProc {
    child: Child,
    data: PathBuf,
    fingerprint: String,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        // Under sudo the child is sudo itself; it passes the signal on.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Initializes a data directory and serves it on 0.0.0.0:30016 inside `ns`.
fn start_server(ns: &str, dir: &Path) -> ServerProc {
    let data = dir.join("server");
    let out = run_ok(
        Command::new(SERVER)
            .args([
                "init",
                "--school",
                "Netns School",
                "--password",
                common::PASSWORD,
            ])
            .arg("--data-dir")
            .arg(&data),
    );
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("Certificate SHA-256 fingerprint (agents pin this): "))
        .unwrap()
        .to_string();
    let mut child = NetPair::exec(ns, Path::new(SERVER))
        .args(["serve", "--listen", "0.0.0.0:30016", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The first line comes once HTTPS and discovery are both listening.
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("https://0.0.0.0:30016/"), "{line:?}");
    ServerProc {
        child,
        data,
        fingerprint,
    }
}

/// `lectern-agent ARGS` inside the agent namespace, with discovery kept away
/// from this machine's own configuration (no file, an empty resolv.conf).
fn agent(net: &NetPair, dir: &Path, args: &[&str]) -> Output {
    let empty = dir.join("resolv.conf");
    std::fs::write(&empty, "").unwrap();
    NetPair::exec(&net.agent, &agent_bin())
        .args(args)
        .arg("--resolv-conf")
        .arg(&empty)
        .args(["--step-timeout-ms", "2000"])
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn broadcast_finds_the_server_across_namespaces() {
    let tmp = tempfile::tempdir().unwrap();
    let net = NetPair::new();
    let server = start_server(&net.server, tmp.path());
    let no_file = tmp.path().join("no-server-file");
    let no_file = no_file.to_str().unwrap();

    // No pin: the answer's fingerprint, verified over TLS.
    let o = agent(&net, tmp.path(), &["discover", "--server-file", no_file]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains("broadcast: 10.77.0.1:30016 (school \"Netns School\"): TLS verified"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "found 10.77.0.1:30016 via broadcast fingerprint {}",
            server.fingerprint
        )),
        "{out}"
    );

    // Pinned to this server: the same.
    let o = agent(
        &net,
        tmp.path(),
        &[
            "discover",
            "--server-file",
            no_file,
            "--methods",
            "broadcast",
            "--fingerprint",
            &server.fingerprint,
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("found 10.77.0.1:30016 via broadcast"), "{out}");
}

#[test]
fn a_pinned_other_fingerprint_makes_the_answer_ignored() {
    let tmp = tempfile::tempdir().unwrap();
    let net = NetPair::new();
    let server = start_server(&net.server, tmp.path());
    let other = "0123456789abcdef".repeat(4);
    let no_file = tmp.path().join("no-server-file");
    let o = agent(
        &net,
        tmp.path(),
        &[
            "discover",
            "--server-file",
            no_file.to_str().unwrap(),
            "--fingerprint",
            &other,
        ],
    );
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "broadcast: ignored the answer from 10.77.0.1:30016: its certificate fingerprint {} \
             does not match the pinned {other}",
            server.fingerprint
        )),
        "{out}"
    );
    assert!(err.contains("no Lectern server found"), "{err}");
    assert!(!out.contains("found 10.77.0.1"), "{out}");
}

#[test]
fn the_fixed_address_file_wins_over_broadcast() {
    let tmp = tempfile::tempdir().unwrap();
    let net = NetPair::new();
    let server = start_server(&net.server, tmp.path());
    let file = tmp.path().join("server-file");
    // No port: 30016 is the default.
    std::fs::write(&file, "10.77.0.1\n").unwrap();
    let o = agent(
        &net,
        tmp.path(),
        &[
            "discover",
            "--server-file",
            file.to_str().unwrap(),
            "--methods",
            "file,broadcast",
            "--fingerprint",
            &server.fingerprint,
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "found 10.77.0.1:30016 via file fingerprint {}",
            server.fingerprint
        )),
        "{out}"
    );
}

#[test]
fn enroll_without_server_discovers_it() {
    let tmp = tempfile::tempdir().unwrap();
    let net = NetPair::new();
    let server = start_server(&net.server, tmp.path());
    let token = run_ok(
        Command::new(SERVER)
            .args(["token", "create", "--uses", "2"])
            .arg("--data-dir")
            .arg(&server.data),
    )
    .trim()
    .to_string();
    let no_file = tmp.path().join("no-server-file");
    let no_file = no_file.to_str().unwrap();

    // Pinned.
    let state = tmp.path().join("agent1");
    let o = agent(
        &net,
        tmp.path(),
        &[
            "enroll",
            "--token",
            &token,
            "--hostname",
            "NETNS-PC01",
            "--fingerprint",
            &server.fingerprint,
            "--server-file",
            no_file,
            "--methods",
            "broadcast",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("enrolled NETNS-PC01"), "{out}");
    let cred: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("credential.json")).unwrap())
            .unwrap();
    assert_eq!(cred["server"], "10.77.0.1:30016");
    assert_eq!(cred["fingerprint"], server.fingerprint.as_str());

    // Neither --fingerprint nor --trust-on-first-use: refused before any traffic.
    let o = agent(
        &net,
        tmp.path(),
        &["enroll", "--token", &token, "--server-file", no_file],
    );
    assert!(!o.status.success());

    // Trust on first use, said explicitly.
    let state = tmp.path().join("agent2");
    let o = agent(
        &net,
        tmp.path(),
        &[
            "enroll",
            "--token",
            &token,
            "--hostname",
            "NETNS-PC02",
            "--trust-on-first-use",
            "--server-file",
            no_file,
            "--methods",
            "broadcast",
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(err.contains("on first use"), "{err}");
    let cred: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("credential.json")).unwrap())
            .unwrap();
    assert_eq!(cred["fingerprint"], server.fingerprint.as_str());
}
