//! What one enrolled device may send and how it is named (`[devices]` in
//! `server.toml`, per school), and the meters that enforce it in the gateway:
//! token buckets for activity events, violations and evidence bytes, the
//! evidence allowances the server grants, and the quiet window that turns a
//! burst of keyword matches into one lock, one audit row and one log line.
//!
//! Everything here is keyed by device (and the device by its school), so one
//! device exhausting its quota never slows another.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lectern_proto::EvidenceAllowance;
use serde::{Deserialize, Serialize};

/// A school's limits for each of its devices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceLimits {
    /// Activity events a device may have stored per minute, sustained.
    pub events_per_minute: u32,
    /// Events a device may send at once above that rate (catching up after
    /// being offline); at least one full batch.
    pub events_burst: u32,
    /// Violations a device may report (or have found in its events) per hour.
    pub violations_per_hour: u32,
    /// Violations at once above that rate.
    pub violations_burst: u32,
    /// Most evidence frames accepted for one violation (1 to 64).
    pub evidence_frames: u8,
    /// Largest evidence JPEG accepted, bytes.
    pub evidence_frame_bytes: u32,
    /// Evidence bytes a device may upload per hour, sustained.
    pub evidence_bytes_per_hour: u64,
    /// Evidence bytes at once above that rate.
    pub evidence_burst_bytes: u64,
    /// Seconds after an automatic action (lock, audit row, warning) on a
    /// device during which further matches on it are stored but do not act
    /// again: one lock per device per burst of matches.
    pub action_quiet_secs: u32,
    /// Apply a hostname a device reports without an administrator accepting
    /// it (its computer groups follow the new name at once).
    pub accept_reported_names: bool,
    /// Seconds between two full inventory reports from a device (its first
    /// is always taken); a changed hash offered sooner is refused.
    pub inventory_every_secs: u32,
}

impl Default for DeviceLimits {
    fn default() -> Self {
        DeviceLimits {
            events_per_minute: 3_000,
            events_burst: 20_000,
            violations_per_hour: 120,
            violations_burst: 30,
            evidence_frames: 31,
            evidence_frame_bytes: lectern_proto::EVIDENCE_FRAME_BYTES,
            evidence_bytes_per_hour: 64 * 1024 * 1024,
            evidence_burst_bytes: 32 * 1024 * 1024,
            action_quiet_secs: 300,
            accept_reported_names: false,
            inventory_every_secs: 600,
        }
    }
}

impl DeviceLimits {
    /// What the server accepts as evidence for one violation.
    pub fn allowance(&self) -> EvidenceAllowance {
        EvidenceAllowance {
            max_frames: self.evidence_frames.clamp(1, 64),
            max_frame_bytes: self
                .evidence_frame_bytes
                .min(lectern_proto::MAX_BINARY_FRAME as u32),
        }
    }
}

/// `[devices]`: the defaults, and per-school overrides keyed by school id
/// (`[devices.schools.1]`; fields an override leaves out take the built-in
/// defaults).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceRules {
    /// Limits of schools without an override.
    pub defaults: DeviceLimits,
    /// Overrides by school id.
    pub schools: BTreeMap<String, DeviceLimits>,
}

impl DeviceRules {
    /// The limits in force for `school`.
    pub fn for_school(&self, school: i64) -> &DeviceLimits {
        self.schools
            .get(&school.to_string())
            .unwrap_or(&self.defaults)
    }
}

/// The limits in force for `device`: its school's (`[devices.schools."<id>"]`
/// in server.toml), else the server's defaults.
pub fn limits(st: &crate::state::AppState, device: i64) -> &DeviceLimits {
    st.config.devices.for_school(st.device_school(device))
}

/// A token bucket: `capacity` at once, refilled at `per_sec`.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Bucket {
            tokens: capacity,
            at: now,
        }
    }

    /// Takes `n` tokens, or says how long until they are there (`n` is
    /// capped at the capacity, so a request is never refused forever).
    fn take(&mut self, n: f64, capacity: f64, per_sec: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_sec).min(capacity);
        self.at = now;
        let n = n.min(capacity);
        if self.tokens >= n {
            self.tokens -= n;
            return Ok(());
        }
        let wait = (n - self.tokens) / per_sec.max(1e-9);
        Err(Duration::from_secs_f64(wait.min(3600.0)).max(Duration::from_millis(100)))
    }
}

