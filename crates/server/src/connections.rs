//! Connection admission: who may hold a socket, and for how long.
//!
//! Every accepted TCP connection starts *pre-auth*: it has done nothing to
//! show it belongs here. Pre-auth connections are bounded overall
//! (`max_pending`) and per source address (`max_pending_per_address`), and
//! must authenticate (a console request with a valid session, or an agent
//! hello with a valid device credential) within `auth_secs` of being accepted,
//! TLS handshake, upgrade and first frame included. Authentication
//! *promotes* the connection: it leaves the pre-auth budget and is then only
//! bounded by `max_connections` and an idle timeout. Because pre-auth
//! connections can never hold more than `max_pending` slots, at least
//! `max_connections - max_pending` are always left for authenticated ones.
//!
//! A new connection that would exceed a pre-auth cap may displace an older
//! pre-auth connection that has waited at least `displace_after_ms` (real
//! clients authenticate within milliseconds, so what gets displaced is slow):
//! - at its address's cap, the oldest of that same address (so one slow
//!   client behind a school's NAT address cannot lock out its agents);
//! - when the pool (or the server) is full, the oldest of the address holding
//!   the most pre-auth connections, if that address holds more than the
//!   newcomer's. Clients from addresses holding few pre-auth connections
//!   therefore always get in, while an attacker's own addresses, once they
//!   hold an equal share, are refused cheaply instead of churning.
//!
//! Otherwise the connection is refused: reset before any TLS work.
//!
//! "Address" means an IPv4 address or an IPv6 /64.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// `[connections]` in `server.toml`: limits and timeouts of the listener.
/// The defaults suit a school of about 10,000 devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionLimits {
    /// Open connections of any kind; lowered at start to fit the process's
    /// file-descriptor limit.
    pub max_connections: usize,
    /// Connections not yet authenticated, overall.
    pub max_pending: usize,
    /// Connections not yet authenticated, from one source address.
    pub max_pending_per_address: usize,
    /// Milliseconds a pre-auth connection must have waited before a newcomer
    /// may displace it.
    pub displace_after_ms: u64,
    /// Seconds allowed for the TLS handshake.
    pub tls_handshake_secs: u64,
    /// Seconds from accept to authentication (TLS, request or WebSocket
    /// upgrade and the agent's hello included).
    pub auth_secs: u64,
    /// Seconds for one HTTP request, headers and body, until its response starts.
    pub request_secs: u64,
    /// Seconds an authenticated connection may go without a byte either way.
    pub idle_secs: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 20_000,
            max_pending: 2_000,
            max_pending_per_address: 500,
            displace_after_ms: 2_000,
            tls_handshake_secs: 10,
            auth_secs: 20,
            request_secs: 60,
            idle_secs: 300,
        }
    }
}

/// File descriptors kept back for the database, evidence, logs and the listener.
const FD_SPARE: usize = 256;

impl ConnectionLimits {
    /// Refuses limits that cannot work, naming the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("max_connections", self.max_connections as u64),
            ("max_pending", self.max_pending as u64),
            (
                "max_pending_per_address",
                self.max_pending_per_address as u64,
            ),
            ("tls_handshake_secs", self.tls_handshake_secs),
            ("auth_secs", self.auth_secs),
            ("request_secs", self.request_secs),
            ("idle_secs", self.idle_secs),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            anyhow::bail!("connections.{name} must be above 0");
        }
        if self.max_pending >= self.max_connections {
            anyhow::bail!(
                "connections.max_pending ({}) must be below connections.max_connections ({}): \
                 the difference is what authenticated clients keep when anonymous ones are refused",
                self.max_pending,
                self.max_connections
            );
        }
        Ok(())
    }

    /// These limits shrunk to fit `fds` file descriptors, keeping the pre-auth
    /// share at most half, so accept never fails for want of descriptors.
    pub fn fit_to(&self, fds: usize) -> ConnectionLimits {
        let room = fds.saturating_sub(FD_SPARE).max(2);
        let mut fitted = self.clone();
        if fitted.max_connections > room {
            fitted.max_connections = room;
            fitted.max_pending = fitted.max_pending.min(room / 2).max(1);
            fitted.max_pending_per_address = fitted.max_pending_per_address.min(fitted.max_pending);
        }
        fitted
    }
}

