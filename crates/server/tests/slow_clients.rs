//! Slow clients cannot exhaust the server. Thousands of connections trickle a
//! TLS handshake, request headers or a request body (one byte every two
//! seconds), or open the agent WebSocket and never say hello, from six
//! loopback addresses at the real `lectern-server` binary,
//! which may open fewer file descriptors than the attack has connections.
//! Meanwhile consoles log in and read the API, a classroom of enrolled agents
//! behind one address reconnects, a device enrolls, and the server's memory
//! is watched. Every slow connection must be
//! cut by the server after its deadline.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lectern_server::config::ServerConfig;
use lectern_server::connections::ConnectionLimits;
use lectern_server::init::{init, InitOptions};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const SERVER: &str = env!("CARGO_BIN_EXE_lectern-server");
const PASSWORD: &str = "correct horse battery";
/// Descriptors the server process may open: fewer than the attack's
/// connections, so a server without admission control runs out of them.
const SERVER_FDS: u64 = 2048;
/// Attackers use 127.0.0.2 ..= 127.0.0.7.
const ATTACK_ADDRESSES: u8 = 6;
const SLOTS_PER_ADDRESS: usize = 400;
/// Logged-in clients trickling a body (from 127.0.0.1).
const AUTHED_SLOTS: usize = 30;
const TRICKLE: Duration = Duration::from_secs(2);
const AGENTS: usize = 20;

fn test_limits() -> ConnectionLimits {
    ConnectionLimits {
        // More than SERVER_FDS allow: the server must fit them to its limit.
        max_connections: 3_000,
        max_pending: 600,
        max_pending_per_address: 200,
        displace_after_ms: 500,
        tls_handshake_secs: 4,
        auth_secs: 6,
        request_secs: 8,
        idle_secs: 60,
    }
}

/// The longest a slow connection may live: the longest deadline, plus
/// generous room for a loaded machine.
const CUT_WITHIN: Duration = Duration::from_secs(8 + 12);

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn raise_own_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= 4 * 1024,
        "this test needs at least 4096 open files; the hard limit is {}",
        lim.rlim_cur
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Initialises a data directory with the test's limits and starts the server
/// binary with at most `SERVER_FDS` open files.
fn start_server(data: &std::path::Path, addr: SocketAddr) -> (Kill, String) {
    let report = init(&InitOptions {
        data_dir: data.to_path_buf(),
        school: "Slow School".into(),
        admin: "admin".into(),
        password: Some(PASSWORD.into()),
        cert: None,
        names: vec![],
        listen: Some(addr),
        postgres: None,
    })
    .unwrap();
    let mut config = ServerConfig::load(data).unwrap();
    config.discovery = false;
    config.connections = test_limits();
    config.save(data).unwrap();
    let mut cmd = Command::new(SERVER);
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: SERVER_FDS,
                rlim_max: SERVER_FDS,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = Kill(cmd.spawn().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains(&format!("https://{addr}/")), "{line}");
    (child, report.fingerprint)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What the attackers saw.
#[derive(Default)]
struct Attack {
    stop: AtomicBool,
    connects: AtomicU64,
    /// Ended within 250 ms: reset at accept.
    refused: AtomicU64,
    /// Ended later: cut (or displaced) by the server.
    cut: AtomicU64,
    /// Alive now, and alive for at least one trickle interval.
    open: AtomicUsize,
    held: AtomicUsize,
    peak_held: AtomicUsize,
    /// Longest life of one connection, ms, by kind.
    longest_ms: [AtomicU64; 5],
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Handshake = 0,
    Headers = 1,
    Body = 2,
    /// Completes the agent WebSocket upgrade, then never sends a hello.
    Upgrade = 3,
    AuthedBody = 4,
}

/// Counts one attack connection as open, and as held once it survives a
/// trickle interval.
struct Open<'a> {
    attack: &'a Attack,
    held: bool,
}

impl<'a> Open<'a> {
    fn new(attack: &'a Attack) -> Self {
        attack.open.fetch_add(1, Ordering::Relaxed);
        Open {
            attack,
            held: false,
        }
    }

