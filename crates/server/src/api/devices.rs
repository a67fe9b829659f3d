use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use lectern_store::Device;
use serde::Serialize;
use serde_json::json;

use super::auth::Authed;
use super::ApiError;
use crate::hub::DeviceView;
use crate::privacy::{self, Verdict};
use crate::scope::Viewer;
use crate::state::Shared;

/// A device's view: live from this node's hub when its connection is here;
/// otherwise as last stored, online when another node of the cluster holds
/// it (`elsewhere`).
fn merge(
    d: Device,
    online: &mut HashMap<i64, DeviceView>,
    elsewhere: impl Fn(i64) -> bool,
) -> DeviceView {
    match online.remove(&d.id) {
        Some(mut live) => {
            live.last_seen = d.last_seen.max(live.last_seen);
            live
        }
        None => DeviceView {
            online: elsewhere(d.id),
            id: d.id,
            hostname: d.hostname,
            os: d.os,
            agent_version: d.agent_version,
            revoked: d.revoked_at.is_some(),
            last_seen: d.last_seen,
            capabilities: Vec::new(),
            state: serde_json::from_str(&d.state_json).unwrap_or_default(),
            groups_pending: false,
        },
    }
}

/// Every device with the caller's access to it (devices without access left out).
pub async fn visible(st: &Shared, auth: &Authed) -> Result<Vec<(DeviceView, Access)>, ApiError> {
    let school = auth.school();
    let devices = st.db(move |s| s.list_devices(school)).await?;
    let mut online = st.hub.online();
    let cluster = st.cluster.get();
    let elsewhere = |id| cluster.is_some_and(|c| c.is_online(school, id));
    Ok(devices
        .into_iter()
        .map(|d| merge(d, &mut online, elsewhere))
        .filter_map(|v| {
            let groups = st.device_groups(school, v.id, &v.hostname, v.state.user.as_deref());
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
    /// The person the device's reported user is an alias of (the user name
    /// itself stays in `state.user`, as the device reported it).
    pub person: Option<crate::policies::PersonRef>,
}

/// The person behind the device's reported user, if the name is an alias.
fn person_of(
    st: &Shared,
    school: lectern_store::SchoolId,
    view: &DeviceView,
) -> Option<crate::policies::PersonRef> {
    view.state
        .user
        .as_deref()
        .and_then(|u| st.policies.of(school).person_for(u))
}

/// Reported names waiting for acceptance, by device.
async fn reported_names(
    st: &Shared,
    school: lectern_store::SchoolId,
) -> Result<HashMap<i64, String>, ApiError> {
    let devices = st.db(move |s| s.list_devices(school)).await?;
    Ok(devices
        .into_iter()
        .filter_map(|d| Some((d.id, d.reported_name?)))
        .collect())
}

/// `GET /devices`: every device the caller may see, with live or last known state.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Vec<Listed>>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let mut names = reported_names(&st, auth.school()).await?;
    Ok(Json(
        visible(&st, &auth)
            .await?
            .into_iter()
            .map(|(view, _)| Listed {
                reported_name: names.remove(&view.id),
                person: person_of(&st, auth.school(), &view),
                view,
            })
            .collect(),
    ))
}

/// `POST /devices/{id}/accept-name`: makes the host name a device reported its
/// name, so its computer groups follow it. Needs `devices.manage` and control
/// of the device; audited.
pub async fn accept_name(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "devices.manage").await?;
    super::devadmin::controlled(&st, &auth, id, "accept-name").await?;
    let school = auth.school();
    if let Some(name) = reported_names(&st, auth.school()).await?.remove(&id) {
        let n = name.clone();
        if st
            .db(move |s| s.devadmin().name_taken(school, id, &n))
            .await?
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("another computer is already called {name}; rename or delete it first"),
            ));
        }
    }
    let renamed = st.db(move |s| s.accept_device_name(school, id)).await?;
    let mut entry = st.audit_entry(
        school,
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
    crate::devadmin::follow_rename(&st, id, &old, &new).await;
    if st.hub.rename(id, &new) {
        st.push_policies(school, Some(id)).await?;
        if let Some(v) = st.hub.online().remove(&id) {
            st.hub
                .publish(crate::hub::ConsoleEvent::Device(Box::new(v)));
        }
    }
    Ok(Json(json!({ "id": id, "hostname": new, "previous": old })))
}

pub(super) async fn find(
    st: &Shared,
    auth: &Authed,
    id: i64,
) -> Result<(DeviceView, Access), ApiError> {
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
    let reported_name = reported_names(&st, auth.school()).await?.remove(&id);
    Ok(Json(Listed {
        person: person_of(&st, auth.school(), &view),
        view,
        reported_name,
    }))
}

/// `DELETE /devices/{id}`: revokes the device's credential and disconnects
/// it at once; it is refused from then on. Needs `devices.manage` and control
/// of the device (devices the caller cannot see are "not found").
pub async fn revoke(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "devices.manage").await?;
    super::devadmin::controlled(&st, &auth, id, "revoke").await?;
    let school = auth.school();
    let found = st.db(move |s| s.revoke_device(school, id)).await?;
    let mut entry = st.audit_entry(
        school,
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
    super::devadmin::disconnect(&st, id, "device revoked");
    // Another node may hold its connection: it closes it on hearing this.
    crate::cluster::announce(&st, auth.school()).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /devices/{id}/view`: asks for a live view under the device's privacy
/// rule (see [`crate::privacy`]) and says what was decided and why. A
/// student's answer is remembered for this console session, so the grid's
/// thumbnails follow it too.
pub async fn view(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "live_view").await?;
    let (device, _) = find(&st, &auth, id).await?;
    let offline = || {
        ApiError::new(
            StatusCode::CONFLICT,
            format!("{} is offline", device.hostname),
        )
    };
    if !device.online {
        return Err(offline());
    }
    let viewer = Viewer::of(&st, &auth);
    let verdict = st
        .hub
        .view_verdict(id, viewer.session, auth.rights.bypass_privacy)
        .ok_or_else(offline)?;
    let decision = match verdict {
        Verdict::Decided(d) => d,
        Verdict::Ask => privacy::ask(&st, id, &viewer, true)
            .await
            .ok_or_else(offline)?,
    };
    privacy::audit(&st, &viewer, "live_view", id, decision).await;
    let word = if decision.allowed {
        "allowed"
    } else {
        "denied"
    };
    Ok(Json(
        json!({ "decision": word, "reason": decision.reason.as_str() }),
    ))
}
