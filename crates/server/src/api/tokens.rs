//! Enrollment tokens: created for a room (a computer group) by those who
//! control it, or for no room by administrators; listed and revoked under the
//! same rule.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use lectern_policy::groups::GroupKind;
use lectern_store::devadmin::{NewToken as StoreToken, TokenRow};
use lectern_store::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::Authed;
use super::{reason, ApiError, JsonBody};
use crate::state::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    #[serde(default)]
    label: String,
    #[serde(default = "one")]
    uses: i64,
    #[serde(default = "day")]
    expires_hours: i64,
    /// The computer group devices enrolled with the token join.
    #[serde(default)]
    room: Option<i64>,
}

fn one() -> i64 {
    1
}
fn day() -> i64 {
    24
}

/// A token as listed: its record and its room's name.
#[derive(Serialize)]
pub struct Listed {
    #[serde(flatten)]
    token: TokenRow,
    /// The room's name (`None` without a room, or if the group is gone).
    room_name: Option<String>,
}

/// Whether the caller may make or revoke tokens for `room`: control of it,
/// or administrator (the only ones who may for no room, since such devices
/// join no group anyone else can see).
fn may_use_room(auth: &Authed, room: Option<i64>) -> bool {
    let r = &auth.rights;
    r.all
        || room.is_some_and(|g| {
            r.group_access
                .get(&g)
                .is_some_and(|a| *a >= Access::Control)
        })
}

async fn refuse_room(st: &Shared, auth: &Authed, room: Option<i64>) -> ApiError {
    let what = match room {
        Some(g) => format!("enrollment tokens for group {g}"),
        None => "enrollment tokens without a room".to_string(),
    };
    auth.deny(st, &what, Vec::new()).await;
    let message = if room.is_some() {
        "You can't enroll computers into that room. Ask your administrator."
    } else {
        "You can't enroll computers without choosing a room you control. Ask your administrator."
    };
    ApiError::forbidden(message).with_reason(reason::NO_CONTROL_OF_CLASS)
}

/// The name of computer group `room`, or a 400 if it is not one.
async fn room_name(
    st: &Shared,
    school: lectern_store::SchoolId,
    room: i64,
) -> Result<String, ApiError> {
    let g = st.db(move |s| s.get_group(school, room)).await?;
    match g {
        Some(rec) if rec.group.kind == GroupKind::Computer => Ok(rec.group.name),
        _ => Err(ApiError::bad_request(format!(
            "group {room} is not a computer group"
        ))),
    }
}

fn check(body: &NewToken) -> Result<(), ApiError> {
    if !(1..=100_000).contains(&body.uses) {
        return Err(ApiError::bad_request("uses must be between 1 and 100000"));
    }
    if !(1..=24 * 366).contains(&body.expires_hours) {
        return Err(ApiError::bad_request(
            "expires_hours must be between 1 and 8784",
        ));
    }
    if body.label.chars().count() > 100 {
        return Err(ApiError::bad_request("label is longer than 100 characters"));
    }
    Ok(())
}

/// `POST /enrollment-tokens`: a token that enrolls up to `uses` devices
/// within `expires_hours`, into `room` if given. The token is shown only in
/// this answer.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewToken>, ApiError>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    auth.require(&st, "devices.manage").await?;
    let JsonBody(body) = body?;
    check(&body)?;
    if !may_use_room(&auth, body.room) {
        return Err(refuse_room(&st, &auth, body.room).await);
    }
    let room_name = match body.room {
        Some(g) => Some(room_name(&st, auth.school(), g).await?),
        None => None,
    };
    let (school, by) = (auth.school(), auth.username().to_string());
    let expires = now_ms() + body.expires_hours * 3_600_000;
    let (label, uses, room) = (body.label.clone(), body.uses, body.room);
    let (token, rec) = st
        .db(move |s| {
            let t = StoreToken {
                label: &label,
                uses,
                expires_at: expires,
                created_by: &by,
                room,
            };
            s.devadmin().create_token(school, &t)
        })
        .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "enrollment_token.create",
        "ok",
    );
    entry.detail = format!(
        "token {} ({:?}), {} uses, room {:?}",
        rec.id, rec.label, rec.uses_left, room_name
    );
    st.audit(entry).await;
    let record = Listed {
        token: rec,
        room_name,
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": token, "record": record })),
    ))
}

/// `GET /enrollment-tokens`: tokens without their values, newest first;
/// administrators see all, others those of rooms they control.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Vec<Listed>>, ApiError> {
    auth.require(&st, "devices.manage").await?;
    let school = auth.school();
    let (tokens, groups) = st
        .db(move |s| Ok((s.devadmin().tokens(school)?, s.list_groups(school)?)))
        .await?;
    let name_of = |g: i64| {
        groups
            .iter()
            .find(|r| r.group.id == g)
            .map(|r| r.group.name.clone())
    };
    Ok(Json(
        tokens
            .into_iter()
            .filter(|t| may_use_room(&auth, t.room))
            .map(|t| Listed {
                room_name: t.room.and_then(name_of),
                token: t,
            })
            .collect(),
    ))
}

/// `DELETE /enrollment-tokens/{id}`: no more enrollments with the token.
/// Devices it enrolled stay. Audited.
pub async fn revoke(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "devices.manage").await?;
    let school = auth.school();
    let token = st.db(move |s| s.devadmin().token(school, id)).await?;
    let Some(token) = token.filter(|t| may_use_room(&auth, t.room)) else {
        return Err(ApiError::not_found(format!("no enrollment token {id}")));
    };
    let revoked = st
        .db(move |s| s.devadmin().revoke_token(school, id))
        .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "enrollment_token.revoke",
        if revoked { "ok" } else { "already_revoked" },
    );
    entry.detail = format!("token {id} ({:?})", token.label);
    st.audit(entry).await;
    if !revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("enrollment token {id} is already revoked"),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}
