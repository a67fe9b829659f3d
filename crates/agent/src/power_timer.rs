//! A teacher's shut down / restart / log off with a countdown (issue 13.6).
//! The student sees the countdown in the message surface, updated each
//! second; at zero the desktop carries the action out (the service runs the
//! configured command, see [`crate::config::PowerCommands`]). A cancel, or a
//! newer power command, stops the countdown. The timer belongs to the
//! agent's run loop, so a countdown ends on time even if the server is gone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_proto::power::PowerAction;
use lectern_proto::{Command, CommandResult};

use crate::session::SharedDesktop;

/// The running countdown's generation (a tick of an older one does
/// nothing), and whether one is running; one lock for both, so that a
/// countdown ending never clears the flag of a newer one.
#[derive(Debug, Default)]
struct Countdown {
    generation: u64,
    counting: bool,
}

/// A teacher's power countdowns on this device.
#[derive(Debug, Clone, Default)]
pub struct PowerTimer {
    state: Arc<Mutex<Countdown>>,
    /// How long a "second" lasts: a second, shorter only in tests.
    second: Option<Duration>,
}

impl PowerTimer {
    /// A timer whose seconds last `second` (tests run them faster).
    pub fn with_second(second: Duration) -> Self {
        PowerTimer {
            state: Arc::default(),
            second: Some(second),
        }
    }

    /// Whether a teacher's countdown is running: the student cannot leave
    /// for another school from under it.
    pub fn counting(&self) -> bool {
        self.lock().counting
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Countdown> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new generation: `counting` says whether it is a countdown (else a
    /// cancel).
    fn bump(&self, counting: bool) -> u64 {
        let mut s = self.lock();
        s.generation += 1;
        s.counting = counting;
        s.generation
    }

    fn current(&self, generation: u64) -> bool {
        self.lock().generation == generation
    }

    /// Ends countdown `generation` (whether it is still the running one and
    /// should act), in one step with the check.
    fn finish(&self, generation: u64) -> bool {
        let mut s = self.lock();
        let current = s.generation == generation;
        if current {
            s.counting = false;
        }
        current
    }

    /// Notes a command the desktop has just run: a power command that was
    /// accepted starts a countdown (replacing any running one); a cancel
    /// stops it and takes the countdown off the screen. Call with the
    /// desktop unlocked.
    pub fn after_command(&self, cmd: &Command, result: &CommandResult, desktop: &SharedDesktop) {
        match (cmd, result) {
            (
                Command::Power {
                    action,
                    countdown_secs,
                },
                CommandResult::Done,
            ) => {
                let generation = self.bump(true);
                let (timer, desktop) = (self.clone(), desktop.clone());
                let (action, secs) = (*action, *countdown_secs);
                tokio::spawn(
                    async move { timer.count_down(generation, action, secs, desktop).await },
                );
            }
            (Command::CancelPower, CommandResult::Done) => {
                self.bump(false);
                if let Err(e) = lock(desktop).clear_message() {
                    tracing::debug!("cannot clear the countdown: {e}");
                }
            }
            _ => {}
        }
    }

    /// Shows the time left each second, then acts unless overtaken.
    async fn count_down(
        &self,
        generation: u64,
        action: PowerAction,
        secs: u32,
        desktop: SharedDesktop,
    ) {
        let second = self.second.unwrap_or(Duration::from_secs(1));
        for left in (1..=secs).rev() {
            if !self.current(generation) {
                return;
            }
            if let Err(e) = lock(&desktop).show_message(&action.countdown_text(left)) {
                tracing::debug!("cannot show the countdown: {e}");
            }
            tokio::time::sleep(second).await;
        }
        if !self.finish(generation) {
            return;
        }
        let d = desktop.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut d = lock(&d);
            let _ = d.clear_message();
            d.power(action)
        })
        .await;
        match result {
            Ok(Ok(())) => tracing::info!(action = action.as_str(), "power action carried out"),
            Ok(Err(e)) => tracing::warn!(action = action.as_str(), "power action failed: {e}"),
            Err(e) => tracing::warn!("power action task failed: {e}"),
        }
    }
}

fn lock(d: &SharedDesktop) -> std::sync::MutexGuard<'_, dyn crate::Desktop + 'static> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HeadlessDesktop;

    fn power(action: PowerAction, countdown_secs: u32) -> Command {
        Command::Power {
            action,
            countdown_secs,
        }
    }

    /// A countdown is seen as running from the command until it is carried
    /// out or cancelled (what keeps a student from leaving for another
    /// school from under it); a refused command starts none.
    #[tokio::test]
    async fn a_countdown_runs_until_carried_out_or_cancelled() {
        let desktop: SharedDesktop =
            Arc::new(Mutex::new(HeadlessDesktop::new("pc", Some("amy".into()))));
        let timer = PowerTimer::with_second(Duration::from_millis(20));
        assert!(!timer.counting());
        let refused = CommandResult::Failed {
            reason: "no".into(),
        };
        timer.after_command(&power(PowerAction::Shutdown, 2), &refused, &desktop);
        assert!(!timer.counting());

        timer.after_command(
            &power(PowerAction::Restart, 60),
            &CommandResult::Done,
            &desktop,
        );
        assert!(timer.counting());
        timer.after_command(&Command::CancelPower, &CommandResult::Done, &desktop);
        assert!(!timer.counting());

        timer.after_command(
            &power(PowerAction::Shutdown, 2),
            &CommandResult::Done,
            &desktop,
        );
        assert!(timer.counting());
        for _ in 0..200 {
            if !timer.counting() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!timer.counting(), "the countdown never ended");
    }
}
