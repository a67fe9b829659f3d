//! Device administration routes: rename and delete a device, the computer
//! availability view (staff and, when a school turns it on, anonymous), and
//! its switch.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, Extensions, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use lectern_policy::access::Access;
use lectern_proto::{ErrorCode, ServerMsg};
use serde::Deserialize;
use serde_json::json;

use super::auth::Authed;
use super::devices::find;
use super::{reason, ApiError};
use crate::devadmin::{self, Audience};
use crate::state::Shared;

/// The device, if the caller may control it (404 if they may not see it, 403
/// if they may only view it); audited when refused.
pub(super) async fn controlled(
    st: &Shared,
    auth: &Authed,
    id: i64,
    what: &str,
) -> Result<crate::hub::DeviceView, ApiError> {
    let (view, access) = find(st, auth, id).await?;
    if access < Access::Control {
        auth.deny(st, &format!("{what} of device {id}"), vec![id])
            .await;
        return Err(ApiError::no_control(&[id]));
    }
    Ok(view)
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("bad request body: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

/// `POST /devices/{id}/rename`: gives a device a new enrolled name (checked,
/// unique in the school regardless of case); rooms it joined by name follow
/// it. Needs `devices.manage` and control of the device; audited.
pub async fn rename(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "devices.manage").await?;
    let b: Rename = parse(&body)?;
    let name = devadmin::check_name(&b.name)
        .map_err(ApiError::bad_request)?
        .to_string();
    controlled(&st, &auth, id, "rename").await?;
    let (school, new) = (auth.school(), name.clone());
    let result = st
        .db(move |s| s.devadmin().rename_device(school, id, &new))
        .await;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "device.rename",
        "ok",
    );
    entry.devices = vec![id];
    let old = match result {
        Ok(Some(old)) => old,
        Ok(None) => return Err(ApiError::not_found(format!("no device {id}"))),
        Err(e) => {
            entry.outcome = "refused".into();
            entry.detail = format!("to {name}: {}", e.message);
            st.audit(entry).await;
            return Err(e);
        }
    };
    entry.detail = format!("{old} → {name}");
    st.audit(entry).await;
    st.hub.rename(id, &name);
    // Room memberships may have followed the name: re-resolve everyone.
    st.reload_policies(school).await?;
    if let Some(v) = st.hub.online().remove(&id) {
        st.hub
            .publish(crate::hub::ConsoleEvent::Device(Box::new(v)));
    }
    Ok(Json(json!({ "id": id, "hostname": name, "previous": old })))
}

/// `POST /devices/{id}/delete`: revokes the device (its connection closes at
/// once) and removes its row, screenshots, inventory and its exact room
/// memberships; activity, violations, commands and the audit log keep its id
/// under the school's retention. Needs `devices.manage` and control; audited.
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "devices.manage").await?;
    controlled(&st, &auth, id, "delete").await?;
    let school = auth.school();
    st.db(move |s| s.revoke_device(school, id)).await?;
    disconnect(&st, id, "device deleted");
    let gone = st
        .db(move |s| s.devadmin().delete_device(school, id))
        .await?;
    // Another node may hold its connection: it closes it on hearing this.
    crate::cluster::announce(&st, school).await;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "device.delete",
        if gone.is_some() { "ok" } else { "not_found" },
    );
    entry.devices = vec![id];
    let Some(gone) = gone else {
        st.audit(entry).await;
        return Err(ApiError::not_found(format!("no device {id}")));
    };
    entry.detail = format!("deleted {} (rooms {:?})", gone.hostname, gone.rooms);
    st.audit(entry).await;
    if !gone.rooms.is_empty() {
        st.reload_policies(school).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Closes a revoked device's live connection, failing commands it had not
/// acknowledged.
pub(crate) fn disconnect(st: &Shared, id: i64, why: &str) {
    let pending = st.hub.kick(
        id,
        ServerMsg::Error {
            code: ErrorCode::Revoked,
            message: "this device was revoked by an administrator".into(),
        },
    );
    let reason = format!("{why} before acknowledging; it may or may not have run the command");
    crate::gateway::fail_unacknowledged(st, id, pending, &reason);
    // A revoked or deleted device has no one signed in on it.
    st.students.clear(id);
}

/// `GET /availability`: the rooms the caller may see, their computers free,
/// in use or offline, with who is signed in.
pub async fn availability(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let rooms = devadmin::rooms(&st, auth.school(), Audience::Staff(&auth.rights)).await?;
    Ok(Json(json!({ "rooms": rooms })))
}

/// `GET /availability/settings`: whether the anonymous view is on, and
/// whether the caller may change that (administrators only).
pub async fn get_settings(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let school = auth.school();
    let s = st.db(move |s| s.devadmin().availability(school)).await?;
    Ok(Json(json!({
        "public": s.public,
        "changed_by": s.changed_by,
        "changed_at": s.changed_at,
        "may_change": auth.rights.all,
        // Each school's screen is its own (one server may host several).
        "screen": format!("/availability/screen?school={school}"),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    public: bool,
}

/// `PUT /availability/settings`: turns the anonymous corridor-screen view on
/// or off. Administrators only; audited.
pub async fn put_settings(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, "devices.manage").await?;
    if !auth.rights.all {
        auth.deny(&st, "public availability switch", Vec::new())
            .await;
        return Err(ApiError::forbidden(
            "You can't show computer availability without signing in: only an administrator can. Ask your administrator.",
        )
        .with_reason(reason::MISSING_RIGHT)
        .with_feature("devices.manage"));
    }
    let b: Switch = parse(&body)?;
    let (school, by) = (auth.school(), auth.username().to_string());
    st.db(move |s| s.devadmin().set_availability(school, b.public, &by))
        .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "availability.public",
        "ok",
    );
    entry.detail = if b.public { "on" } else { "off" }.into();
    st.audit(entry).await;
    Ok(Json(json!({ "public": b.public })))
}

/// `GET /public/availability`'s query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicQuery {
    /// The school (id); the server's first when left out.
    school: Option<lectern_store::SchoolId>,
}

/// `GET /public/availability`, no sign-in: room names, counts and computer
/// names, only while the school has turned it on (409 otherwise), at most
/// [`devadmin::PUBLIC_PER_WINDOW`] requests a minute per address.
pub async fn public(
    State(st): State<Shared>,
    Query(q): Query<PublicQuery>,
    ext: Extensions,
) -> Result<Response, ApiError> {
    let addr = ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if let Err(secs) = st.availability.check(addr, std::time::Instant::now()) {
        return Err(ApiError {
            retry_after: Some(secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests; try again later",
            )
            .with_reason(reason::RATE_LIMITED)
        });
    }
    // A school that does not exist reads as one whose screen is off. A
    // screen's address names its school, unless the server has only one.
    let school = match q.school {
        Some(school) => school,
        None => st.only_school().await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "this server hosts several schools: the screen's address names one (?school=ID; an administrator finds it under Computer availability)",
            )
            .with_reason(reason::SCHOOL_REQUIRED)
        })?,
    };
    let on = st
        .db(move |s| s.devadmin().availability(school))
        .await?
        .public;
    if !on {
        // Not 404: the route exists, and the screen says why it is empty.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this school's availability screen is turned off; an administrator can turn it on in the console",
        )
        .with_reason(reason::PUBLIC_VIEW_OFF));
    }
    let rooms = devadmin::rooms(&st, school, Audience::Public).await?;
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "school": st.school_name(school).await, "rooms": rooms })),
    )
        .into_response())
}
