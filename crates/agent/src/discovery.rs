//! Finding the school's server when the agent is not told its address.
//!
//! [`discover`] tries, in this fixed order, and stops at the first server it can
//! verify:
//!
//! 1. **file**: a fixed-address file (default `/etc/lectern/server`;
//!    `%ProgramData%\Lectern\server` on Windows, see [`crate::platform`]), one line
//!    `host[:port]`;
//! 2. **dns**: the names `lectern-server`, then `lectern_server`, through the
//!    system resolver;
//! 3. **dns-sd**: SRV (and TXT, for an optional `fp=<sha256 hex>`) records of
//!    `_lectern._tcp.<domain>` for each search domain, asked of the name
//!    servers over UDP; both come from `/etc/resolv.conf`, on Windows from the
//!    system's DNS settings unless an administrator wrote
//!    `%ProgramData%\Lectern\resolv.conf` ([`crate::platform::resolver_config`]);
//! 4. **broadcast**: a "who is the Lectern server" datagram
//!    ([`lectern_proto::discovery`]) to UDP port 30016 on every IPv4 interface
//!    (each one's directed broadcast address, and 255.255.255.255).
//!
//! The port is 30016 unless the file or the SRV record says otherwise. Every
//! candidate is verified by a real TLS handshake before it is used: its certificate
//! must match the pin when there is one, else the fingerprint its source
//! advertised (broadcast answer, DNS-SD TXT). Broadcast answers and TXT records
//! whose fingerprint differs from the pin are ignored and logged, so a forged
//! answer cannot redirect a pinned agent. Without a pin, an advertised fingerprint
//! is only trust on first use: the caller decides whether to accept it
//! (`lectern-agent enroll --trust-on-first-use`).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use futures_util::future::join_all;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use lectern_proto::discovery::{DiscoveryMsg, DiscoveryQuery, MAX_DISCOVERY_DATAGRAM};
use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::tls::normalize_fingerprint;

/// The DNS names tried in step 2, in order.
pub const DNS_NAMES: [&str; 2] = ["lectern-server", "lectern_server"];
/// The DNS-SD service asked for in step 3.
pub const DNS_SD_SERVICE: &str = "_lectern._tcp";

/// How a server was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The fixed-address file.
    File,
    /// The DNS names `lectern-server` / `lectern_server`.
    DnsName,
    /// DNS-SD: SRV records of `_lectern._tcp` in the search domains.
    DnsSd,
    /// The UDP broadcast.
    Broadcast,
}

impl Method {
    /// Every method, in the order discovery tries them.
    pub const ALL: [Method; 4] = [
        Method::File,
        Method::DnsName,
        Method::DnsSd,
        Method::Broadcast,
    ];

    /// The method's name on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Method::File => "file",
            Method::DnsName => "dns",
            Method::DnsSd => "dns-sd",
            Method::Broadcast => "broadcast",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown discovery method {s:?} (file, dns, dns-sd, broadcast)"))
    }
}

/// A boxed future, as [`Resolve`] returns.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>>;

/// Turns a host name into addresses. Discovery uses it for the DNS names, the
/// file's host and SRV targets; tests substitute their own.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` with `port`.
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a>;
}

/// The system resolver (`getaddrinfo` through tokio's `lookup_host`): hosts file,
/// DNS, mDNS, whatever the machine is set up for.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// What discovery does and where it looks.
#[derive(Clone)]
pub struct DiscoveryOptions {
    /// The certificate fingerprint to pin, if known: candidates must present it,
    /// and broadcast answers or TXT records advertising another are ignored.
    pub pin: Option<String>,
    /// The steps to try; they always run in [`Method::ALL`]'s order.
    pub methods: Vec<Method>,
    /// The fixed-address file.
    pub server_file: PathBuf,
    /// The names tried in the DNS step.
    pub dns_names: Vec<String>,
    /// Where DNS-SD reads search domains and name servers (resolv.conf syntax).
    pub resolv_conf: PathBuf,
    /// When `resolv_conf` does not exist, ask the operating system instead
    /// (Windows: its adapters' DNS servers and suffixes; Linux has nothing
    /// else to ask). On by default; tests turn it off to stay away from the
    /// machine's own settings.
    pub system_dns: bool,
    /// UDP port of those name servers (53; tests use another).
    pub dns_port: u16,
    /// The port used when the file or a record names none, and the broadcast port.
    pub port: u16,
    /// Where the broadcast goes; empty: every IPv4 interface's broadcast address
    /// and 255.255.255.255, at `port`.
    pub broadcast_targets: Vec<SocketAddr>,
    /// How long each step may take (the broadcast listens this long at most).
    pub step_timeout: Duration,
    /// How long verifying one candidate over TLS may take.
    pub verify_timeout: Duration,
    /// Resolves host names.
    pub resolver: Arc<dyn Resolve>,
}

