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

/// The running countdown's generation: a tick of an older one does nothing.
#[derive(Debug, Clone, Default)]
pub struct PowerTimer {
    generation: Arc<Mutex<u64>>,
    /// How long a "second" lasts: a second, shorter only in tests.
    second: Option<Duration>,
}

impl PowerTimer {
    /// A timer whose seconds last `second` (tests run them faster).
    pub fn with_second(second: Duration) -> Self {
        PowerTimer {
            generation: Arc::default(),
            second: Some(second),
        }
    }

    fn bump(&self) -> u64 {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        *g
    }

    fn current(&self, generation: u64) -> bool {
        *self.generation.lock().unwrap_or_else(|p| p.into_inner()) == generation
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
                let generation = self.bump();
                let (timer, desktop) = (self.clone(), desktop.clone());
                let (action, secs) = (*action, *countdown_secs);
                tokio::spawn(
                    async move { timer.count_down(generation, action, secs, desktop).await },
                );
            }
            (Command::CancelPower, CommandResult::Done) => {
                self.bump();
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
        if !self.current(generation) {
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