/// What a device has used.
#[derive(Debug)]
struct DeviceMeter {
    events: Bucket,
    violations: Bucket,
    evidence: Bucket,
    /// When the current burst of matches acted (locked, audited, warned).
    burst_started: Option<Instant>,
    /// Whether the current burst already locked the device.
    burst_locked: bool,
    /// Matches in the current burst that did not act again.
    burst_quiet: u64,
    /// When a refusal was last logged at warning level for this device.
    refusal_logged: Option<Instant>,
}

/// Which violation an evidence frame belongs to, as the device names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceKey {
    /// A violation the server found and asked evidence for (its id).
    Requested(i64),
    /// A violation the device reported itself: (device, its local id).
    Reported(i64, u64),
}

/// Evidence the server agreed to take for one violation.
#[derive(Debug, Clone)]
struct Allowance {
    device: i64,
    violation: i64,
    limits: EvidenceAllowance,
    /// Indexes already written (each at most once).
    seen: u64,
    granted: Instant,
}

/// How long an evidence allowance stays open.
pub const EVIDENCE_WAIT: Duration = Duration::from_secs(120);
/// Most open evidence allowances per device; the oldest goes first.
const MAX_ALLOWANCES_PER_DEVICE: usize = 8;

/// What became of one evidence frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceVerdict {
    /// Write it for this violation; `last` when the allowance is used up.
    Accept {
        /// The server's violation id.
        violation: i64,
        /// No more frames are expected.
        last: bool,
    },
    /// Nothing granted covers it (unknown, expired, over the frame count or
    /// size, a repeated index).
    NotAllowed,
    /// Over the device's evidence bytes; retry after this long.
    RateLimited(Duration),
}

/// What the session should do with one automatic action of a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionPlan {
    /// Log the violation at warning level and audit what is done.
    pub announce: bool,
    /// Lock the device (the burst has not locked it yet).
    pub lock: bool,
    /// Matches of the previous burst that stayed quiet (for the summary).
    pub quiet_before: u64,
}

#[derive(Default)]
struct Inner {
    devices: HashMap<i64, DeviceMeter>,
    allowances: HashMap<EvidenceKey, Allowance>,
}

/// Every device's meters and the open evidence allowances.
#[derive(Default)]
pub struct Meters {
    inner: Mutex<Inner>,
}