impl Default for DiscoveryOptions {
    fn default() -> Self {
        DiscoveryOptions {
            pin: None,
            methods: Method::ALL.to_vec(),
            server_file: crate::platform::server_file(),
            dns_names: DNS_NAMES.iter().map(|s| s.to_string()).collect(),
            resolv_conf: crate::platform::resolv_conf(),
            system_dns: true,
            dns_port: 53,
            port: lectern_proto::DEFAULT_PORT,
            broadcast_targets: Vec::new(),
            step_timeout: Duration::from_secs(3),
            verify_timeout: Duration::from_secs(5),
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl fmt::Debug for DiscoveryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryOptions")
            .field("pin", &self.pin)
            .field("methods", &self.methods)
            .field("server_file", &self.server_file)
            .field("resolv_conf", &self.resolv_conf)
            .field("system_dns", &self.system_dns)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The server discovery settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// Address to connect to and store, `host:port`.
    pub addr: String,
    /// The fingerprint its certificate was verified against: the pin, else the
    /// one its source advertised (trust on first use). `None` when there was no
    /// pin and the source advertised none (file, DNS name, SRV without TXT): the
    /// TLS handshake then proved only that a TLS server answers there.
    pub fingerprint: Option<String>,
    /// Which step found it.
    pub method: Method,
}

/// A server some step pointed at, before verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The step that found it.
    pub method: Method,
    /// `host:port` as it would be stored.
    pub addr: String,
    /// Host name (or address) for TLS server name indication.
    pub host: String,
    /// The addresses to try.
    pub connect: Vec<SocketAddr>,
    /// Fingerprint advertised by the source (broadcast answer, TXT record).
    pub fingerprint: Option<String>,
    /// School name from a broadcast answer.
    pub school: Option<String>,
}

/// A candidate and how its verification went.
#[derive(Debug, Clone)]
pub struct CheckedCandidate {
    /// The candidate.
    pub candidate: Candidate,
    /// The certificate's fingerprint when it was accepted, else why not.
    pub result: Result<String, String>,
}

/// Everything [`survey`] saw, and what [`discover`] would have chosen.
#[derive(Debug, Clone)]
pub struct Survey {
    /// One report per enabled step, in order.
    pub steps: Vec<StepReport>,
    /// The first verified candidate, as [`discover`] returns it.
    pub found: Option<Discovered>,
}

/// What one step found, for `lectern-agent discover`.
#[derive(Debug, Clone)]
pub struct StepReport {
    /// The step.
    pub method: Method,
    /// What it noticed along the way: missing file, failed lookups, ignored answers.
    pub notes: Vec<String>,
    /// Its candidates, each verified.
    pub candidates: Vec<CheckedCandidate>,
}

#[derive(Debug, Default)]
struct StepOutcome {
    candidates: Vec<Candidate>,
    notes: Vec<String>,
}

impl StepOutcome {
    fn note(&mut self, method: Method, note: String) {
        tracing::info!("discovery ({method}): {note}");
        self.notes.push(note);
    }
}

fn normalized_pin(opts: &DiscoveryOptions) -> anyhow::Result<Option<String>> {
    opts.pin.as_deref().map(normalize_fingerprint).transpose()
}

fn enabled(opts: &DiscoveryOptions) -> impl Iterator<Item = Method> + '_ {
    Method::ALL.into_iter().filter(|m| opts.methods.contains(m))
}

/// Finds the server: runs the enabled steps in order and returns the first
/// candidate that passes TLS verification. The error lists what every step saw.
pub async fn discover(opts: &DiscoveryOptions) -> anyhow::Result<Discovered> {
    let pin = normalized_pin(opts)?;
    let mut seen = Vec::new();
    for method in enabled(opts) {
        tracing::info!("discovery: trying {method}");
        let outcome = run_step(method, opts, pin.as_deref()).await;
        seen.extend(outcome.notes.iter().map(|n| format!("{method}: {n}")));
        for c in outcome.candidates {
            match verify(&c, pin.as_deref(), opts).await {
                Ok(_) => {
                    tracing::info!(addr = %c.addr, "discovery: found the server via {method}");
                    return Ok(Discovered {
                        fingerprint: pin.clone().or(c.fingerprint),
                        addr: c.addr,
                        method,
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        "discovery ({method}): {} failed verification: {e:#}",
                        c.addr
                    );
                    seen.push(format!("{method}: {}: {e:#}", c.addr));
                }
            }
        }
    }
    if seen.is_empty() {
        seen.push("no discovery step enabled".into());
    }
    anyhow::bail!("no Lectern server found: {}", seen.join("; "))
}

/// Runs every enabled step to the end and verifies every candidate, for admins
/// who want to see what each step finds (`lectern-agent discover`).
pub async fn survey(opts: &DiscoveryOptions) -> anyhow::Result<Survey> {
    let pin = normalized_pin(opts)?;
    let mut steps = Vec::new();
    let mut found = None;
    for method in enabled(opts) {
        let outcome = run_step(method, opts, pin.as_deref()).await;
        let mut candidates = Vec::new();
        for c in outcome.candidates {
            let result = verify(&c, pin.as_deref(), opts)
                .await
                .map_err(|e| format!("{e:#}"));
            if result.is_ok() && found.is_none() {
                found = Some(Discovered {
                    addr: c.addr.clone(),
                    fingerprint: pin.clone().or(c.fingerprint.clone()),
                    method,
                });
            }
            candidates.push(CheckedCandidate {
                candidate: c,
                result,
            });
        }
        steps.push(StepReport {
            method,
            notes: outcome.notes,
            candidates,
        });
    }
    Ok(Survey { steps, found })
}

async fn run_step(method: Method, opts: &DiscoveryOptions, pin: Option<&str>) -> StepOutcome {
    let step = async {
        match method {
            Method::File => file_step(opts).await,
            Method::DnsName => dns_name_step(opts).await,
            Method::DnsSd => dns_sd_step(opts, pin).await,
            Method::Broadcast => broadcast_step(opts, pin).await,
        }
    };
    // The broadcast listens for `step_timeout` itself and returns what it heard;
    // the margin keeps this outer bound from cutting that short.
    match tokio::time::timeout(opts.step_timeout + Duration::from_millis(500), step).await {
        Ok(outcome) => outcome,
        Err(_) => {
            let mut o = StepOutcome::default();
            o.note(method, format!("timed out after {:?}", opts.step_timeout));
            o
        }
    }
}

/// `host:port` with brackets around IPv6 addresses.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
pub fn parse_host_port(s: &str, default_port: u16) -> anyhow::Result<(String, u16)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .with_context(|| format!("{s:?}: missing ']'"))?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(
                    p.strip_prefix(':')
                        .with_context(|| format!("{s:?}: expected ':' after ']'"))?,
                ),
            ),
        }
    } else if s.matches(':').count() > 1 {
        (s, None)
    } else if let Some((h, p)) = s.split_once(':') {
        (h, Some(p))
    } else {
        (s, None)
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!("{s:?} is not a host name or address");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => anyhow::bail!("{s:?}: bad port {p:?}"),
        },
    };
    Ok((host.to_string(), port))
}

