//! Groups, the settings catalogue, resultant settings and directory memberships.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::groups::{Group, GroupKind, Member, Priority};
use lectern_policy::settings::{catalogue_json, parse_settings};
use lectern_store::GroupRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::delegation::{check, Change};
use super::{ApiError, JsonBody};
use crate::state::Shared;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    name: String,
    kind: GroupKind,
    priority: Priority,
    #[serde(default)]
    members: Vec<Member>,
    #[serde(default)]
    settings: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    name: Option<String>,
    priority: Option<Priority>,
    members: Option<Vec<Member>>,
    settings: Option<Value>,
}

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "group names are 1 to 100 printable characters",
        ));
    }
    Ok(name.to_string())
}

fn check_members(kind: GroupKind, members: &[Member]) -> Result<(), ApiError> {
    if members.len() > 10_000 {
        return Err(ApiError::bad_request("at most 10000 members per group"));
    }
    members
        .iter()
        .try_for_each(|m| m.check(kind))
        .map_err(ApiError::bad_request)
}

fn settings_of(v: Option<&Value>) -> Result<lectern_policy::settings::SettingsMap, ApiError> {
    v.map(parse_settings)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))
        .map(Option::unwrap_or_default)
}

async fn changed(st: &Shared, auth: &Authed, action: &str, detail: String) -> Result<(), ApiError> {
    let mut entry = auth.audit_entry(st, action, "ok");
    entry.detail = detail;
    st.audit(entry).await;
    st.reload_policies(auth.school()).await
}

/// `GET /settings/catalogue`.
pub async fn catalogue(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "groups.view").await?;
    Ok(Json(catalogue_json()))
}

/// `GET /groups`.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<GroupRecord>>, ApiError> {
    auth.require(&st, "groups.view").await?;
    let school = auth.school();
    Ok(Json(st.db(move |s| s.list_groups(school)).await?))
}

