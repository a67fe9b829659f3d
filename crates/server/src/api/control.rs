//! The console stream's remote-control requests (see [`crate::control`]):
//! each answered with `{"type":"control","device":…,"on":…}`, plus `"error"`
//! (a sentence for the teacher) when refused or ended.

use axum::extract::ws::Message;
use lectern_proto::control::ControlRequest;
use serde_json::json;

use super::stream::Step;
use crate::control::{self, ControlError};
use crate::scope::ConsoleScope;
use crate::state::Shared;

fn reply(device: i64, on: bool, error: Option<String>) -> Step {
    let mut v = json!({"type": "control", "device": device, "on": on});
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    Step::Send(Message::text(v.to_string()))
}

/// Acts on one request from console `console`.
pub(super) async fn on_request(
    st: &Shared,
    scope: &ConsoleScope,
    console: u64,
    r: ControlRequest,
) -> Step {
    match r {
        ControlRequest::Control { device, on: true } => {
            match control::take(st, scope, console, device).await {
                Ok(()) => reply(device, true, None),
                Err(e) => reply(device, false, Some(e.to_string())),
            }
        }
        ControlRequest::Control { device, on: false } => {
            control::release(st, console, device, "stopped by the teacher").await;
            reply(device, false, None)
        }
        ControlRequest::Input { device, events } => {
            match control::input(st, scope, console, device, events).await {
                Ok(out) => match out.refused {
                    Some(e) => reply(device, true, Some(e.to_string())),
                    None => Step::Skip,
                },
                Err(e @ ControlError::NotControlling) => reply(device, false, Some(e.to_string())),
                Err(e) => reply(device, false, Some(format!("Control ended. {e}"))),
            }
        }
    }
}

/// After a watch message: says so if control ended because the console no
/// longer shows the device live.
pub(super) async fn after_watch(st: &Shared, console: u64) -> Step {
    match control::after_watch(st, console).await.first() {
        Some(d) => reply(
            *d,
            false,
            Some("Control ended: the live view of this computer closed.".into()),
        ),
        None => Step::Skip,
    }
}