/// The addresses of `host`: itself when it is an address, else the resolver's answer.
async fn lookup(opts: &DiscoveryOptions, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
        Err(_) => opts.resolver.resolve(host, port).await,
    }
}

async fn file_step(opts: &DiscoveryOptions) -> StepOutcome {
    let mut out = StepOutcome::default();
    let m = Method::File;
    let path = &opts.server_file;
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            out.note(m, format!("{}: no such file", path.display()));
            return out;
        }
        Err(e) => {
            out.note(m, format!("{}: {e}", path.display()));
            return out;
        }
    };
    let Some(line) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    else {
        out.note(m, format!("{}: empty", path.display()));
        return out;
    };
    let (host, port) = match parse_host_port(line, opts.port) {
        Ok(hp) => hp,
        Err(e) => {
            out.note(m, format!("{}: {e}", path.display()));
            return out;
        }
    };
    match lookup(opts, &host, port).await {
        Ok(addrs) if !addrs.is_empty() => out.candidates.push(Candidate {
            method: m,
            addr: join_host_port(&host, port),
            host,
            connect: addrs,
            fingerprint: None,
            school: None,
        }),
        Ok(_) => out.note(m, format!("{host}: no addresses")),
        Err(e) => out.note(m, format!("{host}: not found: {e}")),
    }
    out
}

async fn dns_name_step(opts: &DiscoveryOptions) -> StepOutcome {
    let mut out = StepOutcome::default();
    let m = Method::DnsName;
    // Look every name up at once; candidates keep the names' order.
    let lookups = join_all(opts.dns_names.iter().map(|name| async move {
        let r = tokio::time::timeout(opts.step_timeout, opts.resolver.resolve(name, opts.port))
            .await
            .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")));
        (name, r)
    }))
    .await;
    for (name, r) in lookups {
        match r {
            Ok(addrs) if !addrs.is_empty() => out.candidates.push(Candidate {
                method: m,
                addr: join_host_port(name, opts.port),
                host: name.clone(),
                connect: addrs,
                fingerprint: None,
                school: None,
            }),
            Ok(_) => out.note(m, format!("{name}: no addresses")),
            Err(e) => out.note(m, format!("{name}: not found: {e}")),
        }
    }
    out
}

/// Name servers and search domains from a resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` addresses, in order.
    pub nameservers: Vec<IpAddr>,
    /// The search list (`search`, or `domain`; the last such line wins, as in glibc).
    pub search: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text; unknown lines and bad addresses are skipped.
    pub fn parse(text: &str) -> Self {
        let mut conf = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // Scoped IPv6 (fe80::1%eth0) would need the interface; skipped.
                    if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                        conf.nameservers.push(ip);
                    }
                }
                Some("search") | Some("domain") => {
                    conf.search = words
                        .map(|d| d.trim_end_matches('.').to_string())
                        .filter(|d| !d.is_empty())
                        .collect();
                }
                _ => {}
            }
        }
        conf
    }
}

