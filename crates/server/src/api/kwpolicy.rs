//! Keyword libraries and their assignment to groups (`/keywords/libraries`,
//! `/keywords/assignments`), and the older single-library routes
//! (`/keywords`, `/keywords/csv`), which now read and write the school's own
//! library.
//!
//! Everything needs `keywords.manage`, checked before the body or query is
//! read. Enabling, disabling or changing the actions of a library for a
//! group also needs control of that group (Entire Network: control of
//! Entire Network), as changing the group's settings does; deleting a
//! library needs control of every group it is assigned to.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_keywords::Library;
use lectern_store::kwpolicy::{KeywordAssignment, KeywordLibraryRow};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::delegation::{check, Change};
use super::{ApiError, JsonBody};
use crate::keywords::{save_library, Save};
use crate::state::Shared;

/// Largest CSV upload.
pub const MAX_CSV_BYTES: usize = 1024 * 1024;

const ACTIONS: [&str; 4] = ["log", "screenshot", "alert", "lock"];

async fn audit(st: &Shared, auth: &Authed, action: &str, detail: String) {
    st.audit(lectern_store::NewAudit {
        detail,
        ..auth.audit_entry(st, action, "ok")
    })
    .await;
}

fn library_json(st: &Shared, school: lectern_store::SchoolId, row: &KeywordLibraryRow) -> Value {
    let catalog = st.keywords.catalog(school);
    let terms = catalog.libs.get(&row.id).map_or(0, |e| e.library.len());
    let assignments: Vec<&KeywordAssignment> = catalog
        .assignments
        .iter()
        .filter(|a| a.library_id == row.id)
        .collect();
    json!({
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "source": row.source,
        "read_only": row.kind == "default",
        "terms": terms,
        "updated_by": row.updated_by,
        "updated_at": row.updated_at,
        "assignments": assignments,
    })
}

/// A stored library, or 404.
fn entry(
    st: &Shared,
    school: lectern_store::SchoolId,
    id: i64,
) -> Result<std::sync::Arc<crate::keywords::LibEntry>, ApiError> {
    st.keywords
        .catalog(school)
        .libs
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no library {id}")))
}

/// `GET /keywords/libraries`: every library with its assignments, and the
/// groups it can be assigned to.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let catalog = st.keywords.catalog(auth.school());
    let libs: Vec<Value> = catalog
        .libs
        .values()
        .map(|e| library_json(&st, auth.school(), &e.row))
        .collect();
    let school = auth.school();
    let groups: Vec<Value> = st
        .db(move |s| s.list_groups(school))
        .await?
        .into_iter()
        .map(|g| json!({"id": g.group.id, "name": g.group.name, "kind": g.group.kind}))
        .collect();
    Ok(Json(json!({
        "libraries": libs,
        "groups": groups,
        "actions": ACTIONS,
        "school_actions": (1..=5).map(|s| crate::keywords::action_for(&st, school, s)).collect::<Vec<_>>(),
    })))
}

/// `GET /keywords/libraries/{id}`: a library with its terms.
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let e = entry(&st, auth.school(), id)?;
    let mut v = library_json(&st, auth.school(), &e.row);
    v["library"] = serde_json::to_value(&*e.library).map_err(ApiError::internal)?;
    Ok(Json(v))
}

/// Body of `POST /keywords/libraries`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLibrary {
    name: String,
    /// Copy this library's terms.
    copy_from: Option<i64>,
    /// Or these.
    library: Option<Library>,
}

/// `POST /keywords/libraries`: a new library of the school's own, empty,
/// copied from another (the default too) or with the terms given.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewLibrary>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let JsonBody(b) = body?;
    let (lib, source) = match (b.copy_from, b.library) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give copy_from or library, not both"))
        }
        (Some(from), None) => {
            let e = entry(&st, auth.school(), from)?;
            (
                (*e.library).clone(),
                Some(format!("copy of {}", e.row.name)),
            )
        }
        (None, lib) => (lib.unwrap_or_default(), None),
    };
    let what = Save::Create {
        kind: "own",
        source,
    };
    let row = save_library(
        &st,
        auth.school(),
        auth.username(),
        what,
        &b.name,
        Some(&lib),
    )
    .await?;
    let detail = format!("{} ({}): {} terms", row.name, row.id, lib.len());
    audit(&st, &auth, "keywords.library.create", detail).await;
    Ok((
        StatusCode::CREATED,
        Json(library_json(&st, auth.school(), &row)),
    ))
}

