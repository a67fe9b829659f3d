//! `POST /power/wake` and the power schedules (`GET`/`POST /power/schedules`,
//! `DELETE /power/schedules/{id}`), behind `command.power`. Waking needs
//! control access to every device named; a schedule needs control access
//! to every device of its computer group now (as a command to them would).
//! Shut down, restart and log off themselves are commands
//! (`POST /commands` with `{"type":"power",…}`).

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use lectern_store::PowerSchedule;
use serde::Deserialize;
use serde_json::json;

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::state::Shared;

const RIGHT: &str = "command.power";
/// Most devices one wake may name.
const MAX_WAKE: usize = 10_000;
/// Most schedules a school keeps.
const MAX_SCHEDULES: usize = 200;

/// `{"devices": [ids]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wake {
    devices: Vec<i64>,
}

/// Refuses (403, audited) devices the caller does not control.
async fn require_control(st: &Shared, auth: &Authed, ids: &BTreeSet<i64>) -> Result<(), ApiError> {
    if auth.rights.all {
        return Ok(());
    }
    let visible = super::devices::visible(st, auth).await?;
    let refused: Vec<i64> = ids
        .iter()
        .filter(|id| {
            !visible
                .iter()
                .any(|(v, a)| v.id == **id && *a >= Access::Control)
        })
        .copied()
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    auth.deny(
        st,
        "power on devices without control access",
        refused.clone(),
    )
    .await;
    Err(ApiError::no_control(&refused))
}

/// `POST /power/wake`: sends Wake-on-LAN for each device; one result each.
pub async fn wake(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<Wake>, ApiError>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let JsonBody(body) = body?;
    let ids: BTreeSet<i64> = body.devices.into_iter().collect();
    if ids.is_empty() || ids.len() > MAX_WAKE {
        return Err(ApiError::bad_request(format!(
            "choose 1 to {MAX_WAKE} devices"
        )));
    }
    require_control(&st, &auth, &ids).await?;
    let results = crate::power::wake(&st, auth.school(), &ids).await;
    let ok = results.iter().filter(|r| r.status == "sent").count();
    let mut entry = auth.audit_entry(&st, "power.wake", "");
    entry.devices = ids.iter().copied().collect();
    entry.detail = serde_json::to_string(&results).unwrap_or_default();
    entry.outcome = format!("sent for {ok}, failed {}", results.len() - ok);
    st.audit(entry).await;
    Ok(Json(json!({ "results": results })))
}

/// `GET /power/schedules`.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<PowerSchedule>>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    Ok(Json(st.db(move |s| s.power_schedules(school)).await?))
}

/// The devices of computer group `group` now.
async fn group_devices(
    st: &Shared,
    school: lectern_store::SchoolId,
    group: i64,
) -> Result<BTreeSet<i64>, ApiError> {
    let devices = st.db(move |s| s.list_devices(school)).await?;
    Ok(devices
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .filter(|d| {
            st.device_groups(school, d.id, &d.hostname, None)
                .contains(&group)
        })
        .map(|d| d.id)
        .collect())
}

/// `POST /power/schedules`: adds a schedule (201).
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<PowerSchedule>, ApiError>,
) -> Result<(StatusCode, Json<PowerSchedule>), ApiError> {
    auth.require(&st, RIGHT).await?;
    let JsonBody(mut s) = body?;
    crate::power::check_schedule(&s).map_err(ApiError::bad_request)?;
    let school = auth.session.user.school_id;
    let group = s.group_id;
    let groups = st.db(move |db| db.list_groups(school)).await?;
    let Some(g) = groups.iter().find(|g| g.group.id == group) else {
        return Err(ApiError::bad_request(format!("no group {group}")));
    };
    if g.group.kind != lectern_policy::groups::GroupKind::Computer {
        return Err(ApiError::bad_request(
            "a schedule is for a computer group (a room)",
        ));
    }
    let members = group_devices(&st, auth.school(), group).await?;
    require_control(&st, &auth, &members).await?;
    let existing = st.db(move |db| db.power_schedules(school)).await?;
    if existing.len() >= MAX_SCHEDULES {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_SCHEDULES} schedules"
        )));
    }
    s.created_by = auth.username().to_string();
    let stored = st.db(move |db| db.add_power_schedule(school, &s)).await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "power.schedule",
        "created",
    );
    entry.detail = serde_json::to_string(&stored).unwrap_or_default();
    st.audit(entry).await;
    Ok((StatusCode::CREATED, Json(stored)))
}

/// `DELETE /power/schedules/{id}` (204).
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    let existing = st.db(move |db| db.power_schedules(school)).await?;
    let Some(s) = existing.into_iter().find(|s| s.id == id) else {
        return Err(ApiError::not_found(format!("no schedule {id}")));
    };
    let members = group_devices(&st, auth.school(), s.group_id).await?;
    require_control(&st, &auth, &members).await?;
    st.db(move |db| db.delete_power_schedule(school, id))
        .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "power.schedule",
        "deleted",
    );
    entry.detail = serde_json::to_string(&s).unwrap_or_default();
    st.audit(entry).await;
    Ok(StatusCode::NO_CONTENT)
}