/// One DNS question over UDP: sends it to `server` and returns the first reply
/// that matches it (id, question), ignoring anything else that arrives.
async fn dns_exchange(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> anyhow::Result<Message> {
    let bind: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // Not connected: under Wine, a connected UDP socket whose peer port is
    // closed leaves tokio's multi-threaded runtime spinning (timers never
    // fire). The source check below does what connecting did.
    let socket = UdpSocket::bind(bind).await?;
    let id: u16 = rand::random();
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name.clone(), rtype));
    socket.send_to(&query.to_vec()?, server).await?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 4096];
    loop {
        let received = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf))
            .await
            .map_err(|_| anyhow::anyhow!("no answer from {server} within {timeout:?}"))?;
        let (len, from) = match received {
            Ok(r) => r,
            // Windows reports an ICMP "port unreachable" on the next receive.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                anyhow::bail!("{server} refused the query (no name server on that port)")
            }
            Err(e) => return Err(e.into()),
        };
        if (from.ip(), from.port()) != (server.ip(), server.port()) {
            tracing::debug!(%server, %from, "ignoring a DNS reply from elsewhere");
            continue;
        }
        let Ok(reply) = Message::from_vec(&buf[..len]) else {
            tracing::debug!(%server, "ignoring an undecodable DNS reply");
            continue;
        };
        let matches = reply.metadata.id == id
            && reply.metadata.message_type == MessageType::Response
            && reply
                .queries
                .first()
                .is_some_and(|q| q.name() == name && q.query_type() == rtype);
        if !matches {
            tracing::debug!(%server, "ignoring a DNS reply to another question");
            continue;
        }
        if reply.metadata.truncation {
            anyhow::bail!("{server} sent a truncated answer (DNS over TCP is not used)");
        }
        return Ok(reply);
    }
}

/// What one name server said about the service in one domain.
struct SdAnswer {
    srv: Message,
    txt: Option<Message>,
}

async fn ask_nameserver(
    server: SocketAddr,
    name: &Name,
    timeout: Duration,
) -> anyhow::Result<SdAnswer> {
    let (srv, txt) = tokio::join!(
        dns_exchange(server, name, RecordType::SRV, timeout),
        dns_exchange(server, name, RecordType::TXT, timeout)
    );
    let srv = srv?;
    match srv.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        code => anyhow::bail!("{server} answered {code}"),
    }
    Ok(SdAnswer { srv, txt: txt.ok() })
}

/// The `fp=` fingerprint in the TXT answers for `name`, if any.
fn txt_fingerprint(txt: &Message, name: &Name) -> Result<Option<String>, String> {
    for record in txt.answers.iter().filter(|r| &r.name == name) {
        if let RData::TXT(t) = &record.data {
            for s in t.txt_data.iter() {
                if let Some(fp) = s.strip_prefix(b"fp=") {
                    let fp = String::from_utf8_lossy(fp);
                    return normalize_fingerprint(&fp)
                        .map(Some)
                        .map_err(|e| format!("TXT record: {e}"));
                }
            }
        }
    }
    Ok(None)
}

async fn dns_sd_step(opts: &DiscoveryOptions, pin: Option<&str>) -> StepOutcome {
    let mut out = StepOutcome::default();
    let m = Method::DnsSd;
    let path = opts.resolv_conf.clone();
    let system = opts.system_dns;
    let read =
        tokio::task::spawn_blocking(move || crate::platform::resolver_config(&path, system)).await;
    let (conf, source) = match read {
        Ok(Ok(c)) => (c.conf, c.source),
        Ok(Err(e)) => {
            out.note(m, format!("{}: {e}", opts.resolv_conf.display()));
            return out;
        }
        Err(e) => {
            out.note(m, format!("reading the DNS settings failed: {e}"));
            return out;
        }
    };
    tracing::info!(
        "discovery (dns-sd): name servers {:?}, search domains {:?}, from {source}",
        conf.nameservers,
        conf.search
    );
    if conf.search.is_empty() {
        out.note(m, format!("no search domain in {source}"));
        return out;
    }
    if conf.nameservers.is_empty() {
        out.note(m, format!("no name server in {source}"));
        return out;
    }
    let servers: Vec<SocketAddr> = conf
        .nameservers
        .iter()
        .map(|ip| SocketAddr::new(*ip, opts.dns_port))
        .collect();
    let mut names = Vec::new();
    for domain in &conf.search {
        match Name::from_ascii(format!("{DNS_SD_SERVICE}.{domain}.")) {
            Ok(n) => names.push(n),
            Err(e) => out.note(m, format!("search domain {domain:?}: {e}")),
        }
    }
    // Ask every name server about every domain at once; for each domain, the
    // first name server (in resolv.conf's order) that answered is believed.
    let answers = join_all(names.iter().map(|name| {
        join_all(
            servers
                .iter()
                .map(move |s| ask_nameserver(*s, name, opts.step_timeout)),
        )
    }))
    .await;
    for (name, per_server) in names.iter().zip(answers) {
        let mut errors = Vec::new();
        let mut answer = None;
        for (server, r) in servers.iter().zip(per_server) {
            match r {
                Ok(a) => {
                    answer = Some(a);
                    break;
                }
                Err(e) => errors.push(format!("{server}: {e:#}")),
            }
        }
        let Some(answer) = answer else {
            out.note(m, format!("{name}: {}", errors.join(", ")));
            continue;
        };
        let advertised = match answer.txt.as_ref().map(|t| txt_fingerprint(t, name)) {
            Some(Ok(fp)) => fp,
            Some(Err(e)) => {
                out.note(m, format!("{name}: ignoring {e}"));
                None
            }
            None => None,
        };
        if let (Some(pin), Some(fp)) = (pin, advertised.as_deref()) {
            if fp != pin {
                tracing::warn!(
                    "discovery (dns-sd): ignoring {name}: its TXT fingerprint {fp} does not match the pinned {pin}"
                );
                out.notes.push(format!(
                    "{name}: ignored: TXT fingerprint {fp} does not match the pinned {pin}"
                ));
                continue;
            }
        }
        let mut srvs: Vec<_> = answer
            .srv
            .answers
            .iter()
            .filter(|r| &r.name == name)
            .filter_map(|r| match &r.data {
                RData::SRV(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        if srvs.is_empty() {
            out.note(m, format!("{name}: no SRV record"));
            continue;
        }
        // RFC 2782 order: lowest priority first; within one, heavier weight first
        // (deterministic rather than weighted-random: a school has one or two).
        srvs.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
        for srv in srvs {
            if srv.target.is_root() {
                out.note(m, format!("{name}: SRV target \".\": service not offered"));
                continue;
            }
            let port = if srv.port == 0 { opts.port } else { srv.port };
            let host = srv.target.to_ascii().trim_end_matches('.').to_string();
            // Addresses the server already sent along save a lookup.
            let mut connect: Vec<SocketAddr> = answer
                .srv
                .additionals
                .iter()
                .filter(|r| r.name == srv.target)
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(SocketAddr::new(IpAddr::V4(a.0), port)),
                    RData::AAAA(a) => Some(SocketAddr::new(IpAddr::V6(a.0), port)),
                    _ => None,
                })
                .collect();
            if connect.is_empty() {
                match lookup(opts, &host, port).await {
                    Ok(a) => connect = a,
                    Err(e) => {
                        out.note(m, format!("{name}: SRV target {host}: not found: {e}"));
                        continue;
                    }
                }
            }
            if connect.is_empty() {
                out.note(m, format!("{name}: SRV target {host}: no addresses"));
                continue;
            }
            out.candidates.push(Candidate {
                method: m,
                addr: join_host_port(&host, port),
                host,
                connect,
                fingerprint: advertised.clone(),
                school: None,
            });
        }
    }
    out
}

/// Every IPv4 interface's broadcast address (computed from the netmask when the
/// interface has none set) and the limited broadcast 255.255.255.255, at `port`.
/// Directed broadcasts matter: without a default route, Linux refuses to send to
/// 255.255.255.255.
pub fn default_broadcast_targets(port: u16) -> Vec<SocketAddr> {
    let mut targets = Vec::new();
    for iface in if_addrs::get_if_addrs().unwrap_or_default() {
        if let if_addrs::IfAddr::V4(v4) = iface.addr {
            if v4.ip.is_loopback() || iface.is_p2p || v4.prefixlen >= 31 {
                continue;
            }
            let computed = Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask));
            let b = v4
                .broadcast
                .filter(|b| !b.is_unspecified())
                .unwrap_or(computed);
            let t = SocketAddr::new(IpAddr::V4(b), port);
            if !targets.contains(&t) {
                targets.push(t);
            }
        }
    }
    targets.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::BROADCAST), port));
    targets
}