impl Meters {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn meter<'a>(inner: &'a mut Inner, device: i64, l: &DeviceLimits) -> &'a mut DeviceMeter {
        let now = Instant::now();
        inner.devices.entry(device).or_insert_with(|| DeviceMeter {
            events: Bucket::full(events_capacity(l), now),
            violations: Bucket::full(f64::from(l.violations_burst.max(1)), now),
            evidence: Bucket::full(l.evidence_burst_bytes.max(1) as f64, now),
            burst_started: None,
            burst_locked: false,
            burst_quiet: 0,
            refusal_logged: None,
        })
    }

    /// Takes `n` activity events from the device's allowance.
    pub fn take_events(&self, device: i64, n: usize, l: &DeviceLimits) -> Result<(), Duration> {
        let per_sec = f64::from(l.events_per_minute.max(1)) / 60.0;
        self.with(|i| {
            Self::meter(i, device, l).events.take(
                n as f64,
                events_capacity(l),
                per_sec,
                Instant::now(),
            )
        })
    }

    /// Gives back events a batch replayed (already stored): only new rows
    /// count against the rate, so resending after a crash costs nothing.
    pub fn refund_events(&self, device: i64, n: usize, l: &DeviceLimits) {
        if n == 0 {
            return;
        }
        let cap = events_capacity(l);
        self.with(|i| {
            let b = &mut Self::meter(i, device, l).events;
            b.tokens = (b.tokens + n as f64).min(cap);
        });
    }

    /// Takes one violation from the device's allowance.
    pub fn take_violation(&self, device: i64, l: &DeviceLimits) -> Result<(), Duration> {
        let per_sec = f64::from(l.violations_per_hour.max(1)) / 3600.0;
        let cap = f64::from(l.violations_burst.max(1));
        self.with(|i| {
            Self::meter(i, device, l)
                .violations
                .take(1.0, cap, per_sec, Instant::now())
        })
    }

    /// Whether a refusal for this device should be logged at warning level
    /// now (once per quiet window), so a flood makes one log line, not one per
    /// frame.
    pub fn log_refusal(&self, device: i64, l: &DeviceLimits) -> bool {
        let quiet = Duration::from_secs(u64::from(l.action_quiet_secs));
        self.with(|i| {
            let m = Self::meter(i, device, l);
            let now = Instant::now();
            if m.refusal_logged.is_some_and(|t| now - t < quiet) {
                return false;
            }
            m.refusal_logged = Some(now);
            true
        })
    }

    /// Plans the automatic action for a new violation on `device`: the first
    /// match of a burst announces itself; the first lock-worthy match of a
    /// burst locks; the rest stay quiet until `action_quiet_secs` pass
    /// without an announced match.
    pub fn plan_action(&self, device: i64, wants_lock: bool, l: &DeviceLimits) -> ActionPlan {
        let quiet = Duration::from_secs(u64::from(l.action_quiet_secs));
        self.with(|i| {
            let m = Self::meter(i, device, l);
            let now = Instant::now();
            let in_burst = m.burst_started.is_some_and(|t| now - t < quiet);
            let mut plan = ActionPlan {
                announce: !in_burst,
                lock: false,
                quiet_before: 0,
            };
            if !in_burst {
                plan.quiet_before = std::mem::take(&mut m.burst_quiet);
                m.burst_started = Some(now);
                m.burst_locked = false;
            }
            if wants_lock && !m.burst_locked {
                m.burst_locked = true;
                plan.lock = true;
                plan.announce = true;
            }
            if !plan.announce {
                m.burst_quiet += 1;
            }
            plan
        })
    }

    /// Grants evidence for a violation: the server asked for it, or the
    /// device reported it itself. Expired allowances are dropped here, and a
    /// device holds at most a few at once.
    pub fn grant(&self, key: EvidenceKey, device: i64, violation: i64, l: &DeviceLimits) {
        let now = Instant::now();
        self.with(|i| {
            i.allowances
                .retain(|_, a| now.duration_since(a.granted) < EVIDENCE_WAIT);
            let mut mine: Vec<_> = i
                .allowances
                .iter()
                .filter(|(_, a)| a.device == device)
                .map(|(k, a)| (a.granted, *k))
                .collect();
            if mine.len() >= MAX_ALLOWANCES_PER_DEVICE {
                mine.sort_by_key(|(t, _)| *t);
                for (_, k) in &mine[..=mine.len() - MAX_ALLOWANCES_PER_DEVICE] {
                    i.allowances.remove(k);
                }
            }
            i.allowances.insert(
                key,
                Allowance {
                    device,
                    violation,
                    limits: l.allowance(),
                    seen: 0,
                    granted: now,
                },
            );
        });
    }

    /// Decides about one evidence frame of `bytes` from `device`.
    pub fn evidence(
        &self,
        key: EvidenceKey,
        device: i64,
        index: u8,
        bytes: usize,
        l: &DeviceLimits,
    ) -> EvidenceVerdict {
        let now = Instant::now();
        let per_sec = l.evidence_bytes_per_hour.max(1) as f64 / 3600.0;
        let cap = l.evidence_burst_bytes.max(1) as f64;
        self.with(|i| {
            let Some(a) = i.allowances.get(&key) else {
                return EvidenceVerdict::NotAllowed;
            };
            let bit = 1u64.checked_shl(u32::from(index)).unwrap_or(0);
            if a.device != device
                || now.duration_since(a.granted) >= EVIDENCE_WAIT
                || index >= a.limits.max_frames
                || bytes > a.limits.max_frame_bytes as usize
                || bit == 0
                || a.seen & bit != 0
            {
                return EvidenceVerdict::NotAllowed;
            }
            let violation = a.violation;
            if let Err(wait) =
                Self::meter(i, device, l)
                    .evidence
                    .take(bytes as f64, cap, per_sec, now)
            {
                return EvidenceVerdict::RateLimited(wait);
            }
            let a = i.allowances.get_mut(&key).expect("checked above");
            a.seen |= bit;
            let last = a.seen.count_ones() >= u32::from(a.limits.max_frames);
            if last {
                i.allowances.remove(&key);
            }
            EvidenceVerdict::Accept { violation, last }
        })
    }

    /// Closes an allowance (the device sent its last frame).
    pub fn close(&self, key: EvidenceKey) {
        self.with(|i| i.allowances.remove(&key));
    }

    /// Open evidence allowances (for tests and metrics).
    pub fn open_allowances(&self) -> usize {
        self.with(|i| i.allowances.len())
    }
}