    fn survived(&mut self) {
        if !self.held {
            self.held = true;
            let now = self.attack.held.fetch_add(1, Ordering::Relaxed) + 1;
            self.attack.peak_held.fetch_max(now, Ordering::Relaxed);
        }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.attack.open.fetch_sub(1, Ordering::Relaxed);
        if self.held {
            self.attack.held.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Writes `head`, then (if `more`) one byte per trickle interval, until the
/// server closes.
async fn trickle<S: AsyncRead + AsyncWrite>(
    stream: S,
    head: &[u8],
    more: bool,
    open: &mut Open<'_>,
) {
    let (mut r, mut w) = tokio::io::split(stream);
    if w.write_all(head).await.is_err() || w.flush().await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + TRICKLE, TRICKLE);
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            n = r.read(&mut buf) => match n {
                // A 408 or an error page: keep reading until the server closes.
                Ok(n) if n > 0 => continue,
                _ => return,
            },
            _ = tick.tick() => {
                open.survived();
                if !more {
                    continue;
                }
                if w.write_all(b" ").await.is_err() || w.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}

struct Target {
    server: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    token: String,
}

async fn one_connection(kind: Kind, local: IpAddr, t: &Target, attack: &Attack) {
    let Ok(sock) = tokio::net::TcpSocket::new_v4() else {
        return;
    };
    if sock.bind(SocketAddr::new(local, 0)).is_err() {
        return;
    }
    let Ok(Ok(tcp)) = tokio::time::timeout(Duration::from_secs(10), sock.connect(t.server)).await
    else {
        return;
    };
    attack.connects.fetch_add(1, Ordering::Relaxed);
    let mut open = Open::new(attack);
    let head = match kind {
        // A TLS record header announcing a ClientHello that never completes.
        Kind::Handshake => {
            return trickle(tcp, &[0x16, 0x03, 0x01, 0x02, 0x00], true, &mut open).await
        }
        Kind::Headers => "GET /api/v1/devices HTTP/1.1\r\nhost: lectern\r\nx".to_string(),
        Kind::Body => "POST /api/v1/session HTTP/1.1\r\nhost: lectern\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{".to_string(),
        Kind::Upgrade => format!("GET {} HTTP/1.1\r\nhost: lectern\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", lectern_proto::AGENT_PATH),
        Kind::AuthedBody => format!("POST /api/v1/enrollment-tokens HTTP/1.1\r\nhost: lectern\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{{", t.token),
    };
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let connector = tokio_rustls::TlsConnector::from(t.tls.clone());
    if let Ok(tls) = connector.connect(name, tcp).await {
        let more = !matches!(kind, Kind::Upgrade);
        trickle(tls, head.as_bytes(), more, &mut open).await;
    }
}

/// One attacker: reconnects a few seconds after each connection ends, until stopped.
async fn attacker(kind: Kind, local: IpAddr, t: Arc<Target>, attack: Arc<Attack>, n: usize) {
    // Spread the start and the reconnects, as a patient attacker would.
    let jitter = |k: usize| Duration::from_millis((k * 7919 % 2000) as u64);
    tokio::time::sleep(jitter(n)).await;
    let mut round = 0;
    while !attack.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        one_connection(kind, local, &t, &attack).await;
        let life = began.elapsed();
        attack.longest_ms[kind as usize].fetch_max(life.as_millis() as u64, Ordering::Relaxed);
        if life < Duration::from_millis(250) {
            attack.refused.fetch_add(1, Ordering::Relaxed);
        } else {
            attack.cut.fetch_add(1, Ordering::Relaxed);
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(3) + jitter(n + round)).await;
    }
}

fn client(fingerprint: &str, local: IpAddr) -> reqwest::Client {
    let tls = lectern_agent::tls::pinned_client_config(fingerprint).unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .local_address(local)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn login(c: &reqwest::Client, server: SocketAddr) -> reqwest::Result<String> {
    let v: Value = c
        .post(format!("https://{server}/api/v1/session"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(v["token"].as_str().unwrap().to_string())
}

async fn devices(c: &reqwest::Client, server: SocketAddr, token: &str) -> reqwest::Result<Value> {
    c.get(format!("https://{server}/api/v1/devices"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
}

/// A console on a fresh connection each time (so each passes admission):
/// every tenth a new login (each costs 19 MiB of Argon2 memory, which
/// the allocator keeps, so few of them), then an authenticated GET. Returns the latency
/// of each (retries included) and how many attempts were refused.
async fn console_samples(
    server: SocketAddr,
    fingerprint: String,
    token: String,
    period: Duration,
) -> (Vec<Duration>, u32) {
    let end = Instant::now() + period;
    let (mut latencies, mut retries) = (Vec::new(), 0);
    let mut i = 0u32;
    while Instant::now() < end {
        i += 1;
        // From the agents' address and from one the attack does not use.
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, [1, 8][i as usize % 2]));
        let began = Instant::now();
        for attempt in 1.. {
            let c = client(&fingerprint, local);
            let r = async {
                let t = if i % 10 == 1 {
                    login(&c, server).await?
                } else {
                    token.clone()
                };
                devices(&c, server, &t).await
            }
            .await;
            match r {
                Ok(_) => break,
                Err(e) => {
                    eprintln!("console attempt {attempt}: {e}");
                    assert!(
                        attempt < 10,
                        "the console API failed 10 times in a row: {e}"
                    );
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        latencies.push(began.elapsed());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    (latencies, retries)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Enrolls one device during the attack (anonymous, so it competes with the
/// attackers for a pre-auth place); returns the attempts it took.
async fn enroll_during_attack(server: SocketAddr, fingerprint: &str, token: &str) -> u32 {
    let info = lectern_agent::local_device_info(Some("LATE-PC01".into()));
    for attempt in 1..=20 {
        match lectern_agent::enroll(&server.to_string(), fingerprint, token, &info).await {
            Ok(_) => return attempt,
            Err(e) => {
                eprintln!("enrollment attempt {attempt}: {e:#}");
                tokio::time::sleep(Duration::from_millis(500)).await
            }
        }
    }
    panic!("enrollment failed 20 times during the attack");
}

/// Best effort: the server's own counters (the endpoint may require a token).
async fn server_metrics(c: &reqwest::Client, server: SocketAddr, token: &str) -> String {
    let r = c
        .get(format!("https://{server}/metrics"))
        .bearer_auth(token)
        .send()
        .await;
    match r {
        Ok(r) if r.status().is_success() => r
            .text()
            .await
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("lectern_connections"))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => "(metrics unavailable)".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_cannot_exhaust_the_server() {
    raise_own_fd_limit();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let server: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (child, fingerprint) = start_server(&data, server);
    let pid = child.0.id();
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let admin = client(&fingerprint, localhost);
    let token = login(&admin, server).await.unwrap();
    let enroll_token = |uses: u32| {
        let (admin, token) = (admin.clone(), token.clone());
        async move {
            let v: Value = admin
                .post(format!("https://{server}/api/v1/enrollment-tokens"))
                .bearer_auth(&token)
                .json(&json!({"uses": uses, "label": "slow"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["token"].as_str().unwrap().to_string()
        }
    };

    // A classroom enrolls and connects, then goes away.
    let creds = tmp.path().join("agents.json");
    let sim_config = lectern_sim::SimConfig {
        server: server.to_string(),
        fingerprint: fingerprint.clone(),
        token: enroll_token(AGENTS as u32).await,
        agents: AGENTS,
        prefix: "NAT-PC".into(),
        credentials: Some(creds),
        activity_burst: 0,
    };
    let sim = lectern_sim::Simulator::start(sim_config.clone())
        .await
        .unwrap();
    assert_eq!(
        sim.wait_connected(AGENTS, Duration::from_secs(30)).await,
        AGENTS
    );
    sim.stop().await;
    let late_token = enroll_token(1).await;
    let baseline_kib = rss_kib(pid);

    // Memory, sampled throughout.
    let peak_kib = Arc::new(AtomicU64::new(baseline_kib));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, on) = (peak_kib.clone(), sampling.clone());
        tokio::spawn(async move {
            while on.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    // The attack.
    let attack = Arc::new(Attack::default());
    let target = Arc::new(Target {
        server,
        tls: lectern_agent::tls::pinned_client_config(&fingerprint).unwrap(),
        token: token.clone(),
    });
    let kinds = [Kind::Handshake, Kind::Headers, Kind::Body, Kind::Upgrade];
    let mut attackers = tokio::task::JoinSet::new();
    for a in 0..ATTACK_ADDRESSES {
        let local = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + a));
        for n in 0..SLOTS_PER_ADDRESS {
            let kind = kinds[n % kinds.len()];
            attackers.spawn(attacker(kind, local, target.clone(), attack.clone(), n));
        }
    }
    for n in 0..AUTHED_SLOTS {
        attackers.spawn(attacker(
            Kind::AuthedBody,
            localhost,
            target.clone(),
            attack.clone(),
            n,
        ));
    }
    // Let it build up: every attacker has tried, and the pool has filled.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let held_at_start = attack.held.load(Ordering::Relaxed);

    // Under attack: consoles keep working, the classroom reconnects, a device enrolls.
    let consoles = tokio::spawn(console_samples(
        server,
        fingerprint.clone(),
        token.clone(),
        Duration::from_secs(20),
    ));
    let reconnect_began = Instant::now();
    let sim = lectern_sim::Simulator::start(sim_config).await.unwrap();
    let reconnected = sim.wait_connected(AGENTS, Duration::from_secs(60)).await;
    let reconnect_took = reconnect_began.elapsed();
    let enroll_attempts = enroll_during_attack(server, &fingerprint, &late_token).await;
    let (mut latencies, retries) = consoles.await.unwrap();
    // Well past every pre-auth deadline, the authenticated agents are still there.
    let still_connected = sim.connected();
    let metrics = server_metrics(&admin, server, &token).await;

    // The attackers stop reconnecting; the server must cut what they still hold.
    attack.stop.store(true, Ordering::Relaxed);
    let drain_began = Instant::now();
    while attack.open.load(Ordering::Relaxed) > 0 && drain_began.elapsed() < CUT_WITHIN * 2 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left_open = attack.open.load(Ordering::Relaxed);
    let drain_took = drain_began.elapsed();
    let metrics_after = server_metrics(&admin, server, &token).await;
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    attackers.abort_all();
    let server_alive = child_alive(&child);
    let after = devices(&client(&fingerprint, localhost), server, &token)
        .await
        .unwrap();
    sim.stop().await;

    latencies.sort();
    let longest: Vec<u64> = attack
        .longest_ms
        .iter()
        .map(|m| m.load(Ordering::Relaxed))
        .collect();
    let peak_held = attack.peak_held.load(Ordering::Relaxed);
    let peak_mib = peak_kib.load(Ordering::Relaxed) / 1024;
    println!(
        "slow-client attack: {} attackers on {ATTACK_ADDRESSES} addresses + {AUTHED_SLOTS} logged in; \
         {} connections made, {} reset at accept, {} cut later; \
         held at once: {held_at_start} after 8 s, peak {peak_held}; \
         longest life ms (handshake, headers, body, upgrade, authed body): {longest:?}",
        ATTACK_ADDRESSES as usize * SLOTS_PER_ADDRESS,
        attack.connects.load(Ordering::Relaxed),
        attack.refused.load(Ordering::Relaxed),
        attack.cut.load(Ordering::Relaxed),
    );
    println!(
        "console during attack: {} samples (fresh connection each), p50 {:?}, p99 {:?}, max {:?}, {retries} refused attempts retried",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().unwrap(),
    );
    println!(
        "agents: {reconnected}/{AGENTS} reconnected in {reconnect_took:?}, {still_connected} still connected at the end; \
         enrollment took {enroll_attempts} attempt(s)"
    );
    println!(
        "server RSS: {} MiB before, peak {peak_mib} MiB during the attack",
        baseline_kib / 1024
    );
    println!("attack connections all closed {drain_took:?} after the attack stopped");
    println!("server counters during the attack:\n{metrics}\nafter it:\n{metrics_after}");

    assert!(server_alive, "the server died");
    assert_eq!(reconnected, AGENTS, "agents could not reconnect");
    assert_eq!(still_connected, AGENTS, "authenticated agents were cut");
    assert_eq!(after.as_array().unwrap().len(), AGENTS + 1);
    assert_eq!(
        left_open,
        0,
        "slow connections still open {:?} after the attack stopped",
        CUT_WITHIN * 2
    );
    for (kind, ms) in kinds.iter().chain([&Kind::AuthedBody]).zip(&longest) {
        assert!(
            Duration::from_millis(*ms) <= CUT_WITHIN,
            "a {kind:?} connection lived {ms} ms"
        );
    }
    // The attack did hold connections, but no more than the pre-auth budget
    // (600) and the logged-in slow bodies, with room for displaced sockets
    // still closing and connections waiting in the accept backlog. (Without
    // admission control the server holds every one it has descriptors for.)
    assert!(peak_held >= 300, "the attack never got going: {peak_held}");
    assert!(peak_held <= 600 + AUTHED_SLOTS + 200, "held {peak_held}");
    // Bounded by the admission caps, not by the attack: at most the fitted
    // 1,792 connections at ~160 KiB each (TLS and HTTP buffers, task,
    // allocator slack) plus ~100 MiB for concurrent logins (19 MiB of
    // Argon2 memory each), whatever the number of attackers.
    assert!(
        peak_mib < baseline_kib / 1024 + 1_792 * 160 / 1024 + 100,
        "server memory grew from {} to {peak_mib} MiB",
        baseline_kib / 1024
    );
}

fn child_alive(child: &Kill) -> bool {
    std::fs::read_to_string(format!("/proc/{}/status", child.0.id()))
        .map(|s| !s.contains("State:\tZ"))
        .unwrap_or(false)
}
