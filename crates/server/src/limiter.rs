//! Login rate limiting, per user name and per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A failure counter's key: (lower-cased user name or `None` for the address
/// as a whole, client address).
type Key = (Option<String>, IpAddr);

/// Counts failed logins in a sliding window: at most `per_user` failures for one
/// (user name, address) pair and `per_address` for one address, so neither
/// guessing one password nor spraying many user names gets far.
pub struct LoginLimiter {
    window: Duration,
    per_user: usize,
    per_address: usize,
    failures: Mutex<HashMap<Key, Vec<Instant>>>,
}

impl LoginLimiter {
    /// A limiter with the given window and limits.
    pub fn new(window: Duration, per_user: usize, per_address: usize) -> Self {
        LoginLimiter {
            window,
            per_user,
            per_address,
            failures: Mutex::default(),
        }
    }

    fn count(&self, key: &Key, now: Instant) -> usize {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let Some(v) = map.get_mut(key) else { return 0 };
        v.retain(|t| now.duration_since(*t) < self.window);
        v.len()
    }

    /// Seconds to wait if this attempt must be refused.
    pub fn check(&self, user: &str, addr: IpAddr) -> Option<u64> {
        let now = Instant::now();
        let limited = self.count(&(Some(user.to_lowercase()), addr), now) >= self.per_user
            || self.count(&(None, addr), now) >= self.per_address;
        limited.then_some(self.window.as_secs().max(1))
    }

    /// Records a failed attempt.
    pub fn failed(&self, user: &str, addr: IpAddr) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((Some(user.to_lowercase()), addr))
            .or_default()
            .push(now);
        map.entry((None, addr)).or_default().push(now);
        // Bound memory under a flood of distinct names.
        if map.len() > 100_000 {
            map.retain(|_, v| {
                v.last()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
    }

    /// Clears a user's failures after a good login from `addr`.
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(Some(user.to_lowercase()), addr));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_user_and_per_address() {
        let l = LoginLimiter::new(Duration::from_secs(60), 3, 5);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check("Amy", a).is_none());
            l.failed("amy", a);
        }
        assert!(l.check("AMY", a).is_some(), "user name is case-insensitive");
        assert!(l.check("amy", b).is_none(), "other address unaffected");
        assert!(l.check("bob", a).is_none());
        l.failed("bob", a);
        l.failed("carl", a);
        assert!(
            l.check("dora", a).is_some(),
            "address limit across user names"
        );
        l.succeeded("amy", b);
        assert!(l.check("amy", b).is_none());
    }
}
