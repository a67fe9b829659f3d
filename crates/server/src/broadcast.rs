//! Broadcast limits and the "who is receiving" states, kept apart from the
//! hub's bookkeeping as pure functions of explicit times (so they are tested
//! without clocks).

use serde::Serialize;

/// Most frames a broadcast passes on per second, from any source (a student's
/// screen or a console's uploads); frames above it are dropped, never queued.
pub const MAX_FPS: u32 = 15;

/// Largest JPEG a broadcast passes on: what fits in an agent's media frame.
pub const MAX_FRAME_BYTES: usize =
    lectern_proto::MAX_BINARY_FRAME - lectern_proto::MEDIA_HEADER_LEN;

/// How long a target may take to report the broadcast on screen before the
/// receiving list calls it failed (ms).
pub const SHOW_GRACE_MS: i64 = 10_000;

/// A token bucket of frames: [`MAX_FPS`] a second, at most [`MAX_FPS`] at
/// once, so a burst cannot exceed one second's worth.
#[derive(Debug, Clone)]
pub struct FrameBudget {
    /// Frames that may pass now, in thousandths.
    tokens_milli: i64,
    /// When the bucket was last topped up (ms).
    at_ms: i64,
}

impl FrameBudget {
    const FULL: i64 = MAX_FPS as i64 * 1000;

    /// A full bucket at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        FrameBudget {
            tokens_milli: Self::FULL,
            at_ms: now_ms,
        }
    }

    /// Whether one more frame may pass at `now_ms` (and takes it if so).
    pub fn take(&mut self, now_ms: i64) -> bool {
        let elapsed = (now_ms - self.at_ms).max(0);
        self.at_ms = self.at_ms.max(now_ms);
        // MAX_FPS frames per 1000 ms = MAX_FPS thousandths of a frame per ms.
        let refill = elapsed.saturating_mul(i64::from(MAX_FPS));
        self.tokens_milli = self.tokens_milli.saturating_add(refill).min(Self::FULL);
        if self.tokens_milli >= 1000 {
            self.tokens_milli -= 1000;
            true
        } else {
            false
        }
    }
}

/// What a target of a broadcast is doing, as the receiving list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Receiving {
    /// The device reports the broadcast on its screen.
    Showing,
    /// Asked to show it, not reported yet (within [`SHOW_GRACE_MS`]).
    Starting,
    /// Asked more than [`SHOW_GRACE_MS`] ago and still not showing it.
    Failed,
    /// Not connected; it shows the broadcast when it reconnects.
    Offline,
    /// Connected, but its agent cannot show broadcasts.
    NotSupported,
}

/// What the hub knows about one target.
#[derive(Debug, Clone, Copy)]
pub struct TargetFacts {
    /// Connected now.
    pub online: bool,
    /// Announced the `broadcast` capability.
    pub supported: bool,
    /// Its last state says a broadcast covers the screen.
    pub shown: bool,
    /// When it was last asked to show this broadcast (ms), if it was.
    pub asked_ms: Option<i64>,
}

impl TargetFacts {
    /// The target's state at `now_ms`.
    pub fn receiving(&self, now_ms: i64) -> Receiving {
        match *self {
            TargetFacts { online: false, .. } => Receiving::Offline,
            TargetFacts {
                supported: false, ..
            } => Receiving::NotSupported,
            TargetFacts { shown: true, .. } => Receiving::Showing,
            TargetFacts {
                asked_ms: Some(at), ..
            } if now_ms - at < SHOW_GRACE_MS => Receiving::Starting,
            _ => Receiving::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_passes_one_seconds_worth_then_refills_at_the_rate() {
        let mut b = FrameBudget::new(1_000);
        let burst = (0..100).filter(|_| b.take(1_000)).count();
        assert_eq!(burst, MAX_FPS as usize);
        assert!(!b.take(1_000));
        // One frame's worth of time later, one more.
        assert!(b.take(1_000 + 1000 / i64::from(MAX_FPS) + 1));
        assert!(!b.take(1_000 + 1000 / i64::from(MAX_FPS) + 1));
        // A long pause refills only up to one second's worth.
        let later = (0..100).filter(|_| b.take(60_000)).count();
        assert_eq!(later, MAX_FPS as usize);
        // Time going backwards gives nothing.
        assert!(!b.take(0));
    }

    #[test]
    fn receiving_states_follow_the_facts() {
        let f = |online, supported, shown, asked_ms| TargetFacts {
            online,
            supported,
            shown,
            asked_ms,
        };
        assert_eq!(
            f(false, true, true, Some(0)).receiving(0),
            Receiving::Offline
        );
        assert_eq!(
            f(true, false, false, Some(0)).receiving(0),
            Receiving::NotSupported
        );
        assert_eq!(
            f(true, true, true, Some(0)).receiving(1_000_000),
            Receiving::Showing
        );
        assert_eq!(
            f(true, true, false, Some(0)).receiving(SHOW_GRACE_MS - 1),
            Receiving::Starting
        );
        assert_eq!(
            f(true, true, false, Some(0)).receiving(SHOW_GRACE_MS),
            Receiving::Failed
        );
        assert_eq!(f(true, true, false, None).receiving(0), Receiving::Failed);
    }
}
