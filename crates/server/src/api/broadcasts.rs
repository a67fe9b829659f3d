//! Broadcasts: show one screen (a student's, or the teacher's uploaded from the
//! console) full screen on many devices.

use std::collections::HashSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::hub::{Broadcast, BroadcastSource};
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

/// `GET /broadcasts`: running broadcasts.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<Broadcast>>, ApiError> {
    auth.require(&st, "command.broadcast").await?;
    Ok(Json(st.hub.broadcasts()))
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
        return Err(ApiError::bad_request("choose 1 to 10000 devices"));
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
        return Err(ApiError::forbidden(format!(
            "you may not control devices {refused:?}"
        )));
    }
    let (source, default_title) = match b.source {
        Source::Device { id } => {
            let (v, _) = visible
                .iter()
                .find(|(v, _)| v.id == id)
                .ok_or_else(|| ApiError::bad_request(format!("no device {id}")))?;
            if !v.online {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("{} is offline", v.hostname),
                ));
            }
            if targets.contains(&id) {
                return Err(ApiError::bad_request(
                    "the source device cannot also be a target",
                ));
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
    let started = st
        .hub
        .start_broadcast(title, source, targets.clone(), auth.username());
    let mut entry = st.audit_entry(
        auth.username(),
        auth.address.clone(),
        "broadcast.start",
        "ok",
    );
    entry.devices = targets.into_iter().collect();
    entry.detail = format!(
        "broadcast {} {:?}: {}",
        started.id, started.source, started.title
    );
    st.audit(entry).await;
    Ok((StatusCode::CREATED, Json(json!(started))))
}

/// `DELETE /broadcasts/{id}`: ends a broadcast.
pub async fn stop(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "command.broadcast").await?;
    let b = st
        .hub
        .stop_broadcast(id)
        .ok_or_else(|| ApiError::not_found(format!("no broadcast {id}")))?;
    let mut entry = st.audit_entry(
        auth.username(),
        auth.address.clone(),
        "broadcast.stop",
        "ok",
    );
    entry.devices = b.targets.into_iter().collect();
    entry.detail = format!("broadcast {id}");
    st.audit(entry).await;
    Ok(StatusCode::NO_CONTENT)
}
