//! The UDP discovery responder: answers agents' "who is the Lectern server"
//! broadcasts (see `lectern_proto::discovery`) with this server's HTTPS port,
//! school name and certificate fingerprint.
//!
//! It binds the same port number as the HTTPS listener, on `0.0.0.0` when the
//! listener is on an unspecified address (a socket bound to one unicast address
//! does not receive broadcasts), else on the listener's own address. Answers go
//! by unicast to the query's sender, are rate-limited per source address and in
//! total (so the responder cannot be used to flood a spoofed victim), and anything
//! that is not a valid query is dropped without an answer. Failing to bind only
//! logs a warning: discovery is a convenience, serving HTTPS is the job.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use lectern_proto::discovery::{DiscoveryAnswer, DiscoveryMsg, MAX_DISCOVERY_DATAGRAM};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::ServerConfig;

/// What an answer says about this server.
#[derive(Debug, Clone)]
pub struct AnswerInfo {
    /// TCP port of the HTTPS listener.
    pub port: u16,
    /// The school's name.
    pub school: String,
    /// Certificate SHA-256, lowercase hex.
    pub fingerprint: String,
}

/// The UDP address the responder uses for an HTTPS listener on `listen`.
pub fn bind_addr(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        // Broadcast is IPv4 only; an IPv6 wildcard listener still gets IPv4 discovery.
        SocketAddr::from(([0, 0, 0, 0], listen.port()))
    } else {
        listen
    }
}

/// Starts the responder for a listener on `listen` when `config.discovery` is on.
/// Returns its task, which ends when `stop` turns true; `None` when discovery is
/// off or the port could not be bound (logged).
pub async fn spawn(
    config: &ServerConfig,
    listen: SocketAddr,
    school: &str,
    fingerprint: &str,
    stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    if !config.discovery {
        tracing::info!("UDP discovery is off (server.toml: discovery = false)");
        return None;
    }
    let addr = bind_addr(listen);
    let socket = match UdpSocket::bind(addr).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%addr, "UDP discovery not started: cannot bind: {e}");
            return None;
        }
    };
    tracing::info!(%addr, "answering discovery broadcasts");
    let info = AnswerInfo {
        port: listen.port(),
        school: school.to_string(),
        fingerprint: fingerprint.to_string(),
    };
    Some(tokio::spawn(run(
        socket,
        info,
        RateLimiter::default(),
        stop,
    )))
}