/// Raises this process's open-file limit to its hard limit (servers need far
/// more than the usual 1,024) and returns the limit now in force.
pub fn raise_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return usize::MAX;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its address already holds its share of pre-auth connections.
    Address,
    /// The pre-auth pool is full.
    Pending,
    /// The server holds `max_connections`.
    Full,
}

/// Why an admitted connection was closed by the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The TLS handshake took too long.
    Handshake,
    /// It did not authenticate in time.
    Auth,
    /// Authenticated, then silent too long.
    Idle,
    /// One request (headers and body) took too long.
    Request,
    /// A newcomer took its pre-auth slot.
    Displaced,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Connections admitted.
    pub accepted: AtomicU64,
    /// Connections authenticated.
    pub promoted: AtomicU64,
    /// Refused, by [`Refused`] variant.
    pub refused_address: AtomicU64,
    /// Refused: pre-auth pool full.
    pub refused_pending: AtomicU64,
    /// Refused: server full.
    pub refused_full: AtomicU64,
    /// Cut, by [`Cut`] variant.
    pub cut_handshake: AtomicU64,
    /// Cut: no authentication in time.
    pub cut_auth: AtomicU64,
    /// Cut: idle.
    pub cut_idle: AtomicU64,
    /// Requests answered 408.
    pub cut_request: AtomicU64,
    /// Displaced by a newcomer.
    pub cut_displaced: AtomicU64,
    /// Open connections now.
    pub open: AtomicUsize,
    /// Pre-auth connections now.
    pub pending: AtomicUsize,
    /// Most open connections seen at once.
    pub peak_open: AtomicUsize,
    /// Most pre-auth connections seen at once.
    pub peak_pending: AtomicUsize,
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl ConnectionStats {
    fn refused(&self, r: Refused) {
        inc(match r {
            Refused::Address => &self.refused_address,
            Refused::Pending => &self.refused_pending,
            Refused::Full => &self.refused_full,
        })
    }

    /// Counts a connection the listener closed.
    pub fn cut(&self, c: Cut) {
        inc(match c {
            Cut::Handshake => &self.cut_handshake,
            Cut::Auth => &self.cut_auth,
            Cut::Idle => &self.cut_idle,
            Cut::Request => &self.cut_request,
            Cut::Displaced => &self.cut_displaced,
        })
    }
}

// A slot starts at 0: pending.
const PROMOTED: u8 = 1;
const DISPLACED: u8 = 2;

/// One connection's standing, shared by the registry and its socket.
#[derive(Debug, Default)]
struct Slot {
    state: AtomicU8,
    /// Tasks polling the socket (read side, write side), woken on displacement.
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl Slot {
    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    fn displace(&self) {
        self.state.store(DISPLACED, Ordering::Release);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        wakers.into_iter().flatten().for_each(Waker::wake);
    }

    fn register(&self, side: usize, waker: &Waker) {
        let mut w = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        if !w[side].as_ref().is_some_and(|o| o.will_wake(waker)) {
            w[side] = Some(waker.clone());
        }
    }
}

struct Waiting {
    peer: SocketAddr,
    since: Instant,
    slot: Arc<Slot>,
}

#[derive(Default)]
struct Pool {
    next_id: u64,
    open: usize,
    /// Pre-auth connections by id; ids grow, so the first is the oldest.
    pending: BTreeMap<u64, Waiting>,
    by_address: HashMap<IpAddr, BTreeSet<u64>>,
    by_peer: HashMap<SocketAddr, u64>,
}

/// The "source address" the per-address limits count by: an IPv4 address
/// (also when mapped into IPv6), or an IPv6 /64, which one host or home
/// usually holds whole and could otherwise spread its connections across.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Pool {
    fn held_by(&self, ip: IpAddr) -> usize {
        self.by_address.get(&ip).map_or(0, BTreeSet::len)
    }

    fn remove_pending(&mut self, id: u64) -> Option<Waiting> {
        let w = self.pending.remove(&id)?;
        let ip = address_key(w.peer.ip());
        if let Some(ids) = self.by_address.get_mut(&ip) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_address.remove(&ip);
            }
        }
        self.by_peer.remove(&w.peer);
        Some(w)
    }

    /// The oldest pre-auth connection of the address holding the most (of
    /// those holding more than `than`); the earliest on a tie.
    fn oldest_of_heaviest(&self, than: usize) -> Option<u64> {
        self.by_address
            .values()
            .filter(|ids| ids.len() > than)
            .filter_map(|ids| Some((ids.len(), std::cmp::Reverse(*ids.first()?))))
            .max()
            .map(|(_, std::cmp::Reverse(id))| id)
    }

    /// Displaces `victim` if it has waited long enough.
    fn displace(&mut self, victim: Option<u64>, now: Instant, grace: Duration) -> bool {
        let Some(id) = victim else { return false };
        if now.duration_since(self.pending[&id].since) < grace {
            return false;
        }
        if let Some(w) = self.remove_pending(id) {
            w.slot.displace();
        }
        true
    }
}

