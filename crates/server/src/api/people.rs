//! People and their aliases: one identity per student (or teacher) whatever
//! names they arrive under. A device's reported user resolves through the
//! aliases to the person, and user groups and directory memberships match any
//! of the person's names ([`crate::policies::Policies::resolve`]).
//!
//! Aliases decide which user groups a device's user is in, and so which
//! devices the consoles with access to those groups see and control. A change
//! is therefore checked like a change of group members
//! ([`lectern_policy::delegation::Granter::may_change_members`]) for every
//! group whose membership it changes, and nobody but an administrator changes
//! a person who carries their own console name. Console accounts' rights are
//! never resolved through aliases.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::delegation::Refusal;
use lectern_store::{Alias, AliasKind, Person};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::delegation::{check, refused, Change};
use super::{ApiError, JsonBody};
use crate::state::Shared;

/// Most aliases one person carries.
pub const MAX_ALIASES: usize = 32;

/// A person as the API takes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonBody {
    display_name: String,
    #[serde(default)]
    aliases: Vec<Alias>,
}

/// Checks and normalises a request: names trimmed, 1 to 256 printable
/// characters, at most [`MAX_ALIASES`], no name twice, e-mails with an `@`.
fn checked(id: i64, b: PersonBody) -> Result<Person, ApiError> {
    let printable =
        |s: &str| !s.is_empty() && s.chars().count() <= 256 && !s.chars().any(char::is_control);
    let display_name = b.display_name.trim().to_string();
    if !printable(&display_name) {
        return Err(ApiError::bad_request(
            "display_name must be 1 to 256 printable characters",
        ));
    }
    if b.aliases.len() > MAX_ALIASES {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_ALIASES} aliases per person"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut aliases = Vec::with_capacity(b.aliases.len());
    for a in b.aliases {
        let value = a.value.trim().to_string();
        if !printable(&value) {
            return Err(ApiError::bad_request(
                "alias values must be 1 to 256 printable characters",
            ));
        }
        if a.kind == AliasKind::Email && !value.contains('@') {
            return Err(ApiError::bad_request(format!(
                "email alias {value:?} is not an e-mail address"
            )));
        }
        if !seen.insert(value.to_lowercase()) {
            return Err(ApiError::bad_request(format!(
                "alias {value:?} is given twice"
            )));
        }
        aliases.push(Alias {
            kind: a.kind,
            value,
        });
    }
    aliases.sort();
    Ok(Person {
        id,
        display_name,
        aliases,
    })
}

fn names(p: Option<&Person>) -> Vec<String> {
    p.map(|p| p.names().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The stored groups whose members change when a person's names go from
/// `before` to `after`: for each name involved, the groups of all the names
/// it is resolved with, before and after.
fn groups_changed(
    st: &Shared,
    school: lectern_store::SchoolId,
    before: &[String],
    after: &[String],
) -> BTreeSet<i64> {
    let has = |set: &[String], n: &str| set.iter().any(|x| x.eq_ignore_ascii_case(n));
    let mut out = BTreeSet::new();
    if before == after {
        return out;
    }
    for n in before.iter().chain(after) {
        let alone = vec![n.clone()];
        let was =
            st.policies
                .of(school)
                .groups_of_names(if has(before, n) { before } else { &alone });
        let will =
            st.policies
                .of(school)
                .groups_of_names(if has(after, n) { after } else { &alone });
        out.extend(was.symmetric_difference(&will));
    }
    out
}

/// The delegation check of a change from `before` to `after` (`None`: the
/// person does not exist on that side).
async fn may_change(
    st: &Shared,
    auth: &Authed,
    change: &Change,
    what: &str,
    before: Option<&Person>,
    after: Option<&Person>,
) -> Result<(), ApiError> {
    if auth.rights.all {
        return Ok(());
    }
    let (b, a) = (names(before), names(after));
    let me = auth.username();
    if b.iter().chain(&a).any(|n| n.eq_ignore_ascii_case(me)) {
        return Err(refused(st, auth, what, Refusal::OwnMemberships).await);
    }
    for group in groups_changed(st, auth.school(), &b, &a) {
        let verdict = change.granter().may_change_members(&change.rules, group);
        check(st, auth, what, verdict).await?;
    }
    Ok(())
}

async fn load(st: &Shared, school: lectern_store::SchoolId, id: i64) -> Result<Person, ApiError> {
    st.db(move |s| s.get_person(school, id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such person"))
}

/// Audits a change (old and new names) and reloads policies, so every
/// connected device is re-resolved with the new names.
async fn changed(
    st: &Shared,
    auth: &Authed,
    action: &str,
    before: Option<&Person>,
    after: Option<&Person>,
) -> Result<(), ApiError> {
    let mut entry = auth.audit_entry(st, action, "ok");
    entry.detail = json!({"before": before, "after": after}).to_string();
    st.audit(entry).await;
    st.reload_policies(auth.school()).await
}

/// `GET /people`: every person with their aliases.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Vec<Person>>, ApiError> {
    auth.require(&st, "groups.view").await?;
    let school = auth.school();
    Ok(Json(st.db(move |s| s.list_people(school)).await?))
}

/// `POST /people`: creates a person with aliases. Needs `directory.manage`.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<PersonBody>, ApiError>,
) -> Result<(StatusCode, Json<Person>), ApiError> {
    auth.require(&st, "directory.manage").await?;
    let JsonBody(b) = body?;
    let person = checked(0, b)?;
    let change = Change::begin(&st, &auth).await;
    may_change(&st, &auth, &change, "person.create", None, Some(&person)).await?;
    let school = auth.school();
    let saved = st
        .db(move |s| s.save_person(school, &person))
        .await?
        .ok_or_else(|| ApiError::internal("created person vanished"))?;
    changed(&st, &auth, "person.create", None, Some(&saved)).await?;
    drop(change);
    Ok((StatusCode::CREATED, Json(saved)))
}

/// `PUT /people/{id}`: replaces a person's display name and aliases. Needs
/// `directory.manage`.
pub async fn update(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<PersonBody>, ApiError>,
) -> Result<Json<Person>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let JsonBody(b) = body?;
    let person = checked(id, b)?;
    let change = Change::begin(&st, &auth).await;
    let before = load(&st, auth.school(), id).await?;
    may_change(
        &st,
        &auth,
        &change,
        "person.update",
        Some(&before),
        Some(&person),
    )
    .await?;
    let school = auth.school();
    let saved = st
        .db(move |s| s.save_person(school, &person))
        .await?
        .ok_or_else(|| ApiError::not_found("no such person"))?;
    changed(&st, &auth, "person.update", Some(&before), Some(&saved)).await?;
    drop(change);
    Ok(Json(saved))
}

/// `DELETE /people/{id}`: forgets a person; their names become unrelated
/// user names again. Needs `directory.manage`.
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "directory.manage").await?;
    let change = Change::begin(&st, &auth).await;
    let before = load(&st, auth.school(), id).await?;
    may_change(&st, &auth, &change, "person.delete", Some(&before), None).await?;
    let school = auth.school();
    st.db(move |s| s.delete_person(school, id)).await?;
    changed(&st, &auth, "person.delete", Some(&before), None).await?;
    drop(change);
    Ok(Json(json!({"deleted": id})))
}
