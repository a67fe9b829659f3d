//! Broadcasts: show one screen (a student's, or the teacher's uploaded from the
//! console) full screen on many devices.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::hub::{Broadcast, BroadcastSource, Starter};
use crate::privacy::{self, Verdict, ViewDecision};
use crate::scope::Viewer;
use crate::state::Shared;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    Device { id: i64 },
    Console,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBroadcast {
    devices: Vec<i64>,
    source: Source,
    #[serde(default)]
    title: Option<String>,
}

/// Whether the caller may see and stop a broadcast: administrators all; others
/// those they started, and those whose every target (and device source) they
/// control.
fn concerns(auth: &Authed, access: &HashMap<i64, Access>, b: &Broadcast) -> bool {
    let controls = |d: &i64| access.get(d).is_some_and(|a| *a == Access::Control);
    auth.rights.all
        || b.started_by == auth.username()
        || (b.targets.iter().all(controls)
            && match &b.source {
                BroadcastSource::Device(d) => controls(d),
                BroadcastSource::Console(_) => true,
            })
}

/// The caller's access to every device (none needed for administrators).
async fn access(st: &Shared, auth: &Authed) -> Result<HashMap<i64, Access>, ApiError> {
    if auth.rights.all {
        return Ok(HashMap::new());
    }
    crate::scope::access_map(st, auth.school(), &auth.rights).await
}

/// `GET /broadcasts`: running broadcasts the caller may see, each with its
/// `receivers` (what each target is doing: showing, starting, failed,
/// offline, not_supported). Targets and receivers are only devices the caller
/// may see; a device source the caller may not see is shown as `null`.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "command.broadcast").await?;
    let access = access(&st, &auth).await?;
    let names: HashMap<i64, String> = super::devices::visible(&st, &auth)
        .await?
        .into_iter()
        .map(|(v, _)| (v.id, v.hostname))
        .collect();
    let out: Vec<Value> = st
        .hub
        .broadcasts()
        .into_iter()
        .filter(|b| concerns(&auth, &access, b))
        .map(|b| listed(&st, &names, b))
        .collect();
    Ok(Json(json!(out)))
}

/// One broadcast as `list` shows it, narrowed to the devices in `names` (those
/// the caller may see).
fn listed(st: &Shared, names: &HashMap<i64, String>, b: Broadcast) -> Value {
    let mut receivers: Vec<Value> = st
        .hub
        .receivers(b.id)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(id, state)| {
            let name = names.get(&id)?;
            Some(json!({"device_id": id, "hostname": name, "state": state}))
        })
        .collect();
    receivers.sort_by(|a, b| a["hostname"].as_str().cmp(&b["hostname"].as_str()));
    let mut targets: Vec<i64> = b
        .targets
        .iter()
        .filter(|t| names.contains_key(t))
        .copied()
        .collect();
    targets.sort_unstable();
    let source = match &b.source {
        BroadcastSource::Device(d) if !names.contains_key(d) => Value::Null,
        BroadcastSource::Device(d) => {
            json!({"type": "device", "id": d, "hostname": names[d]})
        }
        s @ BroadcastSource::Console(_) => json!(s),
    };
    json!({
        "id": b.id,
        "title": b.title,
        "source": source,
        "targets": targets,
        "started_by": b.started_by,
        "receivers": receivers,
    })
}

/// Whether the caller may show a device's screen, under its privacy rule
/// (asking the student if it says so); a bypass is audited.
async fn may_show(st: &Shared, auth: &Authed, device: i64) -> Result<ViewDecision, ApiError> {
    let viewer = Viewer::of(st, auth);
    let offline = || ApiError::new(StatusCode::CONFLICT, format!("device {device} is offline"));
    let verdict = st
        .hub
        .view_verdict(device, viewer.session, auth.rights.bypass_privacy)
        .ok_or_else(offline)?;
    let d = match verdict {
        Verdict::Decided(d) => d,
        Verdict::Ask => privacy::ask(st, device, &viewer, false)
            .await
            .ok_or_else(offline)?,
    };
    // Questions are audited by `ask`, refusals by the caller.
    if d.reason == privacy::ViewReason::Bypass {
        privacy::audit(st, &viewer, "privacy.bypass", device, d).await;
    }
    Ok(d)
}

/// Why a student's screen may not be shown, as a sentence for the teacher.
fn refused_source(host: &str, reason: privacy::ViewReason) -> String {
    use privacy::ViewReason as R;
    match reason {
        R::StudentDenied => format!("The student at {host} said no to showing their screen."),
        R::TimeoutDenied => {
            format!("The student at {host} did not answer, so their screen is not shown.")
        }
        R::ThumbnailsOff => {
            format!(
                "{host}'s screen is never shown: the school's settings turn screen pictures off."
            )
        }
        R::PolicyPending => format!("{host} is still starting up; try again in a moment."),
        _ => format!("The school's privacy settings don't let you show {host}'s screen."),
    }
}