/// The listener's admission control. Cheap to share.
pub struct Connections {
    limits: ConnectionLimits,
    pool: Mutex<Pool>,
    /// Counters for `/metrics`.
    pub stats: ConnectionStats,
}

impl Connections {
    /// A registry enforcing `limits`.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Connections {
            limits,
            pool: Mutex::default(),
            stats: ConnectionStats::default(),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `peer` accepted now, or says why not.
    pub fn admit(self: &Arc<Self>, peer: SocketAddr) -> Result<Ticket, Refused> {
        self.admit_at(peer, Instant::now())
    }

    fn admit_at(self: &Arc<Self>, peer: SocketAddr, now: Instant) -> Result<Ticket, Refused> {
        let mut pool = self.pool();
        let ip = address_key(peer.ip());
        let verdict = self.make_room(&mut pool, ip, now);
        if let Err(r) = verdict {
            drop(pool);
            self.stats.refused(r);
            return Err(r);
        }
        // A displaced socket counts as open until its task ends, a moment
        // later, so `open` may pass `max_connections` by the displacements in
        // flight.
        let id = pool.next_id;
        pool.next_id += 1;
        pool.open += 1;
        let slot = Arc::new(Slot::default());
        pool.pending.insert(
            id,
            Waiting {
                peer,
                since: now,
                slot: slot.clone(),
            },
        );
        pool.by_address.entry(ip).or_default().insert(id);
        pool.by_peer.insert(peer, id);
        self.publish(&pool);
        drop(pool);
        inc(&self.stats.accepted);
        Ok(Ticket {
            registry: self.clone(),
            id,
            slot,
        })
    }

    /// Whether a newcomer from `ip` fits, displacing a slow pre-auth
    /// connection if it must (see the module's rules).
    fn make_room(&self, pool: &mut Pool, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        let grace = Duration::from_millis(self.limits.displace_after_ms);
        let held = pool.held_by(ip);
        if held >= self.limits.max_pending_per_address {
            // An address only ever displaces its own.
            let oldest = pool.by_address.get(&ip).and_then(|s| s.first().copied());
            return pool
                .displace(oldest, now, grace)
                .then_some(())
                .ok_or(Refused::Address);
        }
        let refusal = if pool.open >= self.limits.max_connections {
            Refused::Full
        } else if pool.pending.len() >= self.limits.max_pending {
            Refused::Pending
        } else {
            return Ok(());
        };
        let victim = pool.oldest_of_heaviest(held);
        pool.displace(victim, now, grace)
            .then_some(())
            .ok_or(refusal)
    }

    /// Marks the connection from `peer` authenticated: it leaves the pre-auth
    /// budget and its deadline becomes an idle timeout. Unknown or already
    /// promoted peers are ignored.
    pub fn promote(&self, peer: SocketAddr) {
        let mut pool = self.pool();
        let Some(id) = pool.by_peer.get(&peer).copied() else {
            return;
        };
        if let Some(w) = pool.remove_pending(id) {
            w.slot.state.store(PROMOTED, Ordering::Release);
            self.publish(&pool);
            inc(&self.stats.promoted);
        }
    }

    fn release(&self, id: u64) {
        let mut pool = self.pool();
        pool.remove_pending(id);
        pool.open -= 1;
        self.publish(&pool);
    }

    fn publish(&self, pool: &Pool) {
        let s = &self.stats;
        s.open.store(pool.open, Ordering::Relaxed);
        s.pending.store(pool.pending.len(), Ordering::Relaxed);
        s.peak_open.fetch_max(pool.open, Ordering::Relaxed);
        s.peak_pending
            .fetch_max(pool.pending.len(), Ordering::Relaxed);
    }