async fn broadcast_step(opts: &DiscoveryOptions, pin: Option<&str>) -> StepOutcome {
    let mut out = StepOutcome::default();
    let m = Method::Broadcast;
    let socket = match UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await {
        Ok(s) => s,
        Err(e) => {
            out.note(m, format!("cannot open a UDP socket: {e}"));
            return out;
        }
    };
    if let Err(e) = socket.set_broadcast(true) {
        out.note(m, format!("cannot broadcast: {e}"));
        return out;
    }
    let targets = if opts.broadcast_targets.is_empty() {
        default_broadcast_targets(opts.port)
    } else {
        opts.broadcast_targets.clone()
    };
    let query = DiscoveryQuery::new(rand::random());
    let bytes = DiscoveryMsg::Query(query.clone()).encode();
    let start = Instant::now();
    let mut deadline = start + opts.step_timeout;
    // Three sends over the first half of the window, in case one is lost.
    let resend_every = opts.step_timeout / 6;
    let mut sends = 0;
    let mut next_send = start;
    let mut buf = vec![0u8; MAX_DISCOVERY_DATAGRAM + 1];
    loop {
        let now = Instant::now();
        if sends < 3 && now >= next_send {
            let mut sent = 0;
            for t in &targets {
                match socket.send_to(&bytes, t).await {
                    Ok(_) => sent += 1,
                    Err(e) => tracing::debug!(target = %t, "discovery broadcast not sent: {e}"),
                }
            }
            if sent == 0 && sends == 0 {
                out.note(m, format!("could not send to any of {targets:?}"));
                return out;
            }
            sends += 1;
            next_send = now + resend_every;
        }
        if now >= deadline {
            break;
        }
        let wake = if sends < 3 {
            deadline.min(next_send)
        } else {
            deadline
        };
        let (len, peer) = match tokio::time::timeout_at(wake, socket.recv_from(&mut buf)).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                tracing::debug!("discovery receive failed: {e}");
                continue;
            }
            Ok(Ok(r)) => r,
        };
        let answer = match DiscoveryMsg::decode(&buf[..len]) {
            Ok(DiscoveryMsg::Answer(a)) if a.nonce == query.nonce => a,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(%peer, "ignoring discovery datagram: {e}");
                continue;
            }
        };
        let addr = SocketAddr::new(peer.ip(), answer.port);
        if let Some(pin) = pin {
            if answer.fingerprint != pin {
                tracing::warn!(
                    "discovery (broadcast): ignoring the answer from {addr} (school {:?}): its fingerprint {} does not match the pinned {pin}",
                    answer.school,
                    answer.fingerprint
                );
                let note = format!(
                    "ignored the answer from {addr}: its certificate fingerprint {} does not match the pinned {pin}",
                    answer.fingerprint
                );
                if !out.notes.contains(&note) {
                    out.notes.push(note);
                }
                continue;
            }
        }
        if out.candidates.iter().any(|c| c.connect == [addr]) {
            continue;
        }
        tracing::info!(
            "discovery (broadcast): {addr} answered for school {:?}",
            answer.school
        );
        out.candidates.push(Candidate {
            method: m,
            addr: addr.to_string(),
            host: peer.ip().to_string(),
            connect: vec![addr],
            fingerprint: Some(answer.fingerprint),
            school: Some(answer.school),
        });
        // Other servers answer about as fast; a short grace instead of the whole window.
        deadline = deadline.min(Instant::now() + Duration::from_millis(300));
    }
    if out.candidates.is_empty() && out.notes.is_empty() {
        out.note(m, format!("no answer within {:?}", opts.step_timeout));
    }
    out
}