/// `POST /broadcasts`: starts a broadcast to `devices` (control needed) from a
/// device (view needed) or from the caller's console, which then uploads JPEG
/// frames over its stream.
pub async fn start(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewBroadcast>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "command.broadcast").await?;
    let JsonBody(b) = body?;
    let targets: HashSet<i64> = b.devices.iter().copied().collect();
    if targets.is_empty() || targets.len() > 10_000 {
        return Err(ApiError::bad_request(
            "Choose between 1 and 10000 computers to show the screen on.",
        ));
    }
    let visible = super::devices::visible(&st, &auth).await?;
    let refused: Vec<i64> = targets
        .iter()
        .filter(|t| {
            !visible
                .iter()
                .any(|(v, a)| v.id == **t && *a == Access::Control)
        })
        .copied()
        .collect();
    if !refused.is_empty() {
        auth.deny(
            &st,
            "broadcast to devices without control access",
            refused.clone(),
        )
        .await;
        return Err(ApiError::no_control(&refused));
    }
    let (source, default_title) = match b.source {
        Source::Device { id } => {
            // Showing a student's screen to others is viewing it: the
            // live-view right as well as the broadcast right.
            if !auth.rights.allows("live_view") {
                auth.deny(&st, "broadcast source: feature \"live_view\"", vec![id])
                    .await;
                return Err(ApiError::missing_right("live_view"));
            }
            let (v, _) = visible.iter().find(|(v, _)| v.id == id).ok_or_else(|| {
                ApiError::bad_request(format!("There is no computer {id} you can see."))
            })?;
            if !v.online {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("{} is offline, so its screen can't be shown.", v.hostname),
                ));
            }
            if targets.contains(&id) {
                return Err(ApiError::bad_request(format!(
                    "{} is the screen being shown, so it can't also receive it. Leave it out of the selection.",
                    v.hostname
                )));
            }
            let shown = may_show(&st, &auth, id).await?;
            if !shown.allowed {
                auth.deny(
                    &st,
                    &format!("broadcast source refused: {}", shown.reason.as_str()),
                    vec![id],
                )
                .await;
                return Err(
                    ApiError::forbidden(refused_source(&v.hostname, shown.reason))
                        .with_reason(shown.reason.as_str()),
                );
            }
            (
                BroadcastSource::Device(id),
                format!(
                    "{}'s screen",
                    v.state.user.clone().unwrap_or_else(|| v.hostname.clone())
                ),
            )
        }
        Source::Console => (
            BroadcastSource::Console(auth.username().to_string()),
            format!("{}'s screen", auth.username()),
        ),
    };
    let title: String = b
        .title
        .filter(|t| !t.trim().is_empty())
        .unwrap_or(default_title)
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let starter = Starter {
        session: st.hub.session_key(&auth.token),
        bypass: auth.rights.bypass_privacy,
    };
    let started = st
        .hub
        .start_broadcast(title, source, targets.clone(), auth.username(), starter);
    let mut entry = auth.audit_entry(&st, "broadcast.start", "ok");
    entry.devices = targets.into_iter().collect();
    entry.detail = format!(
        "broadcast {} {:?}: {}",
        started.id, started.source, started.title
    );
    st.audit(entry).await;
    Ok((StatusCode::CREATED, Json(json!(started))))
}

/// `DELETE /broadcasts/{id}`: ends a broadcast the caller may see (others
/// are "not found", as if they did not exist).
pub async fn stop(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "command.broadcast").await?;
    let access = access(&st, &auth).await?;
    let not_found = || ApiError::not_found(format!("no broadcast {id}"));
    let running = st.hub.broadcasts().into_iter().find(|b| b.id == id);
    match running {
        Some(b) if concerns(&auth, &access, &b) => {}
        Some(b) => {
            auth.deny(
                &st,
                &format!("stop broadcast {id}"),
                b.targets.into_iter().collect(),
            )
            .await;
            return Err(not_found());
        }
        None => return Err(not_found()),
    }
    let b = st.hub.stop_broadcast(id).ok_or_else(not_found)?;
    let mut entry = auth.audit_entry(&st, "broadcast.stop", "ok");
    entry.devices = b.targets.into_iter().collect();
    entry.detail = format!("broadcast {id}");
    st.audit(entry).await;
    Ok(StatusCode::NO_CONTENT)
}