/// Query of `POST /keywords/libraries/import`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    name: Option<String>,
    file: Option<String>,
}

/// Checks an uploaded file's name: a plain `*.csv` name of at most 120
/// characters, no folders, no control or bidi characters, not hidden.
pub fn check_file_name(file: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("file name {file:?} refused: {why}"));
    if file.is_empty() || file.chars().count() > 120 {
        return Err(bad("it must be 1 to 120 characters"));
    }
    if file.contains(['/', '\\', ':']) || file.contains("..") {
        return Err(bad("it names a folder"));
    }
    if file.chars().any(|c| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }) {
        return Err(bad("it holds control or direction characters"));
    }
    if file.starts_with('.') || !file.to_ascii_lowercase().ends_with(".csv") {
        return Err(bad("it must be a .csv file"));
    }
    Ok(file.to_string())
}

/// `POST /keywords/libraries/import?name=&file=` with a CSV body
/// (`term,category,severity,match,exceptions`): an imported pack. At most
/// 1 MiB and 10,000 terms; a bad name, file name or row is a 400 naming it,
/// and nothing is stored.
pub async fn import(
    State(st): State<Shared>,
    auth: Authed,
    q: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let file = check_file_name(q.file.as_deref().unwrap_or("upload.csv"))?;
    let name = q
        .name
        .unwrap_or_else(|| file.trim_end_matches(".csv").to_string());
    let lib = parse_csv(&body)?;
    let what = Save::Create {
        kind: "imported",
        source: Some(file.clone()),
    };
    let row = save_library(&st, auth.school(), auth.username(), what, &name, Some(&lib)).await?;
    let detail = format!("{} ({}) from {file}: {} terms", row.name, row.id, lib.len());
    audit(&st, &auth, "keywords.library.import", detail).await;
    Ok((
        StatusCode::CREATED,
        Json(library_json(&st, auth.school(), &row)),
    ))
}

fn parse_csv(body: &[u8]) -> Result<Library, ApiError> {
    if body.len() > MAX_CSV_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a keyword CSV is at most {MAX_CSV_BYTES} bytes"),
        ));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the CSV must be UTF-8"))?;
    let lib = Library::from_csv(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if lib.terms.len() > crate::keywords::MAX_TERMS {
        return Err(ApiError::bad_request(format!(
            "a library holds at most {} terms; this file has {}",
            crate::keywords::MAX_TERMS,
            lib.terms.len()
        )));
    }
    Ok(lib)
}

/// Body of `PUT /keywords/libraries/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryPatch {
    name: Option<String>,
    library: Option<Library>,
}

fn not_default(e: &crate::keywords::LibEntry) -> Result<(), ApiError> {
    if e.row.kind == "default" {
        return Err(ApiError::bad_request(
            "the built-in default library cannot be changed; copy it to make one of your own",
        ));
    }
    Ok(())
}

/// `PUT /keywords/libraries/{id}`: renames it and/or replaces its terms.
pub async fn update(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<LibraryPatch>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let JsonBody(b) = body?;
    let e = entry(&st, auth.school(), id)?;
    not_default(&e)?;
    let name = b.name.unwrap_or_else(|| e.row.name.clone());
    let row = save_library(
        &st,
        auth.school(),
        auth.username(),
        Save::Update(id),
        &name,
        b.library.as_ref(),
    )
    .await?;
    let detail = format!(
        "{} ({id}): {}",
        row.name,
        match &b.library {
            Some(l) => format!("{} terms", l.len()),
            None => format!("renamed from {:?}", e.row.name),
        }
    );
    audit(&st, &auth, "keywords.library.update", detail).await;
    Ok(Json(library_json(&st, auth.school(), &row)))
}

/// `PUT /keywords/libraries/{id}/csv`: replaces its terms from a CSV.
pub async fn put_csv(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let e = entry(&st, auth.school(), id)?;
    not_default(&e)?;
    let lib = parse_csv(&body)?;
    let row = save_library(
        &st,
        auth.school(),
        auth.username(),
        Save::Update(id),
        &e.row.name,
        Some(&lib),
    )
    .await?;
    let detail = format!("{} ({id}): {} terms (CSV import)", row.name, lib.len());
    audit(&st, &auth, "keywords.library.update", detail).await;
    Ok(Json(library_json(&st, auth.school(), &row)))
}

