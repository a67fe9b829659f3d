//! The review workflow's limits and its stream event (the routes are in
//! `api/review.rs`).
//!
//! Changes are limited per console user over a sliding ten-minute window,
//! counted per violation a request names (so a bulk action costs what it
//! touches, and probing with invisible ids costs too).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lectern_store::review::{CaseEvent, CaseState};
use serde::Serialize;

/// Most violations one request may name.
pub const MAX_IDS: usize = 500;
/// Most characters in a note.
pub const MAX_NOTE_CHARS: usize = 4000;
/// The window the per-user limits count over.
pub const WINDOW: Duration = Duration::from_secs(600);
/// Status and assignee changes per user per window (counted per violation).
pub const CHANGES_PER_WINDOW: u32 = 2000;
/// Notes per user per window (counted per violation noted).
pub const NOTES_PER_WINDOW: u32 = 100;

/// What each user spent recently: (when, changes, notes) per request.
type Spent = VecDeque<(Instant, u32, u32)>;

/// Per-user budgets of case changes and notes, keyed by (school, user name
/// in lower case).
#[derive(Default)]
pub struct ReviewState {
    spent: Mutex<HashMap<(i64, String), Spent>>,
}

impl ReviewState {
    /// Spends `changes` and `notes` of `user`'s budget; `Err(seconds)` to
    /// wait when either would go over (nothing is spent then).
    pub fn spend(
        &self,
        school: i64,
        user: &str,
        changes: u32,
        notes: u32,
        now: Instant,
    ) -> Result<(), u64> {
        let mut all = self.spent.lock().unwrap_or_else(|p| p.into_inner());
        // Forget users whose window has passed, so the table stays small.
        all.retain(|_, q| {
            q.back()
                .is_some_and(|(t, ..)| now.duration_since(*t) < WINDOW)
        });
        let q = all.entry((school, user.to_lowercase())).or_default();
        while q
            .front()
            .is_some_and(|(t, ..)| now.duration_since(*t) >= WINDOW)
        {
            q.pop_front();
        }
        let (c, n) = q.iter().fold((0u32, 0u32), |(c, n), e| (c + e.1, n + e.2));
        if c + changes > CHANGES_PER_WINDOW || n + notes > NOTES_PER_WINDOW {
            let oldest = q.front().map_or(now, |e| e.0);
            let left = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(left.as_secs().max(1));
        }
        q.push_back((now, changes, notes));
        Ok(())
    }
}

/// A case changed: sent on the console stream as `{"type": "case", "case": …}`
/// to consoles that may read the violation.
#[derive(Debug, Clone, Serialize)]
pub struct CaseUpdate {
    /// The violation.
    pub violation_id: i64,
    /// Its device (for scoping).
    pub device_id: i64,
    /// Its state now.
    #[serde(flatten)]
    pub state: CaseState,
    /// What changed.
    pub events: Vec<CaseEvent>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_per_user_and_school_and_refill_after_the_window() {
        let r = ReviewState::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(60);
        assert!(r.spend(1, "Khan", 0, NOTES_PER_WINDOW, t0).is_ok());
        assert_eq!(r.spend(1, "khan", 0, 1, t1), Err(540));
        // Changes have their own budget; others and other schools theirs.
        assert!(r.spend(1, "khan", CHANGES_PER_WINDOW, 0, t1).is_ok());
        assert!(r.spend(1, "khan", 1, 0, t1).is_err());
        assert!(r.spend(1, "lee", 1, 1, t1).is_ok());
        assert!(r.spend(2, "khan", 1, 1, t1).is_ok());
        // The notes spent at t0 leave the window; the changes of t1 not yet.
        assert!(r.spend(1, "khan", 0, 1, t0 + WINDOW).is_ok());
        assert!(r.spend(1, "khan", 1, 0, t0 + WINDOW).is_err());
    }
}