/// Answers queries on `socket` until `stop` turns true.
pub async fn run(
    socket: UdpSocket,
    info: AnswerInfo,
    mut limiter: RateLimiter,
    mut stop: watch::Receiver<bool>,
) {
    // One byte more than the limit, so an oversized datagram shows as such
    // (the kernel truncates it to the buffer) instead of being cut to a valid size.
    let mut buf = vec![0u8; MAX_DISCOVERY_DATAGRAM + 1];
    loop {
        let (len, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    // E.g. an ICMP error for an earlier answer; do not spin on it.
                    tracing::debug!("discovery receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        if let Some(answer) = answer_for(&buf[..len], peer, &info, &mut limiter, Instant::now()) {
            if let Err(e) = socket.send_to(&answer, peer).await {
                tracing::debug!(%peer, "discovery answer not sent: {e}");
            }
        }
    }
}

/// The answer to the datagram `bytes` from `peer`, if it deserves one.
fn answer_for(
    bytes: &[u8],
    peer: SocketAddr,
    info: &AnswerInfo,
    limiter: &mut RateLimiter,
    now: Instant,
) -> Option<Vec<u8>> {
    // Port 0 cannot be answered, and is a sign of forged traffic.
    if peer.port() == 0 {
        return None;
    }
    let query = match DiscoveryMsg::decode(bytes) {
        Ok(DiscoveryMsg::Query(q)) => q,
        // Another server's answer (or our own echo): nothing to say.
        Ok(DiscoveryMsg::Answer(_)) => return None,
        Err(e) => {
            tracing::debug!(%peer, "ignoring discovery datagram: {e}");
            return None;
        }
    };
    if !limiter.allow(peer.ip(), now) {
        tracing::debug!(%peer, "discovery answer rate-limited");
        return None;
    }
    tracing::debug!(%peer, "answering discovery query");
    Some(
        DiscoveryMsg::Answer(DiscoveryAnswer::new(
            &query,
            info.port,
            &info.school,
            &info.fingerprint,
        ))
        .encode(),
    )
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Bucket {
            tokens: capacity,
            last: now,
        }
    }

    fn refill(&mut self, capacity: f64, per_sec: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(capacity);
        self.last = now;
    }

    fn take(&mut self, capacity: f64, per_sec: f64, now: Instant) -> bool {
        self.refill(capacity, per_sec, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Token buckets limiting answers per source address and in total.
#[derive(Debug)]
pub struct RateLimiter {
    per_source_burst: f64,
    per_source_per_sec: f64,
    total_burst: f64,
    total_per_sec: f64,
    max_sources: usize,
    sources: HashMap<IpAddr, Bucket>,
    total: Option<Bucket>,
}

impl Default for RateLimiter {
    /// 6 answers at once per address (an agent sends up to 3 queries a try),
    /// then 1 a second; 200 at once in total, then 100 a second (a whole school
    /// booting); at most 4096 addresses remembered.
    fn default() -> Self {
        RateLimiter::new(6, 1.0, 200, 100.0, 4096)
    }
}

impl RateLimiter {
    /// A limiter allowing `per_source_burst` answers to one address at once, then
    /// `per_source_per_sec`; likewise in total; remembering `max_sources` addresses.
    pub fn new(
        per_source_burst: u32,
        per_source_per_sec: f64,
        total_burst: u32,
        total_per_sec: f64,
        max_sources: usize,
    ) -> Self {
        RateLimiter {
            per_source_burst: per_source_burst.into(),
            per_source_per_sec,
            total_burst: total_burst.into(),
            total_per_sec,
            max_sources,
            sources: HashMap::new(),
            total: None,
        }
    }

    /// Whether one more answer to `ip` is allowed at `now` (and if so, counts it).
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let (burst, rate) = (self.per_source_burst, self.per_source_per_sec);
        let (total_burst, total_rate) = (self.total_burst, self.total_per_sec);
        if !self.sources.contains_key(&ip) && self.sources.len() >= self.max_sources {
            // Forget addresses whose bucket has refilled: they are as good as new.
            self.sources.retain(|_, b| {
                let mut b = *b;
                b.refill(burst, rate, now);
                b.tokens < burst
            });
            if self.sources.len() >= self.max_sources {
                // Many addresses at once (or spoofed ones): answer none we do not know.
                return false;
            }
        }
        let total = self
            .total
            .get_or_insert_with(|| Bucket::full(total_burst, now));
        // Check the total first without spending: a refused source must not use it up.
        total.refill(total_burst, total_rate, now);
        if total.tokens < 1.0 {
            return false;
        }
        let source = self
            .sources
            .entry(ip)
            .or_insert_with(|| Bucket::full(burst, now));
        if !source.take(burst, rate, now) {
            return false;
        }
        total.tokens -= 1.0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_proto::discovery::DiscoveryQuery;

    fn info() -> AnswerInfo {
        AnswerInfo {
            port: 30016,
            school: "Hillside".into(),
            fingerprint: "ab".repeat(32),
        }
    }

    #[test]
    fn answers_only_valid_queries() {
        let mut limiter = RateLimiter::default();
        let now = Instant::now();
        let peer: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let q = DiscoveryQuery::new([1; 16]);
        let bytes = DiscoveryMsg::Query(q.clone()).encode();
        let answer = answer_for(&bytes, peer, &info(), &mut limiter, now).unwrap();
        match DiscoveryMsg::decode(&answer).unwrap() {
            DiscoveryMsg::Answer(a) => {
                assert_eq!(a.nonce, q.nonce);
                assert_eq!(a.port, 30016);
                assert_eq!(a.school, "Hillside");
                assert_eq!(a.fingerprint, "ab".repeat(32));
            }
            other => panic!("{other:?}"),
        }
        let ans = DiscoveryMsg::decode(&answer).unwrap().encode();
        assert!(answer_for(&ans, peer, &info(), &mut limiter, now).is_none());
        assert!(answer_for(b"\x00\x01garbage", peer, &info(), &mut limiter, now).is_none());
        let big = vec![b'{'; MAX_DISCOVERY_DATAGRAM + 1];
        assert!(answer_for(&big, peer, &info(), &mut limiter, now).is_none());
        let port0: SocketAddr = "10.0.0.2:0".parse().unwrap();
        assert!(answer_for(&bytes, port0, &info(), &mut limiter, now).is_none());
    }

    #[test]
    fn on_by_default_also_for_old_config_files() {
        let old: ServerConfig = toml::from_str("listen = \"0.0.0.0:30016\"\n").unwrap();
        assert!(old.discovery);
        let off: ServerConfig = toml::from_str("discovery = false\n").unwrap();
        assert!(!off.discovery);
        assert_eq!(
            bind_addr("[::]:30016".parse().unwrap()),
            "0.0.0.0:30016".parse().unwrap()
        );
        assert_eq!(
            bind_addr("10.0.0.5:443".parse().unwrap()),
            "10.0.0.5:443".parse().unwrap()
        );
    }

    #[test]
    fn rate_limits_per_source_and_in_total() {
        let mut l = RateLimiter::new(3, 1.0, 5, 1.0, 2);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        assert_eq!((0..5).filter(|_| l.allow(a, t0)).count(), 3);
        // Total has 2 left; b may use them, then everyone waits.
        assert!(l.allow(b, t0));
        assert!(l.allow(b, t0));
        assert!(!l.allow(b, t0));
        // Two addresses remembered, both with spent buckets: a third is refused.
        assert!(!l.allow(c, t0));
        // A second later each source and the total have one more.
        let t1 = t0 + Duration::from_secs(1);
        assert!(l.allow(a, t1));
        assert!(!l.allow(a, t1));
        // After a long pause buckets are full again and old addresses are forgotten.
        let t2 = t0 + Duration::from_secs(60);
        assert!(l.allow(c, t2));
    }
}
