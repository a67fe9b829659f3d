use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use lectern_proto::{ErrorCode, RemoteView, ServerMsg};
use lectern_store::Device;
use serde::Serialize;
use serde_json::json;

use super::auth::Authed;
use super::ApiError;
use crate::hub::DeviceView;
use crate::policies::to_policy;
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

/// Every device with the caller's access to it (devices without access left out).
pub async fn visible(st: &Shared, auth: &Authed) -> Result<Vec<(DeviceView, Access)>, ApiError> {
    let school = st.school.id;
    let devices = st.db(move |s| s.list_devices(school)).await?;
    let mut online = st.hub.online();
    Ok(devices
        .into_iter()
        .map(|d| merge(d, &mut online))
        .filter_map(|v| {
            let groups = st.device_groups(v.id, &v.hostname, v.state.user.as_deref());
            let access = auth.device_access(&groups);
            (access >= Access::View).then_some((v, access))
        })
        .collect())
}

/// A device as listed: its view and a host name it reported that is not
/// (yet) its name.
#[derive(Debug, Serialize)]
pub struct Listed {
    /// Live or last known view.
    #[serde(flatten)]
    pub view: DeviceView,
    /// The host name the device reports, when it differs from its enrolled
    /// (or accepted) name; `POST /devices/{id}/accept-name` applies it.
    pub reported_name: Option<String>,
}

/// Reported names waiting for acceptance, by device.
async fn reported_names(st: &Shared) -> Result<HashMap<i64, String>, ApiError> {
    let school = st.school.id;
    let devices = st.db(move |s| s.list_devices(school)).await?;
    Ok(devices
        .into_iter()
        .filter_map(|d| Some((d.id, d.reported_name?)))
        .collect())
}

/// `GET /devices`: every device the caller may see, with live or last known state.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Vec<Listed>>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let mut names = reported_names(&st).await?;
    Ok(Json(
        visible(&st, &auth)
            .await?
            .into_iter()
            .map(|(view, _)| Listed {
                reported_name: names.remove(&view.id),
                view,
            })
            .collect(),
    ))
}

/// `POST /devices/{id}/accept-name`: makes the host name a device reported its
/// name, so its computer groups follow it. Needs `devices.manage` and access
/// to the device; audited.
pub async fn accept_name(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "devices.manage").await?;
    find(&st, &auth, id).await?;
    let school = st.school.id;
    let renamed = st.db(move |s| s.accept_device_name(school, id)).await?;
    let mut entry = st.audit_entry(
        auth.username(),
        auth.address.clone(),
        "device.rename",
        if renamed.is_some() {
            "ok"
        } else {
            "nothing_reported"
        },
    );
    entry.devices = vec![id];
    let Some((old, new)) = renamed else {
        st.audit(entry).await;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("device {id} reports no other name"),
        ));
    };
    entry.detail = format!("{old} → {new}");
    st.audit(entry).await;
    if st.hub.rename(id, &new) {
        st.push_policies(Some(id)).await?;
        if let Some(v) = st.hub.online().remove(&id) {
            st.hub
                .publish(crate::hub::ConsoleEvent::Device(Box::new(v)));
        }
    }
    Ok(Json(json!({ "id": id, "hostname": new, "previous": old })))
}

async fn find(st: &Shared, auth: &Authed, id: i64) -> Result<(DeviceView, Access), ApiError> {
    visible(st, auth)
        .await?
        .into_iter()
        .find(|(v, _)| v.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no device {id}")))
}

/// `GET /devices/{id}`.
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Listed>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let view = find(&st, &auth, id).await?.0;
    let reported_name = reported_names(&st).await?.remove(&id);
    Ok(Json(Listed {
        view,
        reported_name,
    }))
}

/// `DELETE /devices/{id}`: revokes the device's credential and disconnects it.
pub async fn revoke(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "devices.manage").await?;
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

/// Seconds a student has to answer a live-view request.
pub const VIEW_ASK_SECS: u32 = 10;

/// `POST /devices/{id}/view`: asks for a live view under the device's privacy
/// setting and says what was decided and why.
pub async fn view(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "live_view").await?;
    let (device, _) = find(&st, &auth, id).await?;
    if !device.online {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("{} is offline", device.hostname),
        ));
    }
    let mode = st
        .hub
        .policy_of(id)
        .unwrap_or_else(|| {
            to_policy(
                &st.policies
                    .resolve(Some(&device.hostname), device.state.user.as_deref())
                    .resultant,
                0,
            )
        })
        .remote_view;
    let (allowed, reason) = match mode {
        RemoteView::Allow => (true, "policy_allow"),
        RemoteView::Deny => (false, "policy_deny"),
        _ if auth.rights.bypass_privacy => (true, "bypass"),
        ask => {
            let default_allow = ask == RemoteView::AskThenAllow;
            let rx = st
                .hub
                .request_view(id, auth.username(), VIEW_ASK_SECS)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        format!("{} is offline", device.hostname),
                    )
                })?;
            // The agent answers within its 10 s; allow it a little more on the wire.
            let answer = tokio::time::timeout(Duration::from_secs(VIEW_ASK_SECS as u64 + 2), rx)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            match (answer, default_allow) {
                (Some(true), _) => (true, "student_allowed"),
                (Some(false), _) => (false, "student_denied"),
                (None, true) => (true, "timeout_allowed"),
                (None, false) => (false, "timeout_denied"),
            }
        }
    };
    let decision = if allowed { "allowed" } else { "denied" };
    let mut entry = st.audit_entry(auth.username(), auth.address.clone(), "live_view", decision);
    entry.devices = vec![id];
    entry.detail = reason.to_string();
    st.audit(entry).await;
    Ok(Json(json!({ "decision": decision, "reason": reason })))
}
