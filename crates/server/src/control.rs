//! Remote control: a teacher's console drives one device's mouse and
//! keyboard through its live view.
//!
//! Requests come on the console's stream ([`lectern_proto::control`]). Taking
//! control needs the `command.remote_control` feature and control access to
//! the device's groups, a device that can be controlled, and a live view of
//! it whose pictures the privacy rule lets this console see now (so a student
//! who denied viewing cannot be controlled). One console controls a device at
//! a time; another is told who does. Control ends when the console gives it
//! up, stops showing the device live, loses the right or the pictures, closes
//! its stream, or the device disconnects; starts and stops are audited. Input
//! is accepted only from the controlling console, checked event by event
//! (Ctrl+Alt+Del and the other reserved combinations are refused), and
//! metered per device ([`INPUT_RATE`], [`INPUT_BURST`]); excess is dropped
//! and counted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use lectern_proto::control::{InputError, InputEvent};
use lectern_proto::{Capability, ServerMsg};

use crate::scope::ConsoleScope;
use crate::state::Shared;

/// The right that remote control needs (with control access to the device).
pub const FEATURE: &str = "command.remote_control";

/// Input events per second a controlled device accepts, sustained.
pub const INPUT_RATE: f64 = 100.0;

/// Input events a controlled device accepts at once.
pub const INPUT_BURST: f64 = 200.0;

/// Who controls which device, and the counters.
#[derive(Default)]
pub struct Controls {
    held: Mutex<HashMap<i64, Held>>,
    /// Input events sent on to devices.
    pub events_sent: AtomicU64,
    /// Input events dropped over a device's rate or because it was behind.
    pub events_dropped: AtomicU64,
    /// Input events refused (reserved combinations, unknown keys).
    pub events_refused: AtomicU64,
}

/// One device under control.
struct Held {
    console: u64,
    user: String,
    address: Option<String>,
    tokens: f64,
    at: Instant,
}

impl Held {
    /// Takes up to `n` events' worth from the token bucket; how many fit.
    fn take(&mut self, n: usize, now: Instant) -> usize {
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * INPUT_RATE).min(INPUT_BURST);
        let fit = (self.tokens.floor() as usize).min(n);
        self.tokens -= fit as f64;
        fit
    }
}

/// Why a control request was refused; the text is shown to the teacher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No `command.remote_control` or no control access to the device.
    #[error("You can't take control of this computer. Ask your administrator.")]
    NoRight,
    /// Not shown live, or its pictures are not allowed to this console.
    #[error("You can take control only while the live view shows this computer's screen (its student may have declined).")]
    NotViewing,
    /// The device cannot inject input.
    #[error("This computer can't be controlled remotely.")]
    Unsupported,
    /// The device is not connected.
    #[error("This computer is offline.")]
    Offline,
    /// Another console controls it.
    #[error("{0} is controlling this computer.")]
    Taken(String),
    /// Input for a device this console does not control.
    #[error("You are not controlling this computer.")]
    NotControlling,
}

/// What became of an input message.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InputOutcome {
    /// Events sent on.
    pub sent: usize,
    /// Events dropped (rate, device behind).
    pub dropped: usize,
    /// The first event refused, if any.
    pub refused: Option<InputError>,
}

impl Controls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `console` controls `device`.
    fn holds(&self, console: u64, device: i64) -> bool {
        self.lock()
            .get(&device)
            .is_some_and(|h| h.console == console)
    }

    /// Devices `console` controls.
    fn of_console(&self, console: u64) -> Vec<i64> {
        self.lock()
            .iter()
            .filter(|(_, h)| h.console == console)
            .map(|(d, _)| *d)
            .collect()
    }

    /// Renders the counters for `/metrics`.
    pub fn render(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let held = self.lock().len();
        format!(
            "# HELP lectern_control_sessions Devices under remote control now.\n\
             # TYPE lectern_control_sessions gauge\nlectern_control_sessions {held}\n\
             # HELP lectern_control_input_sent_total Remote-control input events sent to devices.\n\
             # TYPE lectern_control_input_sent_total counter\nlectern_control_input_sent_total {}\n\
             # HELP lectern_control_input_dropped_total Remote-control input events dropped over a device's rate or while it was behind.\n\
             # TYPE lectern_control_input_dropped_total counter\nlectern_control_input_dropped_total {}\n\
             # HELP lectern_control_input_refused_total Remote-control input events refused (Ctrl+Alt+Del and other reserved keys, unknown keys).\n\
             # TYPE lectern_control_input_refused_total counter\nlectern_control_input_refused_total {}\n",
            g(&self.events_sent),
            g(&self.events_dropped),
            g(&self.events_refused),
        )
    }
}

/// Whether `scope` may control `device` now: the right on its groups, and
/// its pictures in this console's live view.
fn permitted(
    st: &Shared,
    scope: &ConsoleScope,
    console: u64,
    device: i64,
) -> Result<(), ControlError> {
    if !scope.sees(device) {
        return Err(ControlError::NoRight);
    }
    let groups = st.hub.groups_of(device).ok_or(ControlError::Offline)?;
    if !scope.may_control(FEATURE, &groups) {
        return Err(ControlError::NoRight);
    }
    if !st.hub.live_allowed(console, device) {
        return Err(ControlError::NotViewing);
    }
    Ok(())
}

/// Console `console` takes control of `device`. Taking a device one already
/// controls changes nothing.
pub async fn take(
    st: &Shared,
    scope: &ConsoleScope,
    console: u64,
    device: i64,
) -> Result<(), ControlError> {
    let r = try_take(st, scope, console, device);
    let (outcome, detail) = match &r {
        Ok(true) => ("ok", String::new()),
        Ok(false) => return Ok(()),
        Err(e) => ("denied", e.to_string()),
    };
    audit(st, scope, device, "control.start", outcome, detail).await;
    r.map(|_| ())
}