    /// Wraps an admitted socket so it obeys the deadlines.
    pub fn guard<T>(&self, io: T, ticket: Ticket) -> Guarded<T> {
        let due = tokio::time::Instant::now() + Duration::from_secs(self.limits.auth_secs);
        Guarded {
            io,
            ticket,
            timers: [
                Box::pin(tokio::time::sleep_until(due)),
                Box::pin(tokio::time::sleep_until(due)),
            ],
            promoted: false,
            last_progress: tokio::time::Instant::now(),
            idle: Duration::from_secs(self.limits.idle_secs),
            counted: false,
        }
    }
}

/// An admitted connection's place; dropping it frees the place.
pub struct Ticket {
    registry: Arc<Connections>,
    id: u64,
    slot: Arc<Slot>,
}

impl Ticket {
    /// Whether the connection has authenticated.
    pub fn promoted(&self) -> bool {
        self.slot.state() == PROMOTED
    }

    /// Whether a newcomer took this connection's place.
    pub fn displaced(&self) -> bool {
        self.slot.state() == DISPLACED
    }

    /// The registry's counters.
    pub fn stats(&self) -> &ConnectionStats {
        &self.registry.stats
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.release(self.id);
    }
}

const READ: usize = 0;
const WRITE: usize = 1;

/// A socket that fails (and so ends its connection, upgraded or not) when its
/// pre-auth deadline passes, when it is displaced, or once authenticated when
/// no byte has moved either way for the idle timeout. Reads and writes have a
/// timer each, because after a WebSocket upgrade they are often polled by
/// different tasks.
pub struct Guarded<T> {
    io: T,
    ticket: Ticket,
    timers: [Pin<Box<Sleep>>; 2],
    promoted: bool,
    last_progress: tokio::time::Instant,
    idle: Duration,
    counted: bool,
}

