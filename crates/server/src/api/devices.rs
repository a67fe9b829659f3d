use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_proto::{ErrorCode, ServerMsg};
use lectern_store::Device;

use super::auth::Authed;
use super::ApiError;
use crate::hub::DeviceView;
use crate::state::Shared;

fn merge(d: Device, online: &mut HashMap<i64, DeviceView>) -> DeviceView {
    match online.remove(&d.id) {
        Some(mut live) => {
            live.last_seen = d.last_seen.max(live.last_seen);
            live
        }
        None => DeviceView {
            id: d.id,
            hostname: d.hostname,
            online: false,
            os: d.os,
            agent_version: d.agent_version,
            revoked: d.revoked_at.is_some(),
            last_seen: d.last_seen,
            capabilities: Vec::new(),
            state: serde_json::from_str(&d.state_json).unwrap_or_default(),
        },
    }
}

/// `GET /devices`: every enrolled device with its live or last known state.
pub async fn list(
    State(st): State<Shared>,
    _auth: Authed,
) -> Result<Json<Vec<DeviceView>>, ApiError> {
    let school = st.school.id;
    let devices = st.db(move |s| s.list_devices(school)).await?;
    let mut online = st.hub.online();
    Ok(Json(
        devices.into_iter().map(|d| merge(d, &mut online)).collect(),
    ))
}

/// `GET /devices/{id}`.
pub async fn get_one(
    State(st): State<Shared>,
    _auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<DeviceView>, ApiError> {
    let school = st.school.id;
    let devices = st.db(move |s| s.list_devices(school)).await?;
    let d = devices
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?;
    Ok(Json(merge(d, &mut st.hub.online())))
}

/// `DELETE /devices/{id}`: revokes the device's credential and disconnects it.
pub async fn revoke(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    let school = st.school.id;
    let found = st.db(move |s| s.revoke_device(school, id)).await?;
    let mut entry = st.audit_entry(
        auth.username(),
        auth.address.clone(),
        "device.revoke",
        if found { "ok" } else { "not_found" },
    );
    entry.devices = vec![id];
    st.audit(entry).await;
    if !found {
        return Err(ApiError::not_found(format!(
            "no device {id}, or already revoked"
        )));
    }
    st.hub.kick(
        id,
        ServerMsg::Error {
            code: ErrorCode::Revoked,
            message: "this device was revoked by an administrator".into(),
        },
    );
    Ok(StatusCode::NO_CONTENT)
}