/// Takes control if permitted; true if it was not held by this console before.
fn try_take(
    st: &Shared,
    scope: &ConsoleScope,
    console: u64,
    device: i64,
) -> Result<bool, ControlError> {
    permitted(st, scope, console, device)?;
    if !st.hub.has_capability(device, Capability::RemoteControl) {
        return Err(ControlError::Unsupported);
    }
    let mut held = st.controls.lock();
    match held.get(&device) {
        Some(h) if h.console == console => return Ok(false),
        Some(h) => return Err(ControlError::Taken(h.user.clone())),
        None => {}
    }
    let start = ServerMsg::ControlStart {
        controller: scope.viewer.username.clone(),
        privacy_bypass: scope.bypass(),
    };
    if !st.hub.send(device, start) {
        return Err(ControlError::Offline);
    }
    held.insert(
        device,
        Held {
            console,
            user: scope.viewer.username.clone(),
            address: scope.viewer.address.map(|a| a.to_string()),
            tokens: INPUT_BURST,
            at: Instant::now(),
        },
    );
    Ok(true)
}

/// Ends `console`'s control of `device` (if it holds it), telling the device
/// and auditing why; true if it held it.
pub async fn release(st: &Shared, console: u64, device: i64, reason: &str) -> bool {
    let held = {
        let mut map = st.controls.lock();
        match map.get(&device) {
            Some(h) if h.console == console => map.remove(&device),
            _ => None,
        }
    };
    let Some(h) = held else {
        return false;
    };
    st.hub.send(device, ServerMsg::ControlStop);
    audit_stop(st, h, device, reason).await;
    true
}

async fn audit_stop(st: &Shared, h: Held, device: i64, reason: &str) {
    let mut entry = st.audit_entry(
        st.device_school(device),
        &h.user,
        h.address,
        "control.stop",
        "ok",
    );
    entry.devices = vec![device];
    entry.detail = reason.to_string();
    st.audit(entry).await;
}

/// The console's stream closed: it controls nothing any more.
pub async fn console_closed(st: &Shared, console: u64) {
    for device in st.controls.of_console(console) {
        release(st, console, device, "console closed").await;
    }
}

/// The console changed what it watches: control ends on a device it no
/// longer shows live (or whose pictures it may no longer see). Returns the
/// devices released.
pub async fn after_watch(st: &Shared, console: u64) -> Vec<i64> {
    let mut released = Vec::new();
    for device in st.controls.of_console(console) {
        if !st.hub.live_allowed(console, device)
            && release(st, console, device, "stopped viewing").await
        {
            released.push(device);
        }
    }
    released
}

/// The device's session ended: whoever controlled it does not any more (a
/// new session starts uncontrolled).
pub async fn device_gone(st: &Shared, device: i64) {
    let held = st.controls.lock().remove(&device);
    if let Some(h) = held {
        audit_stop(st, h, device, "device disconnected").await;
    }
}

/// Input from `console` for `device`: refused unless it controls the device
/// and still may; each event checked; the rest metered and sent on.
pub async fn input(
    st: &Shared,
    scope: &ConsoleScope,
    console: u64,
    device: i64,
    events: Vec<InputEvent>,
) -> Result<InputOutcome, ControlError> {
    if !st.controls.holds(console, device) {
        return Err(ControlError::NotControlling);
    }
    if let Err(e) = permitted(st, scope, console, device) {
        release(st, console, device, "no longer allowed").await;
        return Err(e);
    }
    let mut out = InputOutcome::default();
    let mut ok = Vec::with_capacity(events.len());
    for e in events {
        match e.check() {
            Ok(()) => ok.push(e),
            Err(err) => {
                st.controls.events_refused.fetch_add(1, Ordering::Relaxed);
                out.refused.get_or_insert(err);
            }
        }
    }
    let fit = match st.controls.lock().get_mut(&device) {
        Some(h) => h.take(ok.len(), Instant::now()),
        None => return Err(ControlError::NotControlling),
    };
    out.dropped = ok.len() - fit;
    ok.truncate(fit);
    if !ok.is_empty() {
        let n = ok.len();
        if st.hub.send(device, ServerMsg::ControlInput { events: ok }) {
            out.sent = n;
        } else {
            out.dropped += n;
        }
    }
    let c = &st.controls;
    c.events_sent.fetch_add(out.sent as u64, Ordering::Relaxed);
    c.events_dropped
        .fetch_add(out.dropped as u64, Ordering::Relaxed);
    Ok(out)
}

async fn audit(
    st: &Shared,
    scope: &ConsoleScope,
    device: i64,
    action: &str,
    outcome: &str,
    detail: String,
) {
    let v = &scope.viewer;
    let mut entry = st.audit_entry(
        v.school,
        &v.username,
        v.address.map(|a| a.to_string()),
        action,
        outcome,
    );
    entry.devices = vec![device];
    entry.detail = detail;
    st.audit(entry).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_burst_through_then_the_rate() {
        let t0 = Instant::now();
        let mut h = Held {
            console: 1,
            user: "t".into(),
            address: None,
            tokens: INPUT_BURST,
            at: t0,
        };
        assert_eq!(h.take(150, t0), 150);
        assert_eq!(h.take(100, t0), 50, "the burst is spent");
        assert_eq!(h.take(10, t0), 0);
        let later = t0 + std::time::Duration::from_millis(100);
        assert_eq!(h.take(100, later), 10, "100 a second");
        let much_later = later + std::time::Duration::from_secs(60);
        assert_eq!(h.take(1000, much_later), 200, "never more than the burst");
    }
}
