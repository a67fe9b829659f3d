//! The server's time source for the timetable: the system time plus an
//! offset that only debug builds can change (`PUT /api/v1/debug/clock`), so
//! tests move time forward without sleeping. Release builds have no way to
//! set the offset: it stays 0 and [`Clock::now_ms`] is the system time.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use chrono::{Local, NaiveDate, NaiveDateTime, TimeZone};

/// Wall-clock time as the scheduler sees it.
pub struct Clock {
    offset_ms: AtomicI64,
    /// Woken when the time is moved, so timers recompute their wait.
    pub moved: tokio::sync::Notify,
    /// How many times the time was moved.
    generation: AtomicU64,
    /// The generation the scheduler's last finished turn started at: a
    /// move answers once the scheduler has acted on it.
    done: tokio::sync::watch::Sender<u64>,
    /// The move generation, for timers besides the scheduler ([`Clock::follow`]).
    moves: tokio::sync::watch::Sender<u64>,
    /// Each follower's last finished turn: a move also waits for these.
    followers: std::sync::Mutex<Vec<tokio::sync::watch::Receiver<u64>>>,
}

/// A timer besides the timetable scheduler that acts on clock moves: it
/// wakes on each move, and a move answers only once it reported the turn
/// done. Dropping it (the timer ended) stops the waiting for it.
pub struct Follower {
    moves: tokio::sync::watch::Receiver<u64>,
    done: tokio::sync::watch::Sender<u64>,
}

impl Follower {
    /// Resolves when the clock is moved (at once if it moved since the
    /// last call).
    pub async fn moved(&mut self) {
        if self.moves.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The turn that began at `generation` (read before the time) is done.
    pub fn turn_done(&self, generation: u64) {
        self.done.send_replace(generation);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            offset_ms: AtomicI64::new(0),
            moved: tokio::sync::Notify::new(),
            generation: AtomicU64::new(0),
            done: tokio::sync::watch::Sender::new(0),
            moves: tokio::sync::watch::Sender::new(0),
            followers: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        lectern_store::now_ms() + self.offset_ms.load(Ordering::Relaxed)
    }

    /// The local date and time now.
    pub fn local_now(&self) -> NaiveDateTime {
        local_of(self.now_ms())
    }

    /// How far the clock is from the system time, ms.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The number of moves so far; a timer reads it before the time.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Registers a timer that acts on moves (see [`Follower`]).
    pub fn follow(&self) -> Follower {
        let (done, rx) = tokio::sync::watch::channel(self.generation());
        self.followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rx);
        Follower {
            moves: self.moves.subscribe(),
            done,
        }
    }

    /// A timer finished a turn that began at `generation`.
    pub fn turn_done(&self, generation: u64) {
        self.done.send_replace(generation);
    }

    /// Sets the clock to read `now_ms` (debug builds only), wakes timers and
    /// waits (up to 10 s) until the scheduler and every follower have
    /// finished a turn at the new time, so a test's next request sees what
    /// the move caused.
    #[cfg(debug_assertions)]
    pub async fn set(&self, now_ms: i64) {
        self.offset_ms
            .store(now_ms - lectern_store::now_ms(), Ordering::SeqCst);
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let mut done = self.done.subscribe();
        let mut followers = self
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        self.moved.notify_one();
        self.moves.send_replace(generation);
        let all = async {
            let _ = done.wait_for(|g| *g >= generation).await;
            for f in &mut followers {
                // An error is a follower that ended: nothing to wait for.
                let _ = f.wait_for(|g| *g >= generation).await;
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), all).await;
    }
}

/// The local date and time at `ms` (server's time zone).
pub fn local_of(ms: i64) -> NaiveDateTime {
    Local
        .timestamp_millis_opt(ms)
        .earliest()
        .map(|t| t.naive_local())
        .unwrap_or_default()
}

/// The instant (ms) of `minute` minutes after local midnight on `day`. A
/// time that a daylight-saving change skips is taken an hour later; one it
/// repeats, at its first occurrence.
pub fn local_ms(day: NaiveDate, minute: u32) -> i64 {
    let t = day.and_time(chrono::NaiveTime::MIN) + chrono::Duration::minutes(i64::from(minute));
    Local
        .from_local_datetime(&t)
        .earliest()
        .or_else(|| {
            Local
                .from_local_datetime(&(t + chrono::Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_minutes_round_trip() {
        let day = NaiveDate::from_ymd_opt(2030, 1, 7).unwrap();
        let at = local_ms(day, 9 * 60 + 5);
        let back = local_of(at);
        assert_eq!(back.date(), day);
        assert_eq!(back.time().format("%H:%M").to_string(), "09:05");
        // The end of the day is the next midnight.
        assert_eq!(
            local_of(local_ms(day, 1440)).date(),
            day.succ_opt().unwrap()
        );
    }

    #[cfg(debug_assertions)]
    #[tokio::test]
    async fn a_set_clock_reads_the_time_it_was_set_to_once_a_turn_is_done() {
        let c = std::sync::Arc::new(Clock::default());
        let timer = c.clone();
        tokio::spawn(async move {
            loop {
                timer.moved.notified().await;
                timer.turn_done(timer.generation());
            }
        });
        c.set(1_900_000_000_000).await;
        assert_eq!(*c.done.borrow(), 1, "answered after the turn");
        assert!(c.now_ms() >= 1_900_000_000_000);
        assert!(c.now_ms() < 1_900_000_000_000 + 3_600_000);
    }

    #[cfg(debug_assertions)]
    #[tokio::test]
    async fn a_move_answers_after_each_follower_finished_its_turn() {
        let c = std::sync::Arc::new(Clock::default());
        let timer = c.clone();
        tokio::spawn(async move {
            loop {
                timer.moved.notified().await;
                timer.turn_done(timer.generation());
            }
        });
        let mut f = c.follow();
        let seen = std::sync::Arc::new(AtomicI64::new(0));
        let (follower, saw) = (c.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                f.moved().await;
                let g = follower.generation();
                tokio::task::yield_now().await;
                saw.store(follower.now_ms(), Ordering::SeqCst);
                f.turn_done(g);
            }
        });
        c.set(1_900_000_000_000).await;
        assert!(seen.load(Ordering::SeqCst) >= 1_900_000_000_000);
        c.set(2_000_000_000_000).await;
        assert!(seen.load(Ordering::SeqCst) >= 2_000_000_000_000);
    }
}