impl<T> Guarded<T> {
    /// This connection's ticket.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    fn cut(&mut self, why: Cut) -> io::Error {
        if !std::mem::replace(&mut self.counted, true) {
            self.ticket.stats().cut(why);
        }
        let what = match why {
            Cut::Displaced => "displaced by a newer connection",
            Cut::Auth => "not authenticated in time",
            _ => "idle for too long",
        };
        io::Error::new(io::ErrorKind::TimedOut, what)
    }

    /// The error ending this connection, if its time is up; otherwise arranges
    /// to be woken when it is.
    fn expired(&mut self, side: usize, cx: &mut Context<'_>) -> Option<io::Error> {
        if !self.promoted {
            match self.ticket.slot.state() {
                DISPLACED => return Some(self.cut(Cut::Displaced)),
                PROMOTED => {
                    self.promoted = true;
                    let due = tokio::time::Instant::now() + self.idle;
                    self.timers.iter_mut().for_each(|t| t.as_mut().reset(due));
                }
                _ => self.ticket.slot.register(side, cx.waker()),
            }
        }
        while self.timers[side].as_mut().poll(cx).is_ready() {
            if !self.promoted {
                return Some(self.cut(Cut::Auth));
            }
            let due = self.last_progress + self.idle;
            if due <= tokio::time::Instant::now() {
                return Some(self.cut(Cut::Idle));
            }
            self.timers[side].as_mut().reset(due);
        }
        None
    }

    fn progressed(&mut self, n: usize) {
        if n > 0 && self.promoted {
            self.last_progress = tokio::time::Instant::now();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(READ, cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.progressed(buf.filled().len() - before);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(WRITE, cx) {
            return Poll::Ready(Err(e));
        }
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            this.progressed(n);
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(WRITE, cx) {
            return Poll::Ready(Err(e));
        }
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = r {
            this.progressed(n);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(WRITE, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.expired(WRITE, cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn limits(total: usize, pending: usize, per_address: usize) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: total,
            max_pending: pending,
            max_pending_per_address: per_address,
            displace_after_ms: 1_000,
            ..Default::default()
        }
    }

    fn peer(ip: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, ip], port))
    }

    fn gauges(c: &Connections) -> (usize, usize) {
        (
            c.stats.open.load(Ordering::Relaxed),
            c.stats.pending.load(Ordering::Relaxed),
        )
    }

    #[test]
    fn an_address_at_its_cap_displaces_only_its_own_slow_connections() {
        let c = Connections::new(limits(100, 50, 2));
        let t0 = Instant::now();
        let a1 = c.admit_at(peer(2, 1), t0).unwrap();
        let a2 = c.admit_at(peer(2, 2), t0).unwrap();
        // Both still young: the third from that address is refused…
        assert_eq!(
            c.admit_at(peer(2, 3), t0 + Duration::from_millis(10)).err(),
            Some(Refused::Address)
        );
        // …while another address is unaffected.
        let _b = c.admit_at(peer(3, 1), t0).unwrap();
        // Once they are old, a newcomer from the same address takes the oldest's place.
        let later = t0 + Duration::from_secs(2);
        let a3 = c.admit_at(peer(2, 3), later).unwrap();
        assert!(a1.displaced() && !a2.displaced() && !a3.displaced());
        assert_eq!(c.stats.refused_address.load(Ordering::Relaxed), 1);
        // The displaced one still holds its socket until its task drops it.
        assert_eq!(gauges(&c), (4, 3));
        drop(a1);
        assert_eq!(gauges(&c), (3, 3));
    }

    #[test]
    fn a_full_pre_auth_pool_gives_way_to_newcomers_from_any_address() {
        let c = Connections::new(limits(100, 3, 3));
        let t0 = Instant::now();
        let slow: Vec<Ticket> = (1..=3)
            .map(|p| c.admit_at(peer(2, p), t0).unwrap())
            .collect();
        // A burst: nobody has waited long, so the pool refuses.
        assert_eq!(
            c.admit_at(peer(9, 1), t0 + Duration::from_millis(500))
                .err(),
            Some(Refused::Pending)
        );
        // Later, the school's agent takes the place of the heaviest address's oldest.
        let later = t0 + Duration::from_secs(5);
        let agent = c.admit_at(peer(9, 1), later).unwrap();
        assert!(slow[0].displaced() && !slow[1].displaced());
        assert!(!agent.displaced());
        // The attacker's address now holds 2, no address more: it cannot
        // churn through its own connections, nor touch the school's agent.
        assert_eq!(c.admit_at(peer(2, 9), later).err(), Some(Refused::Pending));
        // The school (holding 1) still displaces the heavier attacker…
        let agent2 = c.admit_at(peer(9, 2), later).unwrap();
        assert!(slow[1].displaced() && !agent.displaced());
        // …and now that the school holds the most, its young connections are
        // protected by the grace period.
        assert_eq!(c.admit_at(peer(2, 10), later).err(), Some(Refused::Pending));
        assert!(!agent.displaced() && !agent2.displaced() && !slow[2].displaced());
        assert_eq!(c.stats.refused_pending.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn authenticated_connections_leave_the_pre_auth_budget_and_keep_a_reserve() {
        let c = Connections::new(limits(6, 2, 2));
        let t0 = Instant::now();
        // Four agents authenticate one after another from one NAT address.
        let agents: Vec<Ticket> = (1..=4)
            .map(|p| {
                let t = c.admit_at(peer(5, p), t0).unwrap();
                c.promote(peer(5, p));
                t
            })
            .collect();
        assert!(agents.iter().all(Ticket::promoted));
        assert_eq!(gauges(&c), (4, 0));
        // Anonymous clients fill the pre-auth pool…
        let anon: Vec<Ticket> = (1..=2)
            .map(|p| c.admit_at(peer(6, p), t0).unwrap())
            .collect();
        assert_eq!(gauges(&c), (6, 2));
        // …the server is full: a newcomer gets in only by displacing a slow
        // pre-auth connection, never an authenticated one.
        assert_eq!(c.admit_at(peer(7, 1), t0).err(), Some(Refused::Full));
        let late = t0 + Duration::from_secs(3);
        let newcomer = c.admit_at(peer(7, 1), late).unwrap();
        assert!(anon[0].displaced());
        assert!(agents.iter().all(|a| !a.displaced()));
        c.promote(peer(7, 1));
        assert!(newcomer.promoted());
        // Promoting twice, or an unknown peer, changes nothing.
        c.promote(peer(7, 1));
        c.promote(peer(8, 8));
        assert_eq!(c.stats.promoted.load(Ordering::Relaxed), 5);
        drop(anon);
        drop(agents);
        assert_eq!(gauges(&c), (1, 0));
        assert_eq!(c.stats.peak_open.load(Ordering::Relaxed), 7);
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        let c = Connections::new(limits(100, 50, 2));
        let v6 = |last: u16| {
            SocketAddr::new(IpAddr::V6([0x2001, 0xdb8, 0, 1, 0, 0, 0, last].into()), 443)
        };
        let t0 = Instant::now();
        let _a = c.admit_at(v6(1), t0).unwrap();
        let _b = c.admit_at(v6(2), t0).unwrap();
        assert_eq!(c.admit_at(v6(3), t0).err(), Some(Refused::Address));
        let other = SocketAddr::new(IpAddr::V6([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1].into()), 443);
        assert!(c.admit_at(other, t0).is_ok());
        // An IPv4 client seen through a dual-stack socket is its IPv4 address.
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
        let _m = c.admit_at(mapped, t0).unwrap();
        let _p = c.admit_at("10.0.0.1:5001".parse().unwrap(), t0).unwrap();
        assert_eq!(
            c.admit_at("10.0.0.1:5002".parse().unwrap(), t0).err(),
            Some(Refused::Address)
        );
    }

    #[test]
    fn limits_are_checked_and_fitted_to_the_descriptors() {
        assert!(ConnectionLimits::default().validate().is_ok());
        let e = limits(10, 10, 5).validate().unwrap_err().to_string();
        assert!(e.contains("connections.max_pending"), "{e}");
        let zero = ConnectionLimits {
            auth_secs: 0,
            ..Default::default()
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("auth_secs"));
        let fitted = ConnectionLimits::default().fit_to(1_024);
        assert_eq!(fitted.max_connections, 1_024 - FD_SPARE);
        assert_eq!(fitted.max_pending, (1_024 - FD_SPARE) / 2);
        assert!(fitted.max_pending_per_address <= fitted.max_pending);
        assert!(fitted.validate().is_ok());
        assert_eq!(
            ConnectionLimits::default().fit_to(1 << 20),
            ConnectionLimits::default()
        );
        let toml = "max_pending = 10\nmax_connections = 20\n";
        let parsed: ConnectionLimits = toml::from_str(toml).unwrap();
        assert_eq!(parsed.max_pending, 10);
        assert_eq!(parsed.auth_secs, 20);
        assert!(toml::from_str::<ConnectionLimits>("max_pendng = 1").is_err());
    }

    /// Reads until the guarded socket fails; the peer never writes.
    async fn read_error(io: &mut Guarded<tokio::io::DuplexStream>) -> io::Error {
        let mut buf = [0u8; 8];
        tokio::time::timeout(Duration::from_secs(30), io.read(&mut buf))
            .await
            .expect("the guard never fired")
            .expect_err("read succeeded")
    }

    #[tokio::test]
    async fn a_silent_connection_is_cut_at_the_auth_deadline() {
        let c = Connections::new(ConnectionLimits {
            auth_secs: 1,
            ..limits(10, 5, 5)
        });
        let (a, _b) = tokio::io::duplex(64);
        let mut io = c.guard(a, c.admit(peer(2, 1)).unwrap());
        assert_eq!(read_error(&mut io).await.kind(), io::ErrorKind::TimedOut);
        assert_eq!(c.stats.cut_auth.load(Ordering::Relaxed), 1);
        drop(io);
        assert_eq!(gauges(&c), (0, 0));
    }

    #[tokio::test]
    async fn an_authenticated_connection_is_cut_only_when_idle() {
        let c = Connections::new(ConnectionLimits {
            auth_secs: 1,
            idle_secs: 5,
            ..limits(10, 5, 5)
        });
        let (a, mut b) = tokio::io::duplex(64);
        let mut io = c.guard(a, c.admit(peer(2, 1)).unwrap());
        c.promote(peer(2, 1));
        // Traffic past the auth deadline keeps it open.
        let mut buf = [0u8; 1];
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(700)).await;
            tokio::io::AsyncWriteExt::write_all(&mut b, b"x")
                .await
                .unwrap();
            io.read_exact(&mut buf).await.unwrap();
        }
        assert_eq!(read_error(&mut io).await.kind(), io::ErrorKind::TimedOut);
        assert_eq!(c.stats.cut_idle.load(Ordering::Relaxed), 1);
        assert_eq!(c.stats.cut_auth.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_displaced_connection_is_woken_and_ends() {
        let c = Connections::new(ConnectionLimits {
            displace_after_ms: 0,
            ..limits(10, 1, 1)
        });
        let (a, _b) = tokio::io::duplex(64);
        let mut io = c.guard(a, c.admit(peer(2, 1)).unwrap());
        let reader = tokio::spawn(async move { read_error(&mut io).await.kind() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _newcomer = c.admit(peer(3, 1)).unwrap();
        assert_eq!(reader.await.unwrap(), io::ErrorKind::TimedOut);
        assert_eq!(c.stats.cut_displaced.load(Ordering::Relaxed), 1);
    }
}
