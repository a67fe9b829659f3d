//! Access rules, console users and the caller's own rights.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::{AccessRule, Principal, FEATURES};
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
    let school = auth.school();
    Ok(Json(st.db(move |s| s.access_rules(school)).await?))
}

/// A rule as written: the rule, and whether its user may be one the server
/// has not seen yet.
pub struct RuleBody {
    rule: AccessRule,
    /// A rule for a user name with no console account, person or directory
    /// entry is refused (most likely a typo, granting nothing to anyone until
    /// someone takes that name) unless this says it is meant.
    allow_unknown: bool,
}

impl RuleBody {
    /// Splits `allow_unknown` off the rule's fields. (Not `serde(flatten)`:
    /// flattened maps lose the integer group ids' keys.)
    fn parse(mut v: Value) -> Result<Self, ApiError> {
        let allow_unknown = match v.as_object_mut().and_then(|o| o.remove("allow_unknown")) {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(_) => return Err(ApiError::bad_request("allow_unknown is true or false")),
        };
        let rule = serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(Self {
            rule,
            allow_unknown,
        })
    }
}

/// Refuses a rule naming a user the server does not know (no console
/// account, no person holding the name, no directory entry), unless the
/// writer flagged it or the rule already named that user.
async fn known_user(
    st: &Shared,
    school: lectern_store::SchoolId,
    rule: &AccessRule,
    old: Option<&AccessRule>,
    allow_unknown: bool,
) -> Result<(), ApiError> {
    let Principal::User(name) = &rule.principal else {
        return Ok(());
    };
    if allow_unknown || old.is_some_and(|o| o.principal == rule.principal) {
        return Ok(());
    }
    let accounts = st.db(move |s| s.list_users(school)).await?;
    let known = accounts
        .iter()
        .any(|u| u.username.eq_ignore_ascii_case(name))
        || st.policies.of(school).person_named(name).is_some()
        || !st.policies.of(school).directory_groups(name).is_empty();
    if known {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "no user {name:?} is known (no console account, person or directory entry); \
         check the spelling, or set allow_unknown to write a rule for a user not yet seen"
    )))
}

async fn save(
    st: &Shared,
    auth: &Authed,
    body: RuleBody,
    action: &str,
) -> Result<AccessRule, ApiError> {
    let RuleBody {
        rule,
        allow_unknown,
    } = body;
    rule.validate().map_err(ApiError::bad_request)?;
    // Access to a group that does not exist would pass to whichever group is
    // created with that id later.
    if let Some(g) = rule
        .group_access
        .keys()
        .find(|g| !st.policies.of(auth.school()).group_exists(**g))
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
    known_user(st, auth.school(), &rule, old, allow_unknown).await?;
    let school = auth.school();
    let r = rule.clone();
    let saved = st
        .db(move |s| s.save_access_rule(school, &r))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no access rule {}", rule.id)))?;
    let mut entry = st.audit_entry(school, auth.username(), auth.address.clone(), action, "ok");
    entry.detail = serde_json::to_string(&saved).unwrap_or_default();
    st.audit(entry).await;
    st.reload_policies(school).await?;
    Ok(saved)
}

/// `POST /access-rules`.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<(StatusCode, Json<AccessRule>), ApiError> {
    auth.require(&st, "access.manage").await?;
    let mut body = RuleBody::parse(body?.0)?;
    body.rule.id = 0;
    Ok((
        StatusCode::CREATED,
        Json(save(&st, &auth, body, "access_rule.create").await?),
    ))
}

/// `PUT /access-rules/{id}`.
pub async fn update(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<Value>, ApiError>,
) -> Result<Json<AccessRule>, ApiError> {
    auth.require(&st, "access.manage").await?;
    let mut body = RuleBody::parse(body?.0)?;
    if id <= 0 {
        return Err(ApiError::not_found(format!("no access rule {id}")));
    }
    body.rule.id = id;
    Ok(Json(save(&st, &auth, body, "access_rule.update").await?))
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
    let school = auth.school();
    if !st.db(move |s| s.delete_access_rule(school, id)).await? {
        return Err(ApiError::not_found(format!("no access rule {id}")));
    }
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "access_rule.delete",
        "ok",
    );
    entry.detail = serde_json::to_string(old).unwrap_or_default();
    st.audit(entry).await;
    st.reload_policies(school).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /me`: the caller, their effective rights, and the features the
/// console offers them (`usable`: held with the group access each needs).
pub async fn me(auth: Authed) -> Json<Value> {
    // What the console offers: each right held with the group access it
    // needs somewhere (the pages' `data-rights`).
    let usable: Vec<&str> = FEATURES
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| auth.rights.usable(f))
        .collect();
    Json(json!({
        "username": auth.username(),
        "role": auth.session.user.role,
        "rights": auth.rights,
        "usable": usable,
    }))
}
