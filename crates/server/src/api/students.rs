//! Students' sign-in passwords (issue 16; `lectern_proto::signin`): set,
//! shown (which kind, by whom, when; never the secret) and reset by holders
//! of `students.passwords`, for students in a group they control (all, for
//! administrators). Keyed by the caller's school; audited without the
//! secret.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use lectern_proto::signin::{StudentSecret, PICTURES};
use lectern_store::Person;
use serde_json::{json, Value};

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::state::Shared;

/// The right to set and reset students' passwords.
const RIGHT: &str = "students.passwords";

/// Whether the caller may set `person`'s password: administrators for
/// anyone, others for people in a group they control.
fn controls(st: &Shared, auth: &Authed, person: &Person) -> bool {
    if auth.rights.all {
        return true;
    }
    // The person's groups: those any of their names resolves to.
    let policies = st.policies.of(auth.school());
    let groups: Vec<i64> = person
        .names()
        .flat_map(|n| policies.resolve(None, Some(n)).groups)
        .collect();
    auth.device_access(&groups) == Access::Control
}

/// `GET /students`: the students whose passwords the caller may set, with
/// what is set for each (which kind, by whom, when).
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.school();
    let (people, secrets) = st
        .db(move |s| {
            let people = s.list_people(school)?;
            let mut secrets = std::collections::HashMap::new();
            for p in &people {
                if let Some(i) = s.students().student_secret(school, p.id)? {
                    secrets.insert(p.id, i);
                }
            }
            Ok((people, secrets))
        })
        .await?;
    let rows: Vec<Value> = people
        .iter()
        .filter(|p| controls(&st, &auth, p))
        .map(|p| {
            let secret = secrets.get(&p.id);
            json!({
                "id": p.id,
                "display_name": p.display_name,
                "names": p.names().collect::<Vec<_>>(),
                "kind": secret.map(|i| i.kind.as_str()),
                "set_by": secret.map(|i| i.set_by.as_str()),
                "set_at": secret.map(|i| i.set_at),
            })
        })
        .collect();
    Ok(Json(json!({ "students": rows })))
}

/// The person, if the caller may set their password: in the caller's school
/// (else 404, as for an id that does not exist) and in a group the caller
/// controls (else 403).
async fn student(st: &Shared, auth: &Authed, id: i64) -> Result<Person, ApiError> {
    auth.require(st, RIGHT).await?;
    let school = auth.school();
    let person = st
        .db(move |s| s.get_person(school, id))
        .await?
        .ok_or_else(|| ApiError::not_found("no such person"))?;
    if controls(st, auth, &person) {
        return Ok(person);
    }
    auth.deny(st, &format!("student password of person {id}"), Vec::new())
        .await;
    Err(ApiError::forbidden(
        "You can't set this student's password: they are in none of your classes. Ask your administrator.",
    )
    .with_reason(super::reason::NO_CONTROL))
}

async fn info(st: &Shared, auth: &Authed, id: i64) -> Result<Value, ApiError> {
    let school = auth.school();
    let info = st
        .db(move |s| s.students().student_secret(school, id))
        .await?;
    Ok(match info {
        Some(i) => json!({ "kind": i.kind, "set_by": i.set_by, "set_at": i.set_at }),
        None => json!({ "kind": null }),
    })
}

/// `GET /people/{id}/sign-in`: whether the student has a password, of
/// which kind, set by whom and when.
pub async fn get(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    student(&st, &auth, id).await?;
    Ok(Json(info(&st, &auth, id).await?))
}

/// `PUT /people/{id}/sign-in`: sets the student's picture or text password,
/// replacing the one before.
pub async fn put(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<StudentSecret>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    let person = student(&st, &auth, id).await?;
    let JsonBody(secret) = body?;
    secret
        .check()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (school, by, kind) = (auth.school(), auth.username().to_string(), secret.kind());
    st.db(move |s| s.students().set_student_secret(school, id, &secret, &by))
        .await?;
    let mut entry = auth.audit_entry(&st, "student.password.set", "ok");
    entry.detail = format!("{} ({kind})", person.display_name);
    st.audit(entry).await;
    Ok(Json(info(&st, &auth, id).await?))
}

/// `DELETE /people/{id}/sign-in`: removes it (the student cannot sign in
/// until a new one is set).
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let person = student(&st, &auth, id).await?;
    let school = auth.school();
    if !st
        .db(move |s| s.students().clear_student_secret(school, id))
        .await?
    {
        return Err(ApiError::not_found(
            "This student has no password to reset.",
        ));
    }
    let mut entry = auth.audit_entry(&st, "student.password.reset", "ok");
    entry.detail = person.display_name;
    st.audit(entry).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /sign-in/pictures`: the picture grid, in order, for those who set
/// picture passwords.
pub async fn pictures(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let list: Vec<Value> = PICTURES
        .iter()
        .map(|(picture, name)| json!({ "picture": picture, "name": name }))
        .collect();
    Ok(Json(json!({ "pictures": list })))
}