/// Verifies `c` by a TLS handshake: its certificate must match `pin`, else the
/// fingerprint its source advertised, else anything (then the handshake only
/// proves a TLS server answers). Returns the certificate's fingerprint.
pub async fn verify(
    c: &Candidate,
    pin: Option<&str>,
    opts: &DiscoveryOptions,
) -> anyhow::Result<String> {
    let expected = pin.or(c.fingerprint.as_deref());
    let mut errors = Vec::new();
    for addr in &c.connect {
        match tokio::time::timeout(opts.verify_timeout, tls_probe(*addr, &c.host, expected)).await {
            Ok(Ok(fp)) => return Ok(fp),
            Ok(Err(e)) => errors.push(format!("{addr}: {e:#}")),
            Err(_) => errors.push(format!("{addr}: timed out")),
        }
    }
    if errors.is_empty() {
        anyhow::bail!("no address to try");
    }
    anyhow::bail!("{}", errors.join(", "))
}

async fn tls_probe(addr: SocketAddr, host: &str, expected: Option<&str>) -> anyhow::Result<String> {
    let seen = Arc::new(Mutex::new(None));
    let config = crate::tls::observing_client_config(expected.map(str::to_string), seen.clone())?;
    // The verifier ignores names, but SNI needs one; an address does when the
    // host is not a valid DNS name (lectern_server).
    let name = ServerName::try_from(host.to_string())
        .unwrap_or_else(|_| ServerName::IpAddress(addr.ip().into()));
    let tcp = TcpStream::connect(addr).await.context("connect")?;
    match TlsConnector::from(config).connect(name, tcp).await {
        Ok(mut tls) => {
            let _ = tls.shutdown().await;
            let fp = seen.lock().unwrap().clone();
            fp.context("no certificate seen")
        }
        Err(e) => match (seen.lock().unwrap().clone(), expected) {
            (Some(got), Some(want)) if got != want => {
                anyhow::bail!(
                    "its certificate fingerprint {got} does not match the expected {want}"
                )
            }
            _ => Err(anyhow::Error::new(e).context("TLS handshake")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, SRV, TXT};
    use hickory_proto::rr::Record;
    use std::collections::HashMap;

    /// A resolver that knows only the names it is given.
    struct MapResolver(HashMap<String, Vec<IpAddr>>);

    impl Resolve for MapResolver {
        fn resolve<'a>(&'a self, host: &'a str, port: u16) -> ResolveFuture<'a> {
            Box::pin(async move {
                self.0
                    .get(host)
                    .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "unknown host"))
            })
        }
    }

    fn resolver(names: &[(&str, &str)]) -> Arc<dyn Resolve> {
        let mut map: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (n, ip) in names {
            map.entry(n.to_string())
                .or_default()
                .push(ip.parse().unwrap());
        }
        Arc::new(MapResolver(map))
    }

    fn opts() -> DiscoveryOptions {
        DiscoveryOptions {
            server_file: "/nonexistent/lectern/server".into(),
            resolv_conf: "/nonexistent/resolv.conf".into(),
            system_dns: false,
            step_timeout: Duration::from_millis(800),
            verify_timeout: Duration::from_millis(800),
            resolver: resolver(&[]),
            ..Default::default()
        }
    }

    #[test]
    fn host_port_forms() {
        let p = |s| parse_host_port(s, 30016).map_err(|e| e.to_string());
        assert_eq!(p("srv").unwrap(), ("srv".into(), 30016));
        assert_eq!(p(" srv.school:443 ").unwrap(), ("srv.school".into(), 443));
        assert_eq!(p("10.0.0.5").unwrap(), ("10.0.0.5".into(), 30016));
        assert_eq!(p("[fd00::5]:8443").unwrap(), ("fd00::5".into(), 8443));
        assert_eq!(p("[fd00::5]").unwrap(), ("fd00::5".into(), 30016));
        assert_eq!(p("fd00::5").unwrap(), ("fd00::5".into(), 30016));
        assert!(p("srv:0").is_err());
        assert!(p("srv:http").is_err());
        assert!(p("[fd00::5").is_err());
        assert!(p("two words").is_err());
        assert_eq!(join_host_port("fd00::5", 1), "[fd00::5]:1");
        assert_eq!("dns-sd".parse::<Method>(), Ok(Method::DnsSd));
        assert!("mdns".parse::<Method>().is_err());
    }

    #[test]
    fn resolv_conf_parses() {
        let c = ResolvConf::parse(
            "# comment\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\nnameserver ::1 ; x\n\
             domain old.example\nsearch school.example. lab.example\noptions ndots:1\n",
        );
        assert_eq!(
            c.nameservers,
            vec![
                "10.0.0.53".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(c.search, vec!["school.example", "lab.example"]);
        assert_eq!(ResolvConf::parse("domain a.b\n").search, vec!["a.b"]);
    }

    #[tokio::test]
    async fn file_step_reads_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server");
        let mut o = opts();
        o.server_file = path.clone();
        o.resolver = resolver(&[("lectern.school.example", "10.1.2.3")]);
        let out = file_step(&o).await;
        assert!(out.candidates.is_empty());
        assert!(out.notes[0].contains("no such file"), "{:?}", out.notes);

        std::fs::write(
            &path,
            "# where the server is\n\nlectern.school.example:8443\n",
        )
        .unwrap();
        let out = file_step(&o).await;
        assert_eq!(out.candidates.len(), 1, "{:?}", out.notes);
        let c = &out.candidates[0];
        assert_eq!(c.addr, "lectern.school.example:8443");
        assert_eq!(c.connect, vec!["10.1.2.3:8443".parse().unwrap()]);
        assert_eq!(c.fingerprint, None);

        std::fs::write(&path, "unknown.example\n").unwrap();
        let out = file_step(&o).await;
        assert!(out.candidates.is_empty());
        assert!(out.notes[0].contains("not found"), "{:?}", out.notes);
    }

    #[tokio::test]
    async fn dns_step_tries_both_names_in_order() {
        let mut o = opts();
        o.resolver = resolver(&[("lectern_server", "10.0.0.9")]);
        let out = dns_name_step(&o).await;
        assert_eq!(out.candidates.len(), 1);
        assert_eq!(out.candidates[0].addr, "lectern_server:30016");
        assert_eq!(
            out.candidates[0].connect,
            vec!["10.0.0.9:30016".parse().unwrap()]
        );
        assert!(out.notes[0].starts_with("lectern-server: not found"));

        o.resolver = resolver(&[
            ("lectern_server", "10.0.0.9"),
            ("lectern-server", "10.0.0.8"),
        ]);
        let out = dns_name_step(&o).await;
        let addrs: Vec<_> = out.candidates.iter().map(|c| c.addr.as_str()).collect();
        assert_eq!(addrs, ["lectern-server:30016", "lectern_server:30016"]);
    }

    /// A tiny DNS server on loopback answering with `answer(question)`; a reply
    /// with a wrong id goes first each time, which the client must ignore.
    async fn dns_server(
        answer: impl Fn(&Message) -> Message + Send + Sync + 'static,
    ) -> (u16, tokio::task::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (len, peer) = socket.recv_from(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf[..len]).unwrap();
                let mut reply = answer(&q);
                reply.metadata.id = q.metadata.id.wrapping_add(1);
                socket
                    .send_to(&reply.to_vec().unwrap(), peer)
                    .await
                    .unwrap();
                reply.metadata.id = q.metadata.id;
                socket
                    .send_to(&reply.to_vec().unwrap(), peer)
                    .await
                    .unwrap();
            }
        });
        (port, task)
    }

    fn service() -> Name {
        Name::from_ascii("_lectern._tcp.school.example.").unwrap()
    }

    fn zone(q: &Message, fp: &str) -> Message {
        let mut r = Message::response(q.metadata.id, OpCode::Query);
        r.add_query(q.queries[0].clone());
        let name = q.queries[0].name().clone();
        if name != service() {
            r.metadata.response_code = ResponseCode::NXDomain;
            return r;
        }
        let primary = Name::from_ascii("primary.school.example.").unwrap();
        let backup = Name::from_ascii("backup.school.example.").unwrap();
        match q.queries[0].query_type() {
            RecordType::SRV => {
                r.add_answer(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::SRV(SRV::new(20, 0, 9000, backup)),
                ));
                r.add_answer(Record::from_rdata(
                    name.clone(),
                    60,
                    RData::SRV(SRV::new(10, 5, 8443, primary.clone())),
                ));
                r.add_additional(Record::from_rdata(
                    primary,
                    60,
                    RData::A(A::new(10, 0, 0, 7)),
                ));
            }
            RecordType::TXT => {
                r.add_answer(Record::from_rdata(
                    name,
                    60,
                    RData::TXT(TXT::new(vec!["txtvers=1".into(), format!("fp={fp}")])),
                ));
            }
            _ => {}
        }
        r
    }

    #[tokio::test]
    async fn dns_sd_reads_srv_and_txt() {
        let fp = "AB:".repeat(31) + "AB";
        let (port, task) = dns_server(move |q| zone(q, &fp)).await;
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("resolv.conf");
        std::fs::write(
            &conf,
            "nameserver 127.0.0.1\nsearch nowhere.example school.example\n",
        )
        .unwrap();
        let mut o = opts();
        o.resolv_conf = conf;
        o.dns_port = port;
        o.resolver = resolver(&[("backup.school.example", "10.0.0.8")]);

        let out = dns_sd_step(&o, None).await;
        let got: Vec<_> = out
            .candidates
            .iter()
            .map(|c| (c.addr.as_str(), c.connect.clone(), c.fingerprint.clone()))
            .collect();
        let fp = Some("ab".repeat(32));
        assert_eq!(
            got,
            vec![
                (
                    "primary.school.example:8443",
                    vec!["10.0.0.7:8443".parse().unwrap()],
                    fp.clone()
                ),
                (
                    "backup.school.example:9000",
                    vec!["10.0.0.8:9000".parse().unwrap()],
                    fp.clone()
                ),
            ],
            "{:?}",
            out.notes
        );
        assert!(
            out.notes
                .iter()
                .any(|n| n.contains("nowhere.example") && n.contains("no SRV")),
            "{:?}",
            out.notes
        );

        // A pinned agent ignores a domain that vouches for another certificate.
        let pin = "cd".repeat(32);
        let out = dns_sd_step(&o, Some(&pin)).await;
        assert!(out.candidates.is_empty());
        assert!(
            out.notes
                .iter()
                .any(|n| n.contains("does not match the pinned")),
            "{:?}",
            out.notes
        );
        task.abort();
    }

    #[tokio::test]
    async fn dns_replies_from_another_address_are_ignored() {
        // The name server passes each question to an accomplice on another
        // port, which sends a well-formed answer; the server stays silent.
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server_addr = server.local_addr().unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (len, peer) = server.recv_from(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf[..len]).unwrap();
                let reply = zone(&q, &"ab".repeat(32)).to_vec().unwrap();
                other.send_to(&reply, peer).await.unwrap();
            }
        });
        let e = dns_exchange(
            server_addr,
            &service(),
            RecordType::SRV,
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("no answer"), "{e:#}");
        task.abort();
    }

    #[tokio::test]
    async fn dns_sd_without_search_domain_or_answer() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("resolv.conf");
        std::fs::write(&conf, "nameserver 127.0.0.1\n").unwrap();
        let mut o = opts();
        o.resolv_conf = conf.clone();
        let out = dns_sd_step(&o, None).await;
        assert!(out.notes[0].contains("no search domain"));
        // A silent name server: the step ends within its timeout.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        o.dns_port = silent.local_addr().unwrap().port();
        o.step_timeout = Duration::from_millis(200);
        std::fs::write(&conf, "nameserver 127.0.0.1\nsearch school.example\n").unwrap();
        let out = run_step(Method::DnsSd, &o, None).await;
        assert!(out.candidates.is_empty());
        assert!(out.notes[0].contains("no answer"), "{:?}", out.notes);
    }

    /// A fake server's discovery socket on loopback: answers each query with
    /// `fp`, after a stray answer carrying the wrong nonce.
    async fn fake_responder(fp: String) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            loop {
                let (len, peer) = socket.recv_from(&mut buf).await.unwrap();
                let Ok(DiscoveryMsg::Query(q)) = DiscoveryMsg::decode(&buf[..len]) else {
                    continue;
                };
                let stray = DiscoveryQuery::new([9; 16]);
                for q in [&stray, &q] {
                    let a =
                        lectern_proto::discovery::DiscoveryAnswer::new(q, 4443, "Hillside", &fp);
                    socket
                        .send_to(&DiscoveryMsg::Answer(a).encode(), peer)
                        .await
                        .unwrap();
                }
            }
        });
        (addr, task)
    }

    #[tokio::test]
    async fn broadcast_step_takes_answers_to_its_own_query() {
        let fp = "ef".repeat(32);
        let (addr, task) = fake_responder(fp.clone()).await;
        let mut o = opts();
        o.broadcast_targets = vec![addr];
        let out = broadcast_step(&o, None).await;
        assert_eq!(out.candidates.len(), 1, "{:?}", out.notes);
        let c = &out.candidates[0];
        assert_eq!(c.addr, "127.0.0.1:4443");
        assert_eq!(c.fingerprint.as_deref(), Some(fp.as_str()));
        assert_eq!(c.school.as_deref(), Some("Hillside"));

        let out = broadcast_step(&o, Some(&"01".repeat(32))).await;
        assert!(out.candidates.is_empty());
        assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
        assert!(out.notes[0].contains("does not match the pinned"));
        task.abort();
    }

    #[tokio::test]
    async fn nothing_found_says_what_each_step_saw() {
        let mut o = opts();
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        o.broadcast_targets = vec![silent.local_addr().unwrap()];
        o.step_timeout = Duration::from_millis(200);
        let e = discover(&o).await.unwrap_err().to_string();
        for part in [
            "file: /nonexistent/lectern/server: no such file",
            "dns: lectern-server",
            "dns-sd: /nonexistent/resolv.conf",
            "broadcast: no answer",
        ] {
            assert!(e.contains(part), "{e}");
        }
        o.pin = Some("nope".into());
        assert!(discover(&o).await.is_err());
    }
}