async fn load(
    st: &Shared,
    school: lectern_store::SchoolId,
    id: i64,
) -> Result<GroupRecord, ApiError> {
    st.db(move |s| s.get_group(school, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group {id}")))
}

/// `GET /groups/{id}`.
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<GroupRecord>, ApiError> {
    auth.require(&st, "groups.view").await?;
    Ok(Json(load(&st, auth.school(), id).await?))
}

/// The devices the caller may see that `members` match now (all of them for
/// Entire Network), as `{count, devices}`. Scoped like the device list: a
/// device the caller may not see is neither listed nor counted.
async fn matching(
    st: &Shared,
    auth: &Authed,
    kind: GroupKind,
    members: &[Member],
) -> Result<Value, ApiError> {
    let devices: Vec<Value> = super::devices::visible(st, auth)
        .await?
        .into_iter()
        .map(|(v, _)| v)
        .filter(|v| {
            kind == GroupKind::EntireNetwork
                || st
                    .policies
                    .of(auth.school()).members_match(members, &v.hostname, v.state.user.as_deref())
        })
        .map(|v| json!({"id": v.id, "hostname": v.hostname, "user": v.state.user, "online": v.online}))
        .collect();
    Ok(json!({"count": devices.len(), "devices": devices}))
}

/// `GET /groups/{id}/members`: the devices the group's members match now.
pub async fn members(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "groups.view").await?;
    let rec = load(&st, auth.school(), id).await?;
    Ok(Json(
        matching(&st, &auth, rec.group.kind, &rec.group.members).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    kind: GroupKind,
    #[serde(default)]
    members: Vec<Member>,
}

/// `POST /groups/preview`: the devices these members would match now (the
/// console's live count while a group is edited); stores nothing.
pub async fn preview(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<Preview>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "groups.view").await?;
    let JsonBody(b) = body?;
    check_members(b.kind, &b.members)?;
    Ok(Json(matching(&st, &auth, b.kind, &b.members).await?))
}

/// `POST /groups`: a computer or user group.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewGroup>, ApiError>,
) -> Result<(StatusCode, Json<GroupRecord>), ApiError> {
    auth.require(&st, "groups.manage").await?;
    let JsonBody(b) = body?;
    if !matches!(b.kind, GroupKind::Computer | GroupKind::User) {
        return Err(ApiError::bad_request(
            "only computer and user groups can be created; the others are built in",
        ));
    }
    check_members(b.kind, &b.members)?;
    let group = Group {
        id: 0,
        name: check_name(&b.name)?,
        kind: b.kind,
        priority: b.priority,
        members: b.members,
        settings: settings_of(b.settings.as_ref())?,
    };
    // A new group is one no rule gives access to: what it applies to its
    // members' devices needs control of Entire Network.
    let mut change = None;
    if !group.members.is_empty() || !group.settings.is_empty() {
        let c = Change::begin(&st, &auth).await;
        check(
            &st,
            &auth,
            "group.create with members or settings",
            c.granter().may_control_group(None),
        )
        .await?;
        change = Some(c);
    }
    let school = auth.school();
    let g = group.clone();
    let rec = st.db(move |s| s.create_group(school, &g)).await?;
    changed(
        &st,
        &auth,
        "group.create",
        format!("{} ({})", rec.group.name, rec.group.id),
    )
    .await?;
    drop(change);
    Ok((StatusCode::CREATED, Json(rec)))
}

/// `PUT /groups/{id}`: replaces the given fields. Built-in restriction groups
/// only take members; Entire Network takes everything but members.
pub async fn update(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<GroupPatch>, ApiError>,
) -> Result<Json<GroupRecord>, ApiError> {
    auth.require(&st, "groups.manage").await?;
    let JsonBody(b) = body?;
    let rec = load(&st, auth.school(), id).await?;
    let mut g = rec.group.clone();
    let original = rec.group.name.clone();
    let fixed = |what: &str| {
        ApiError::bad_request(format!(
            "the built-in {original:?} group's {what} cannot change"
        ))
    };
    if let Some(name) = &b.name {
        let name = check_name(name)?;
        if rec.builtin && name != g.name {
            return Err(fixed("name"));
        }
        g.name = name;
    }
    if let Some(p) = b.priority {
        if g.kind == GroupKind::Restriction && p != g.priority {
            return Err(fixed("priority"));
        }
        g.priority = p;
    }
    let members_changed = b.members.as_ref().is_some_and(|m| *m != g.members);
    if let Some(members) = b.members {
        check_members(g.kind, &members)?;
        g.members = members;
    }
    if let Some(settings) = &b.settings {
        let parsed = settings_of(Some(settings))?;
        if g.kind == GroupKind::Restriction && parsed != g.settings {
            return Err(fixed("settings"));
        }
        g.settings = parsed;
    }
    let change = may_change(&st, &auth, &rec.group, &g, members_changed).await?;
    let school = auth.school();
    let up = g.clone();
    let rec = st
        .db(move |s| s.update_group(school, &up))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no group {id}")))?;
    changed(
        &st,
        &auth,
        "group.update",
        format!(
            "{} ({}): {}",
            rec.group.name,
            id,
            serde_json::to_string(&rec.group).unwrap_or_default()
        ),
    )
    .await?;
    drop(change);
    Ok(Json(rec))
}

/// Checks a group update under the delegation rule: settings, members or
/// priority apply to the members' devices and need control of the group; new
/// members also come under the access rules give to it, which must not reach
/// beyond the caller's. Returns the change lock to hold until it is stored.
async fn may_change(
    st: &Shared,
    auth: &Authed,
    before: &Group,
    after: &Group,
    members_changed: bool,
) -> Result<Option<Change>, ApiError> {
    let id = before.id;
    let governs =
        members_changed || before.settings != after.settings || before.priority != after.priority;
    if !governs {
        return Ok(None);
    }
    let c = Change::begin(st, auth).await;
    let what = format!("group.update {id}");
    check(st, auth, &what, c.granter().may_control_group(Some(id))).await?;
    if members_changed {
        let members = c.granter().may_change_members(&c.rules, id);
        check(st, auth, &format!("{what} members"), members).await?;
    }
    Ok(Some(c))
}

/// `DELETE /groups/{id}`.
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "groups.manage").await?;
    let rec = load(&st, auth.school(), id).await?;
    if rec.builtin {
        return Err(ApiError::bad_request(format!(
            "the built-in {:?} group cannot be deleted",
            rec.group.name
        )));
    }
    // Deleting takes its settings off its members' devices.
    let c = Change::begin(&st, &auth).await;
    let what = format!("group.delete {id}");
    check(&st, &auth, &what, c.granter().may_control_group(Some(id))).await?;
    let school = auth.school();
    st.db(move |s| s.delete_group(school, id)).await?;
    changed(
        &st,
        &auth,
        "group.delete",
        format!("{} ({id})", rec.group.name),
    )
    .await?;
    drop(c);
    Ok(StatusCode::NO_CONTENT)
}

// A misspelt filter is refused (naming it), never silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultantQuery {
    device: Option<i64>,
    user: Option<String>,
}

/// `GET /resultant?device=&user=`: each setting's value and the group it came from.
pub async fn resultant(
    State(st): State<Shared>,
    auth: Authed,
    Query(q): Query<ResultantQuery>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "groups.view").await?;
    let device = match q.device {
        Some(id) => Some(
            super::devices::visible(&st, &auth)
                .await?
                .into_iter()
                .find(|(v, _)| v.id == id)
                .map(|(v, _)| v)
                .ok_or_else(|| ApiError::not_found(format!("no device {id}")))?,
        ),
        None => None,
    };
    let user = q
        .user
        .filter(|u| !u.trim().is_empty())
        .or_else(|| device.as_ref().and_then(|d| d.state.user.clone()));
    if device.is_none() && user.is_none() {
        return Err(ApiError::bad_request("give a device, a user, or both"));
    }
    let hostname = device.as_ref().map(|d| d.hostname.clone());
    let res = st
        .policies
        .of(auth.school())
        .resolve(hostname.as_deref(), user.as_deref());
    let settings: serde_json::Map<String, Value> = res
        .resultant
        .iter()
        .map(|(k, r)| (k.name(), json!({"value": r.value, "source": r.source})))
        .collect();
    let version = device
        .as_ref()
        .and_then(|d| st.hub.policy_of(d.id))
        .map(|p| p.version);
    Ok(Json(json!({
        "device_id": device.as_ref().map(|d| d.id),
        "hostname": hostname,
        "user": user,
        "person": res.person,
        "directory_groups": res.directory_groups,
        "groups": res.groups,
        "version": version,
        "settings": settings,
        // Which keyword libraries apply, and from which group's assignment.
        "keyword_libraries": crate::keywords::applied(&st, auth.school(), hostname.as_deref(), user.as_deref()),
    })))
}