fn events_capacity(l: &DeviceLimits) -> f64 {
    f64::from(l.events_burst.max(lectern_proto::MAX_ACTIVITY_BATCH as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DeviceLimits {
        DeviceLimits {
            events_per_minute: 60,
            events_burst: 500,
            violations_burst: 2,
            evidence_frames: 2,
            evidence_frame_bytes: 100,
            evidence_burst_bytes: 150,
            ..DeviceLimits::default()
        }
    }

    #[test]
    fn buckets_refuse_beyond_the_burst_per_device() {
        let m = Meters::default();
        let l = limits();
        assert!(m.take_events(1, 500, &l).is_ok());
        let wait = m.take_events(1, 10, &l).unwrap_err();
        assert!(wait >= Duration::from_secs(9), "{wait:?}");
        // Another device is untouched.
        assert!(m.take_events(2, 500, &l).is_ok());
        // Replayed events (already stored) are given back.
        m.refund_events(1, 500, &l);
        assert!(m.take_events(1, 500, &l).is_ok());
        assert!(m.take_violation(1, &l).is_ok());
        assert!(m.take_violation(1, &l).is_ok());
        assert!(m.take_violation(1, &l).is_err());
    }

    #[test]
    fn evidence_needs_an_allowance_and_fits_its_sizes() {
        let m = Meters::default();
        let l = limits();
        let key = EvidenceKey::Requested(7);
        assert_eq!(m.evidence(key, 1, 0, 10, &l), EvidenceVerdict::NotAllowed);
        m.grant(key, 1, 7, &l);
        // Another device cannot use it; too big, out of range or twice: no.
        assert_eq!(m.evidence(key, 2, 0, 10, &l), EvidenceVerdict::NotAllowed);
        assert_eq!(m.evidence(key, 1, 0, 101, &l), EvidenceVerdict::NotAllowed);
        assert_eq!(m.evidence(key, 1, 2, 10, &l), EvidenceVerdict::NotAllowed);
        assert_eq!(
            m.evidence(key, 1, 0, 100, &l),
            EvidenceVerdict::Accept {
                violation: 7,
                last: false
            }
        );
        assert_eq!(m.evidence(key, 1, 0, 10, &l), EvidenceVerdict::NotAllowed);
        // 100 of the 150 bytes are used.
        assert!(matches!(
            m.evidence(key, 1, 1, 100, &l),
            EvidenceVerdict::RateLimited(_)
        ));
        assert_eq!(
            m.evidence(key, 1, 1, 50, &l),
            EvidenceVerdict::Accept {
                violation: 7,
                last: true
            }
        );
        assert_eq!(m.open_allowances(), 0);
    }

    #[test]
    fn allowances_per_device_are_bounded() {
        let m = Meters::default();
        let l = limits();
        for v in 0..100 {
            m.grant(EvidenceKey::Requested(v), 1, v, &l);
        }
        assert_eq!(m.open_allowances(), MAX_ALLOWANCES_PER_DEVICE);
        // The newest survive.
        assert_ne!(
            m.evidence(EvidenceKey::Requested(99), 1, 0, 1, &l),
            EvidenceVerdict::NotAllowed
        );
    }

    #[test]
    fn a_burst_locks_and_announces_once() {
        let m = Meters::default();
        let l = limits();
        let first = m.plan_action(1, false, &l);
        assert!(first.announce && !first.lock);
        let lock = m.plan_action(1, true, &l);
        assert!(lock.announce && lock.lock);
        for _ in 0..50 {
            let p = m.plan_action(1, true, &l);
            assert!(!p.announce && !p.lock);
        }
        // Another device has its own burst.
        assert!(m.plan_action(2, true, &l).lock);
    }
}
