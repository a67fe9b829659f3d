//! Login slow-down: failed logins make the next attempt wait, growing
//! exponentially, per (user name, address), per user name from anywhere, and
//! per address by how many *different* user names failed from it.
//!
//! Nothing is a hard block of an address: thousands of pupils and teachers
//! share one NAT address, so one person guessing a password there must not
//! stop everyone else logging in. Guessing one name is slowed by that name's
//! own delays; spraying many names from one address is slowed by the address
//! delay, which starts only after many distinct names failed and stays short.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How one tier grows its delay.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Failures allowed before any delay.
    pub free: u32,
    /// The first delay; each further failure doubles it.
    pub base: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` failures.
    pub fn delay(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(30);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// The limiter's settings.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// One user name from one address.
    pub pair: Backoff,
    /// One user name from any address (a guess spread over many addresses).
    pub user: Backoff,
    /// One address, counted in distinct user names that failed from it.
    pub address: Backoff,
    /// Failures older than this (since the key's last failure) are forgotten.
    pub forget_after: Duration,
}

impl Default for LoginPolicy {
    /// 3 free failures per (name, address), then 1 s doubling to 5 min; 10 per
    /// name from anywhere, then 1 s doubling to 15 min; 100 distinct failing
    /// names per address (a whole school mistyping behind one NAT address),
    /// then 1 s doubling to only 10 s; forgotten after an hour without failures.
    fn default() -> Self {
        LoginPolicy {
            pair: Backoff {
                free: 3,
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
            user: Backoff {
                free: 10,
                base: Duration::from_secs(1),
                max: Duration::from_secs(900),
            },
            address: Backoff {
                free: 100,
                base: Duration::from_secs(1),
                max: Duration::from_secs(10),
            },
            forget_after: Duration::from_secs(3600),
        }
    }
}

/// The limits on registering with a wrong school code (keyed by a fixed
/// name, so `pair` is per address and `user` is everyone): 5 free
/// failures per address, then 1 s doubling to 15 min; 1,000 from all
/// addresses, then 1 s doubling to only 10 s, so that a guesser spread over
/// many addresses is slowed without locking a school out for long. With 50
/// bits in a code, guessing one stays hopeless either way.
pub fn school_code_policy() -> LoginPolicy {
    LoginPolicy {
        pair: Backoff {
            free: 5,
            base: Duration::from_secs(1),
            max: Duration::from_secs(900),
        },
        user: Backoff {
            free: 1000,
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        },
        address: Backoff {
            free: 100,
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        },
        forget_after: Duration::from_secs(3600),
    }
}

/// Failures of one key.
#[derive(Debug, Default)]
struct Record {
    failures: u32,
    last: Option<Instant>,
}

impl Record {
    fn fail(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last = Some(now);
    }
    fn stale(&self, now: Instant, forget: Duration) -> bool {
        self.last
            .is_none_or(|t| now.saturating_duration_since(t) >= forget)
    }
    /// Time left before another attempt may be tried.
    fn wait(&self, b: &Backoff, now: Instant) -> Duration {
        let Some(last) = self.last else {
            return Duration::ZERO;
        };
        b.delay(self.failures)
            .saturating_sub(now.saturating_duration_since(last))
    }
}

/// Failures of one address: the distinct user names that failed from it.
#[derive(Debug, Default)]
struct AddressRecord {
    names: HashSet<String>,
    last: Option<Instant>,
}

#[derive(Default)]
struct Tables {
    /// The settings: behind the same lock as the counts, so a school's new
    /// login limits apply from the next attempt without a restart.
    policy: LoginPolicy,
    pairs: HashMap<(String, IpAddr), Record>,
    users: HashMap<String, Record>,
    addresses: HashMap<IpAddr, AddressRecord>,
}

/// A login limiter per school (issue 16: schools are tenants): each with
/// its school's login limits, so that failures at one school never slow
/// down sign-ins at another (two schools may both have an `admin`).
#[derive(Default)]
pub struct SchoolLimiters {
    schools: std::sync::RwLock<HashMap<lectern_store::SchoolId, std::sync::Arc<LoginLimiter>>>,
}

impl SchoolLimiters {
    /// `school`'s limiter (with the default limits until its settings are
    /// read).
    pub fn of(&self, school: lectern_store::SchoolId) -> std::sync::Arc<LoginLimiter> {
        if let Some(l) = self
            .schools
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&school)
        {
            return l.clone();
        }
        self.schools
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(school)
            .or_default()
            .clone()
    }

    /// Sets `school`'s limits; failures already counted stay counted.
    pub fn set_policy(&self, school: lectern_store::SchoolId, policy: LoginPolicy) {
        self.of(school).set_policy(policy);
    }
}

/// Tracks failed logins and says how long an attempt must wait.
pub struct LoginLimiter {
    tables: Mutex<Tables>,
}

/// Entries kept before stale ones are swept (bounds memory under a flood of
/// made-up names).
const SWEEP_AT: usize = 100_000;
/// Distinct names remembered per address: enough to reach the longest delay.
const NAMES_PER_ADDRESS: usize = 1_000;

impl LoginLimiter {
    /// A limiter with `policy`.
    pub fn new(policy: LoginPolicy) -> Self {
        LoginLimiter {
            tables: Mutex::new(Tables {
                policy,
                ..Tables::default()
            }),
        }
    }

    /// Replaces the settings; failures already counted stay counted.
    pub fn set_policy(&self, policy: LoginPolicy) {
        self.tables().policy = policy;
    }

    /// The settings in force.
    pub fn policy(&self) -> LoginPolicy {
        self.tables().policy
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whole seconds to wait (at least 1) if an attempt now must be refused.
    pub fn check(&self, user: &str, addr: IpAddr) -> Option<u64> {
        self.check_at(user, addr, Instant::now())
    }

    /// [`check`](Self::check) at `now`.
    pub fn check_at(&self, user: &str, addr: IpAddr, now: Instant) -> Option<u64> {
        let user = user.to_lowercase();
        let t = self.tables();
        let p = &t.policy;
        let pair = t
            .pairs
            .get(&(user.clone(), addr))
            .map_or(Duration::ZERO, |r| r.wait(&p.pair, now));
        let by_user = t
            .users
            .get(&user)
            .map_or(Duration::ZERO, |r| r.wait(&p.user, now));
        let by_address = t.addresses.get(&addr).map_or(Duration::ZERO, |a| {
            let r = Record {
                failures: a.names.len() as u32,
                last: a.last,
            };
            r.wait(&p.address, now)
        });
        let wait = pair.max(by_user).max(by_address);
        (!wait.is_zero()).then(|| wait.as_secs_f64().ceil().max(1.0) as u64)
    }

    /// Records a failed attempt.
    pub fn failed(&self, user: &str, addr: IpAddr) {
        self.failed_at(user, addr, Instant::now());
    }

    /// [`failed`](Self::failed) at `now`.
    pub fn failed_at(&self, user: &str, addr: IpAddr, now: Instant) {
        let user = user.to_lowercase();
        let mut t = self.tables();
        let forget = t.policy.forget_after;
        let pair = t.pairs.entry((user.clone(), addr)).or_default();
        if pair.stale(now, forget) {
            *pair = Record::default();
        }
        pair.fail(now);
        let by_user = t.users.entry(user.clone()).or_default();
        if by_user.stale(now, forget) {
            *by_user = Record::default();
        }
        by_user.fail(now);
        let a = t.addresses.entry(addr).or_default();
        if a.last
            .is_none_or(|l| now.saturating_duration_since(l) >= forget)
        {
            a.names.clear();
        }
        if a.names.len() < NAMES_PER_ADDRESS {
            a.names.insert(user);
        }
        a.last = Some(now);
        if t.pairs.len() + t.users.len() + t.addresses.len() > SWEEP_AT {
            t.pairs.retain(|_, r| !r.stale(now, forget));
            t.users.retain(|_, r| !r.stale(now, forget));
            t.addresses.retain(|_, a| {
                a.last
                    .is_some_and(|l| now.saturating_duration_since(l) < forget)
            });
        }
    }

    /// After a good login from `addr`: that name's failures from there are
    /// forgotten. The name's failures from elsewhere and the address's stay,
    /// so a guesser who also knows one password gains nothing.
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        self.tables().pairs.remove(&(user.to_lowercase(), addr));
    }
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(LoginPolicy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn delays_double_up_to_their_ceiling() {
        let b = Backoff {
            free: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        };
        let secs: Vec<u64> = (0..14).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(b.delay(u32::MAX).as_secs(), 300);
    }

    #[test]
    fn one_name_guessed_behind_a_nat_does_not_stop_the_others() {
        let l = LoginLimiter::default();
        let nat = ip("10.0.0.1");
        let t0 = Instant::now();
        // 50 guesses at one name, as fast as the limiter lets them through.
        let mut now = t0;
        for _ in 0..50 {
            if let Some(w) = l.check_at("victim", nat, now) {
                now += Duration::from_secs(w);
            }
            l.failed_at("victim", nat, now);
        }
        assert!(
            l.check_at("Victim", nat, now).is_some(),
            "the name is slowed, case-insensitively"
        );
        assert!(
            now - t0 > Duration::from_secs(3600),
            "50 guesses took hours, not seconds: {:?}",
            now - t0
        );
        for u in 0..1000 {
            assert_eq!(l.check_at(&format!("pupil{u}"), nat, now), None);
        }
        // Elsewhere, the attacked name is slowed too (per name, any address).
        assert!(l.check_at("victim", ip("10.9.9.9"), now).is_some());
    }

    #[test]
    fn pair_delay_grows_and_ends() {
        let l = LoginLimiter::default();
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.check_at("amy", a, t0), None);
            l.failed_at("amy", a, t0);
        }
        assert_eq!(l.check_at("amy", a, t0), Some(1));
        assert_eq!(l.check_at("amy", a, t0 + Duration::from_secs(1)), None);
        l.failed_at("amy", a, t0 + Duration::from_secs(1));
        assert_eq!(l.check_at("amy", a, t0 + Duration::from_secs(1)), Some(2));
        assert_eq!(l.check_at("amy", ip("10.0.0.2"), t0), None);
        l.succeeded("amy", a);
        assert_eq!(l.check_at("amy", a, t0 + Duration::from_secs(1)), None);
        // Forgotten an hour after the last failure.
        let l = LoginLimiter::default();
        for _ in 0..20 {
            l.failed_at("bob", a, t0);
        }
        assert!(l.check_at("bob", a, t0).is_some());
        assert_eq!(l.check_at("bob", a, t0 + Duration::from_secs(3600)), None);
    }

    #[test]
    fn one_name_from_many_addresses_is_slowed() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..10 {
            l.failed_at("amy", ip(&format!("10.1.0.{i}")), t0);
        }
        assert_eq!(l.check_at("amy", ip("10.2.0.1"), t0), Some(1));
        assert_eq!(l.check_at("bob", ip("10.2.0.1"), t0), None);
    }

    #[test]
    fn spraying_many_names_slows_the_address_briefly() {
        let l = LoginLimiter::default();
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for i in 0..99 {
            l.failed_at(&format!("user{i}"), a, t0);
            l.failed_at(&format!("user{i}"), a, t0);
        }
        assert_eq!(l.check_at("someone", a, t0), None, "99 names: no delay");
        l.failed_at("user99", a, t0);
        assert_eq!(l.check_at("someone", a, t0), Some(1));
        for i in 100..500 {
            l.failed_at(&format!("user{i}"), a, t0);
        }
        assert_eq!(l.check_at("someone", a, t0), Some(10), "ceiling 10 s");
        assert_eq!(l.check_at("someone", ip("10.0.0.2"), t0), None);
    }
}