/// `GET /directory/users`: users' directory groups.
pub async fn directory(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "groups.view").await?;
    let school = auth.school();
    let rows = st.db(move |s| s.directory(school)).await?;
    Ok(Json(json!(rows
        .into_iter()
        .map(|(u, g)| json!({"username": u, "groups": g}))
        .collect::<Vec<_>>())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryGroups {
    groups: Vec<String>,
}

fn check_names(names: &[String]) -> Result<(), ApiError> {
    if names.len() > 1000
        || names.iter().any(|n| {
            n.trim().is_empty() || n.chars().count() > 256 || n.chars().any(char::is_control)
        })
    {
        return Err(ApiError::bad_request(
            "directory group and user names are 1 to 256 printable characters, at most 1000 groups",
        ));
    }
    Ok(())
}

/// Checks, under the delegation rule, replacing each named user's directory
/// groups; the first refusal refuses the whole request.
async fn may_set_directory(
    st: &Shared,
    auth: &Authed,
    change: &Change,
    users: &[(String, Vec<String>)],
) -> Result<(), ApiError> {
    for (user, groups) in users {
        let before = st.policies.of(auth.school()).directory_groups(user);
        let verdict = change
            .granter()
            .may_set_memberships(&change.rules, user, &before, groups);
        check(st, auth, &format!("directory.set {user}"), verdict).await?;
    }
    Ok(())
}

/// Stores directory groups and audits every change, old and new groups.
async fn save_directory(
    st: &Shared,
    auth: &Authed,
    action: &str,
    users: Vec<(String, Vec<String>)>,
) -> Result<(), ApiError> {
    // An import may name thousands: the audit lists the first hundred.
    let total = users.len();
    let detail: Vec<Value> = users
        .iter()
        .take(100)
        .map(|(u, g)| json!({"username": u, "before": st.policies.of(auth.school()).directory_groups(u), "after": g}))
        .collect();
    let school = auth.school();
    st.db(move |s| {
        users
            .iter()
            .try_for_each(|(u, g)| s.set_directory_groups(school, u, g))
    })
    .await?;
    let more = match total.saturating_sub(detail.len()) {
        0 => String::new(),
        n => format!(" and {n} more users"),
    };
    changed(st, auth, action, format!("{}{more}", Value::from(detail))).await
}

/// `PUT /directory/users/{username}`: replaces a user's directory groups.
/// Needs `directory.manage`; never one's own (unless an administrator).
pub async fn set_directory(
    State(st): State<Shared>,
    auth: Authed,
    Path(user): Path<String>,
    body: Result<JsonBody<DirectoryGroups>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let JsonBody(b) = body?;
    check_names(&b.groups)?;
    check_names(std::slice::from_ref(&user))?;
    let users = vec![(user.clone(), b.groups.clone())];
    let change = Change::begin(&st, &auth).await;
    may_set_directory(&st, &auth, &change, &users).await?;
    save_directory(&st, &auth, "directory.set", users).await?;
    drop(change);
    Ok(Json(json!({"username": user, "groups": b.groups})))
}

/// `POST /directory/import`: CSV of `username,group` rows (a header row is
/// allowed); replaces the groups of every user named.
pub async fn import(
    State(st): State<Shared>,
    auth: Authed,
    body: String,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(body.as_bytes());
    for (i, row) in rdr.records().enumerate() {
        let row = row.map_err(|e| ApiError::bad_request(format!("CSV row {}: {e}", i + 1)))?;
        if row.len() != 2 {
            return Err(ApiError::bad_request(format!(
                "CSV row {}: expected username,group",
                i + 1
            )));
        }
        if i == 0 && row[0].eq_ignore_ascii_case("username") {
            continue;
        }
        users
            .entry(row[0].to_string())
            .or_default()
            .push(row[1].to_string());
    }
    for (u, g) in &users {
        check_names(std::slice::from_ref(u))?;
        check_names(g)?;
    }
    // Sorted, so a refusal names the same user every time.
    let mut users: Vec<(String, Vec<String>)> = users.into_iter().collect();
    users.sort();
    let n = users.len();
    let change = Change::begin(&st, &auth).await;
    may_set_directory(&st, &auth, &change, &users).await?;
    save_directory(&st, &auth, "directory.import", users).await?;
    drop(change);
    Ok(Json(json!({"users": n})))
}
