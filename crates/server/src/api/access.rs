//! Access rules, console users and the caller's own rights.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::{AccessRule, FEATURES};
use lectern_store::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::delegation::{check, Change};
use super::{ApiError, JsonBody};
use crate::state::Shared;

/// `GET /access-rules/features`.
pub async fn features(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "access.manage").await?;
    Ok(Json(json!(FEATURES
        .iter()
        .map(|(k, d)| json!({"key": k, "description": d}))
        .collect::<Vec<_>>())))
}

/// `GET /access-rules`.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<AccessRule>>, ApiError> {
    auth.require(&st, "access.manage").await?;
    let school = st.school.id;
    Ok(Json(st.db(move |s| s.access_rules(school)).await?))
}

async fn save(
    st: &Shared,
    auth: &Authed,
    rule: AccessRule,
    action: &str,
) -> Result<AccessRule, ApiError> {
    rule.validate().map_err(ApiError::bad_request)?;
    // Access to a group that does not exist would pass to whichever group is
    // created with that id later.
    if let Some(g) = rule
        .group_access
        .keys()
        .find(|g| !st.policies.group_exists(**g))
    {
        return Err(ApiError::bad_request(format!("no group {g}")));
    }
    let change = Change::begin(st, auth).await;
    let old = match rule.id {
        0 => None,
        id => Some(
            change
                .rules
                .iter()
                .find(|r| r.id == id)
                .ok_or_else(|| ApiError::not_found(format!("no access rule {id}")))?,
        ),
    };
    check(
        st,
        auth,
        action,
        change.granter().may_write_rule(old, &rule),
    )
    .await?;
    let school = st.school.id;
    let r = rule.clone();
    let saved = st
        .db(move |s| s.save_access_rule(school, &r))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no access rule {}", rule.id)))?;
    let mut entry = st.audit_entry(auth.username(), auth.address.clone(), action, "ok");
    entry.detail = serde_json::to_string(&saved).unwrap_or_default();
    st.audit(entry).await;
    st.reload_policies().await?;
    Ok(saved)
}

/// `POST /access-rules`.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<AccessRule>, ApiError>,
) -> Result<(StatusCode, Json<AccessRule>), ApiError> {
    auth.require(&st, "access.manage").await?;
    let JsonBody(mut rule) = body?;
    rule.id = 0;
    Ok((
        StatusCode::CREATED,
        Json(save(&st, &auth, rule, "access_rule.create").await?),
    ))
}

/// `PUT /access-rules/{id}`.
pub async fn update(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<AccessRule>, ApiError>,
) -> Result<Json<AccessRule>, ApiError> {
    auth.require(&st, "access.manage").await?;
    let JsonBody(mut rule) = body?;
    if id <= 0 {
        return Err(ApiError::not_found(format!("no access rule {id}")));
    }
    rule.id = id;
    Ok(Json(save(&st, &auth, rule, "access_rule.update").await?))
}

/// `DELETE /access-rules/{id}`.
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "access.manage").await?;
    let change = Change::begin(&st, &auth).await;
    let old = change
        .rules
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no access rule {id}")))?;
    check(
        &st,
        &auth,
        "access_rule.delete",
        change.granter().may_delete_rule(old),
    )
    .await?;
    let school = st.school.id;
    if !st.db(move |s| s.delete_access_rule(school, id)).await? {
        return Err(ApiError::not_found(format!("no access rule {id}")));
    }
    let mut entry = st.audit_entry(
        auth.username(),
        auth.address.clone(),
        "access_rule.delete",
        "ok",
    );
    entry.detail = serde_json::to_string(old).unwrap_or_default();
    st.audit(entry).await;
    st.reload_policies().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /users`: console users.
pub async fn users(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "access.manage").await?;
    let school = st.school.id;
    let users = st.db(move |s| s.list_users(school)).await?;
    Ok(Json(json!(users
        .into_iter()
        .map(|u| json!({"username": u.username, "role": u.role}))
        .collect::<Vec<_>>())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    password: String,
    role: Role,
}

/// `POST /users`: adds a console user.
pub async fn create_user(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewUser>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "access.manage").await?;
    let JsonBody(b) = body?;
    let name = b.username.trim().to_string();
    if name.is_empty()
        || name.chars().count() > 128
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::bad_request(
            "user names are 1 to 128 characters without spaces",
        ));
    }
    if b.password.chars().count() < 8 {
        return Err(ApiError::bad_request(
            "passwords need at least 8 characters",
        ));
    }
    // Whoever creates an account knows its password: it may hold (through rules
    // already written for its name or its directory groups) nothing beyond its
    // creator's rights, and only administrators make administrators.
    let change = Change::begin(&st, &auth).await;
    let dirs = st.policies.directory_groups(&name);
    check(
        &st,
        &auth,
        &format!("user.create {name}"),
        change
            .granter()
            .may_create_account(&change.rules, &name, &dirs, b.role == Role::Admin),
    )
    .await?;
    let (school, n, p, role) = (st.school.id, name.clone(), b.password, b.role);
    st.db(move |s| s.create_user(school, &n, &p, role)).await?;
    let mut entry = st.audit_entry(auth.username(), auth.address.clone(), "user.create", "ok");
    entry.detail = format!("{name} ({})", role.as_str());
    st.audit(entry).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"username": name, "role": role})),
    ))
}

/// `GET /me`: the caller and their effective rights.
pub async fn me(auth: Authed) -> Json<Value> {
    Json(
        json!({"username": auth.username(), "role": auth.session.user.role, "rights": auth.rights}),
    )
}