/// `GET /keywords/libraries/{id}/csv`: the library as CSV.
pub async fn export(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let e = entry(&st, auth.school(), id)?;
    Ok(csv_download(
        &format!("keywords-{id}.csv"),
        e.library.to_csv(),
    ))
}

fn csv_download(file: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The groups a library is assigned to.
fn groups_of(st: &Shared, school: lectern_store::SchoolId, library: i64) -> Vec<i64> {
    st.keywords
        .catalog(school)
        .assignments
        .iter()
        .filter(|a| a.library_id == library)
        .map(|a| a.group_id)
        .collect()
}

/// `DELETE /keywords/libraries/{id}`: not the default; needs control of
/// every group it is assigned to (deleting takes it off their members).
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let e = entry(&st, auth.school(), id)?;
    if e.row.kind == "default" {
        return Err(ApiError::bad_request(
            "the built-in default library cannot be deleted; disable it for a group instead",
        ));
    }
    let c = Change::begin(&st, &auth).await;
    for g in groups_of(&st, auth.school(), id) {
        let what = format!("keywords.library.delete {id} (assigned to group {g})");
        check(&st, &auth, &what, c.granter().may_control_group(Some(g))).await?;
    }
    let school = auth.school();
    if !st
        .db(move |s| s.kwpolicy().delete_keyword_library(school, id))
        .await?
    {
        return Err(ApiError::not_found(format!("no library {id}")));
    }
    crate::keywords::changed(&st, school).await?;
    drop(c);
    audit(
        &st,
        &auth,
        "keywords.library.delete",
        format!("{} ({id})", e.row.name),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `PUT /keywords/assignments`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentBody {
    library_id: i64,
    group_id: i64,
    /// Default true; false turns the library off for the group's members.
    enabled: Option<bool>,
    /// Five of `log`/`screenshot`/`alert`/`lock` (severities 1–5); absent
    /// or null follows the school's `keyword_actions`.
    actions: Option<Vec<String>>,
}

fn check_actions(actions: &Option<Vec<String>>) -> Result<(), ApiError> {
    let Some(a) = actions else { return Ok(()) };
    if a.len() != 5 || a.iter().any(|x| !ACTIONS.contains(&x.as_str())) {
        return Err(ApiError::bad_request(
            "actions are exactly five (severities 1 to 5) of log, screenshot, alert, lock",
        ));
    }
    Ok(())
}

/// `PUT /keywords/assignments`: enables or disables a library for a group
/// with its actions (replacing that library's assignment to that group).
pub async fn assign(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<AssignmentBody>, ApiError>,
) -> Result<Json<KeywordAssignment>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let JsonBody(b) = body?;
    check_actions(&b.actions)?;
    let lib = entry(&st, auth.school(), b.library_id)?;
    let group = st
        .policies
        .of(auth.school())
        .group(b.group_id)
        .ok_or_else(|| ApiError::bad_request(format!("no group {}", b.group_id)))?;
    let c = Change::begin(&st, &auth).await;
    let what = format!(
        "keywords.assign library {} to group {}",
        b.library_id, b.group_id
    );
    check(
        &st,
        &auth,
        &what,
        c.granter().may_control_group(Some(b.group_id)),
    )
    .await?;
    let a = KeywordAssignment {
        id: 0,
        library_id: b.library_id,
        group_id: b.group_id,
        enabled: b.enabled.unwrap_or(true),
        actions: b.actions,
        set_by: auth.username().to_string(),
        set_at: 0,
    };
    let school = auth.school();
    let saved = st
        .db(move |s| s.kwpolicy().set_keyword_assignment(school, &a))
        .await?;
    crate::keywords::changed(&st, school).await?;
    drop(c);
    let detail = format!(
        "{} ({}) for {} ({}): {}, actions {}",
        lib.row.name,
        lib.row.id,
        group.group.name,
        group.group.id,
        if saved.enabled { "enabled" } else { "disabled" },
        saved
            .actions
            .as_ref()
            .map_or("the school's".to_string(), |a| a.join("/"))
    );
    audit(&st, &auth, "keywords.assign", detail).await;
    Ok(Json(saved))
}

/// `DELETE /keywords/assignments/{id}`: needs control of its group.
pub async fn unassign(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let a = st
        .keywords
        .catalog(auth.school())
        .assignments
        .iter()
        .find(|a| a.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no assignment {id}")))?;
    let c = Change::begin(&st, &auth).await;
    let what = format!("keywords.unassign {id} (group {})", a.group_id);
    check(
        &st,
        &auth,
        &what,
        c.granter().may_control_group(Some(a.group_id)),
    )
    .await?;
    let school = auth.school();
    st.db(move |s| s.kwpolicy().delete_keyword_assignment(school, id))
        .await?;
    crate::keywords::changed(&st, school).await?;
    drop(c);
    let detail = format!("library {} from group {}", a.library_id, a.group_id);
    audit(&st, &auth, "keywords.unassign", detail).await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- The single-library routes, kept for scripts and older consoles. ----

/// The school's own library: the oldest of kind `own`.
fn own(
    st: &Shared,
    school: lectern_store::SchoolId,
) -> Option<std::sync::Arc<crate::keywords::LibEntry>> {
    st.keywords
        .catalog(school)
        .libs
        .values()
        .find(|e| e.row.kind == "own")
        .cloned()
}

/// The library these routes show: the school's own, else the default.
fn in_force(st: &Shared, school: lectern_store::SchoolId) -> Library {
    own(st, school).map_or_else(
        || (*crate::keywords::default_library()).clone(),
        |e| (*e.library).clone(),
    )
}

/// `GET /keywords`: the school's own library (the default until it has one).
pub async fn library(State(st): State<Shared>, auth: Authed) -> Result<Json<Library>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    Ok(Json(in_force(&st, auth.school())))
}

/// `GET /keywords/csv`.
pub async fn library_csv(State(st): State<Shared>, auth: Authed) -> Result<Response, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    Ok(csv_download(
        "keywords.csv",
        in_force(&st, auth.school()).to_csv(),
    ))
}

/// Writes the school's own library. A school without one gets "School
/// library", which takes over the default's assignments, so the terms given
/// replace the library in force as these routes always did.
async fn install(
    st: &Shared,
    auth: &Authed,
    lib: Library,
    how: &str,
) -> Result<StatusCode, ApiError> {
    let terms = lib.terms.len();
    match own(st, auth.school()) {
        Some(e) => {
            save_library(
                st,
                auth.school(),
                auth.username(),
                Save::Update(e.row.id),
                &e.row.name,
                Some(&lib),
            )
            .await?;
        }
        None => {
            let what = Save::Create {
                kind: "own",
                source: None,
            };
            let row = save_library(
                st,
                auth.school(),
                auth.username(),
                what,
                "School library",
                Some(&lib),
            )
            .await?;
            take_over_default(st, auth, row.id).await?;
        }
    }
    audit(
        st,
        auth,
        "keywords.update",
        format!("{terms} terms ({how})"),
    )
    .await;
    Ok(StatusCode::OK)
}

/// Moves the default library's assignments to library `to`.
async fn take_over_default(st: &Shared, auth: &Authed, to: i64) -> Result<(), ApiError> {
    let catalog = st.keywords.catalog(auth.school());
    let Some(default) = catalog.libs.values().find(|e| e.row.kind == "default") else {
        return Ok(());
    };
    let moved: Vec<KeywordAssignment> = catalog
        .assignments
        .iter()
        .filter(|a| a.library_id == default.row.id)
        .cloned()
        .collect();
    let school = auth.school();
    let by = auth.username().to_string();
    st.db(move |s| {
        let k = s.kwpolicy();
        for a in moved {
            k.delete_keyword_assignment(school, a.id)?;
            k.set_keyword_assignment(
                school,
                &KeywordAssignment {
                    library_id: to,
                    set_by: by.clone(),
                    ..a
                },
            )?;
        }
        Ok(())
    })
    .await?;
    crate::keywords::changed(st, school).await
}

/// `PUT /keywords` with the library as JSON.
pub async fn put_library(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let lib: Library = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad library: {e}")))?;
    install(&st, &auth, lib, "JSON").await
}

/// `PUT /keywords/csv` with the library as CSV.
pub async fn put_library_csv(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    let lib = parse_csv(&body)?;
    install(&st, &auth, lib, "CSV import").await
}

/// The library (id, name) of each of these violations that has one.
pub async fn libraries_of(
    st: &Shared,
    school: lectern_store::SchoolId,
    ids: Vec<i64>,
) -> Result<HashMap<i64, (i64, String)>, ApiError> {
    st.db(move |s| s.kwpolicy().violation_libraries(school, &ids))
        .await
}
