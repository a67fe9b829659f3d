//! A teacher's timed lock ("Locked for 5 minutes"). The device counts the time
//! itself, so it unlocks when the time is up even if the server is unreachable
//! by then; the timer belongs to the agent's run loop, not to one session.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_proto::{Command, CommandResult, DeviceState};

use crate::session::SharedDesktop;

/// Which teacher lock the running timer belongs to, and when it ends.
#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every lock and unlock command: a timer whose generation is
    /// no longer current was overtaken (re-locked, unlocked) and does nothing.
    generation: u64,
    /// End of the timed lock, ms since the epoch.
    until_ms: Option<i64>,
}

/// The agent's timed-lock clock; clones share it.
#[derive(Debug, Clone)]
pub struct LockTimer {
    inner: Arc<Mutex<Inner>>,
    /// How long a "minute" lasts: a minute, shorter only in tests.
    minute: Duration,
}

impl Default for LockTimer {
    fn default() -> Self {
        Self::with_minute(Duration::from_secs(60))
    }
}

impl LockTimer {
    /// A timer whose minutes last `minute` (tests run them faster).
    pub fn with_minute(minute: Duration) -> Self {
        Self {
            inner: Arc::default(),
            minute,
        }
    }

    /// Notes a command the desktop has just run: a lock or unlock cancels the
    /// running timer; a timed lock that took effect starts a new one, which
    /// unlocks `desktop` when it ends. Call with the desktop unlocked.
    pub fn after_command(&self, cmd: &Command, result: &CommandResult, desktop: &SharedDesktop) {
        let minutes = match cmd {
            Command::Lock { minutes, .. } => *minutes,
            Command::Unlock => None,
            _ => return,
        };
        let generation = {
            let mut g = self.guard();
            g.generation += 1;
            g.until_ms = None;
            match (minutes, result) {
                (Some(m), CommandResult::Done) => {
                    let span = self.minute * m;
                    g.until_ms = Some(now_ms() + span.as_millis() as i64);
                    Some((g.generation, span))
                }
                _ => None,
            }
        };
        if let Some((generation, span)) = generation {
            let timer = self.clone();
            let desktop = desktop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(span).await;
                timer.expire(generation, &desktop);
            });
        }
    }

    /// The timer of `generation` ran out: unlock unless it was overtaken.
    fn expire(&self, generation: u64, desktop: &SharedDesktop) {
        {
            let mut g = self.guard();
            if g.generation != generation {
                return;
            }
            g.until_ms = None;
        }
        let r = {
            let mut d = desktop
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The session sends the state when told it changed.
            if let Some(c) = d.changes() {
                c.state.notify_one();
            }
            d.unlock()
        };
        match r {
            Ok(()) => tracing::info!("the timed lock ended: unlocked"),
            // A policy lock holds on; the teacher's lock is gone all the same.
            Err(e) => tracing::info!("the timed lock ended: {e}"),
        }
    }

    /// `state` with the end of the timed lock, while the screen is locked.
    pub fn overlay(&self, mut state: DeviceState) -> DeviceState {
        state.locked_until = if state.locked {
            self.guard().until_ms
        } else {
            None
        };
        state
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply_command;
    use crate::headless::HeadlessDesktop;

    /// A test minute; waits allow far longer, so a slow machine only waits.
    const MINUTE: Duration = Duration::from_millis(20);

    fn run(timer: &LockTimer, d: &SharedDesktop, cmd: Command) -> CommandResult {
        let r = apply_command(&mut *d.lock().unwrap(), &cmd);
        timer.after_command(&cmd, &r, d);
        r
    }

    fn timed(minutes: u32) -> Command {
        Command::Lock {
            text: None,
            minutes: Some(minutes),
        }
    }

    fn state(timer: &LockTimer, d: &SharedDesktop) -> DeviceState {
        timer.overlay(d.lock().unwrap().state())
    }

    fn desktop() -> SharedDesktop {
        Arc::new(Mutex::new(HeadlessDesktop::new("pc", Some("amy".into()))))
    }

    async fn wait_unlocked(timer: &LockTimer, d: &SharedDesktop) {
        for _ in 0..1000 {
            if !state(timer, d).locked {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the timed lock never ended");
    }

    #[tokio::test]
    async fn a_timed_lock_unlocks_by_itself() {
        let d = desktop();
        let timer = LockTimer::with_minute(MINUTE);
        assert_eq!(run(&timer, &d, timed(5)), CommandResult::Done);
        let s = state(&timer, &d);
        assert!(s.locked);
        assert!(s.locked_until.is_some());
        wait_unlocked(&timer, &d).await;
        assert_eq!(state(&timer, &d).locked_until, None);
    }

    #[tokio::test]
    async fn a_later_lock_or_unlock_overtakes_the_timer() {
        let d = desktop();
        let timer = LockTimer::with_minute(MINUTE);
        run(&timer, &d, timed(1));
        // Locked again without a timer: the first timer's end changes nothing.
        let plain = Command::Lock {
            text: None,
            minutes: None,
        };
        run(&timer, &d, plain.clone());
        assert_eq!(state(&timer, &d).locked_until, None);
        tokio::time::sleep(MINUTE * 10).await;
        assert!(state(&timer, &d).locked);
        // Unlocked, then a timed lock: only the newest timer unlocks.
        run(&timer, &d, Command::Unlock);
        run(&timer, &d, timed(1));
        wait_unlocked(&timer, &d).await;
        // A plain lock after it stays.
        run(&timer, &d, plain);
        tokio::time::sleep(MINUTE * 10).await;
        assert!(state(&timer, &d).locked);
    }
}
