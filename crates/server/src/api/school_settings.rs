//! The school's settings (`settings.manage`) and its backups (role admin).

use std::collections::BTreeMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_store::auditset::SettingRow;
use lectern_store::Role;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::Authed;
use super::ApiError;
use crate::settings::{self, Shown};
use crate::state::Shared;

/// The right the settings need.
pub const RIGHT: &str = "settings.manage";
/// Most settings one request changes (there are fewer; bounds the work).
const MAX_CHANGES: usize = 64;
/// The reason a non-administrator's backup request is refused with.
pub const ADMIN_ONLY: &str = "admin_only";

#[derive(Serialize)]
/// What the settings page shows.
pub struct SettingsPage {
    /// Every setting, in the page's order.
    settings: Vec<Shown>,
}

/// A change: values to set and keys to reset to the server's value.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Change {
    #[serde(default)]
    values: BTreeMap<String, Value>,
    #[serde(default)]
    reset: Vec<String>,
}

async fn page(
    st: &Shared,
    school: lectern_store::SchoolId,
) -> Result<Json<SettingsPage>, ApiError> {
    let rows = st.db(move |s| s.auditset().school_settings(school)).await?;
    Ok(Json(SettingsPage {
        settings: settings::shown(&st.config, &rows),
    }))
}

/// `GET /school/settings`: every setting with its value in force, the
/// server's value and where the value comes from.
pub async fn get(State(st): State<Shared>, auth: Authed) -> Result<Json<SettingsPage>, ApiError> {
    auth.require(&st, RIGHT).await?;
    page(&st, auth.school()).await
}

/// Per-field errors: 400 with `"fields": {key: message}`; nothing is saved.
fn field_errors(errors: BTreeMap<String, String>) -> Response {
    let list = errors
        .iter()
        .map(|(k, m)| match settings::def(k) {
            Some(d) => format!("{} {m}", d.label),
            None => format!("{k:?} {m}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    let body = json!({
        "error": format!("Not saved: {list}."),
        "reason": "invalid_settings",
        "fields": errors,
    });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Checks a change; every bad field is named.
fn check(c: &Change) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    if c.values.len() + c.reset.len() > MAX_CHANGES {
        errors.insert("values".into(), "has too many settings".into());
        return errors;
    }
    for (k, v) in &c.values {
        match settings::def(k) {
            None => errors.insert(k.clone(), "is not a setting".into()),
            Some(d) => settings::check(d, v)
                .err()
                .and_then(|m| errors.insert(k.clone(), m)),
        };
    }
    for k in &c.reset {
        if settings::def(k).is_none() {
            errors.insert(k.clone(), "is not a setting".into());
        } else if c.values.contains_key(k) {
            errors.insert(k.clone(), "cannot be both set and reset".into());
        }
    }
    errors
}

/// `PUT /school/settings` `{"values": {key: value}, "reset": [key]}`: sets
/// and resets settings for this school (all or nothing), audited with each
/// setting's value before and after, and applies them at once.
pub async fn put(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require(&st, RIGHT).await?;
    let change: Change = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad settings change: {e}")))?;
    let errors = check(&change);
    if !errors.is_empty() {
        return Ok(field_errors(errors));
    }
    let school = auth.school();
    let before = serde_json::to_value(&*st.settings.get(&st, school)).unwrap_or_default();
    let (user, now) = (auth.username().to_string(), lectern_store::now_ms());
    let rows: Vec<SettingRow> = change
        .values
        .iter()
        .map(|(k, v)| SettingRow {
            key: k.clone(),
            value: v.to_string(),
            set_by: user.clone(),
            set_at: now,
        })
        .collect();
    let reset = change.reset.clone();
    st.db(move |s| {
        let a = s.auditset();
        a.set_school_settings(school, &rows)?;
        for k in &reset {
            a.clear_school_setting(school, k)?;
        }
        Ok(())
    })
    .await?;
    let after = serde_json::to_value(&*settings::reload(&st, school).await?).unwrap_or_default();
    crate::cluster::announce(&st, school).await;
    audit_change(&st, &auth, &change, &before, &after).await;
    if change
        .values
        .keys()
        .chain(&change.reset)
        .any(|k| k.ends_with("_days"))
    {
        // Shorter retention applies now, not at the next hourly sweep.
        let st = st.clone();
        tokio::spawn(
            async move { crate::maintenance::retention(&st, lectern_store::now_ms()).await },
        );
    }
    Ok(page(&st, auth.school()).await?.into_response())
}

/// One audit entry naming each changed setting with its value before and
/// after (`settings.change`).
async fn audit_change(st: &Shared, auth: &Authed, c: &Change, before: &Value, after: &Value) {
    let changed: serde_json::Map<String, Value> = c
        .values
        .keys()
        .chain(&c.reset)
        .map(|k| {
            let reset = c.reset.contains(k);
            (
                k.clone(),
                json!({ "before": before[k], "after": after[k], "reset": reset }),
            )
        })
        .collect();
    let mut entry = auth.audit_entry(st, "settings.change", "ok");
    entry.detail = Value::Object(changed).to_string();
    st.audit(entry).await;
}

/// Refuses (403, audited) callers who are not administrators (backups hold
/// every account's password hash and all activity). The folder they see:
/// the server's backups on a server of one school (the whole database is
/// that school's); on a server of several, their school's own nightly
/// copies only (see `maintenance::nightly_backup`), never the whole
/// database, which holds the other schools too.
async fn backup_folder(
    st: &Shared,
    auth: &Authed,
    what: &str,
) -> Result<(std::path::PathBuf, &'static str), ApiError> {
    auth.require(st, RIGHT).await?;
    if auth.session.user.role != Role::Admin {
        auth.deny(st, &format!("backups: {what}"), Vec::new()).await;
        return Err(ApiError::forbidden(
            "You can't list or download backups: only administrators can. Ask your administrator.",
        )
        .with_reason(ADMIN_ONLY));
    }
    if st.db(|s| s.schools()).await?.len() > 1 {
        let dir = crate::maintenance::school_backup_dir(st, auth.school());
        return Ok((dir, "this school"));
    }
    Ok((crate::maintenance::backup_dir(st), "the whole server"))
}

/// Whether the backup at `path` may be shown to an administrator of
/// `school`: it holds that school alone. A whole-database copy written
/// while the server held several schools stays in the server's folder
/// after the others are gone, and holds their data: the operator's, never
/// a school's. (A school's own copies hold it alone.) Unreadable: no.
fn holds_only(path: &std::path::Path, school: lectern_store::SchoolId) -> bool {
    matches!(lectern_store::schools_in(path).as_deref(), Ok([only]) if *only == school)
}

/// A backup as listed.
#[derive(Serialize)]
struct BackupFile {
    name: String,
    size: u64,
    /// When it was written (ms since epoch).
    at: i64,
}

/// The backup files in `dir` that hold `school` alone, newest first.
fn backup_list(dir: &std::path::Path, school: lectern_store::SchoolId) -> Vec<BackupFile> {
    let mut v: Vec<BackupFile> = crate::maintenance::backups(dir)
        .into_iter()
        .filter(|p| holds_only(p, school))
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok()?;
            let at = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis() as i64;
            Some(BackupFile {
                name: p.file_name()?.to_str()?.to_string(),
                size: meta.len(),
                at,
            })
        })
        .collect();
    v.reverse();
    v
}

/// `GET /backups`: the backups, newest first (administrators only).
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Response, ApiError> {
    let (dir, holds) = backup_folder(&st, &auth, "list").await?;
    let school = auth.school();
    let files = tokio::task::spawn_blocking(move || backup_list(&dir, school))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "backups": files, "folder_holds": holds })).into_response())
}

/// `GET /backups/{file}`: one backup, by a name from the list (never a path),
/// streamed; administrators only, audited.
pub async fn download(
    State(st): State<Shared>,
    auth: Authed,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let (dir, _) = backup_folder(&st, &auth, "download").await?;
    let not_found = || ApiError::not_found(format!("no backup {file:?}"));
    // Only a name the folder listing gives: no separators, no `..`.
    if !crate::maintenance::is_backup_name(&file) {
        return Err(not_found());
    }
    let path = dir.join(&file);
    let (p, school) = (path.clone(), auth.school());
    let shown = tokio::task::spawn_blocking(move || holds_only(&p, school))
        .await
        .map_err(ApiError::internal)?;
    if !shown {
        return Err(not_found());
    }
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|_| not_found())?;
    let size = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let mut entry = auth.audit_entry(&st, "backup.download", "ok");
    entry.detail = format!("{file} ({size} bytes)");
    st.audit(entry).await;
    let body = Body::from_stream(file_pieces(f));
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.sqlite3".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        body,
    )
        .into_response())
}

/// `GET /school/export`: a copy of the database holding only the
/// caller's school (its accounts, devices, activity, settings…), on any
/// server, one school or many: what a school takes away from a shared
/// server. Administrators of that school only; audited. Written to a
/// private file under `exports/`, streamed, and deleted once sent (or when
/// the client goes).
pub async fn export(State(st): State<Shared>, auth: Authed) -> Result<Response, ApiError> {
    auth.require(&st, RIGHT).await?;
    if auth.session.user.role != Role::Admin {
        auth.deny(&st, "school export", Vec::new()).await;
        return Err(ApiError::forbidden(
            "You can't download this school's data: only administrators can. Ask your administrator.",
        )
        .with_reason(ADMIN_ONLY));
    }
    let school = auth.school();
    let dir = st.data_dir.join("exports");
    let path = crate::maintenance::new_backup_file(&dir, &format!("school-{school}"))
        .map_err(ApiError::internal)?;
    // Deleted when dropped: after the last piece, or if anything fails.
    let temp = tempfile::TempPath::try_from_path(path.clone()).map_err(ApiError::internal)?;
    let p = path.clone();
    let summary = st.db(move |s| s.export_school(school, &p)).await?;
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(ApiError::internal)?;
    let size = f.metadata().await.map(|m| m.len()).unwrap_or(0);
    let rows: u64 = summary.rows.iter().map(|(_, n)| n).sum();
    let mut entry = auth.audit_entry(&st, "school.export", "ok");
    entry.detail = format!("{size} bytes, {rows} rows");
    st.audit(entry).await;
    let name = format!(
        "lectern-school-{school}-{}.db",
        chrono::Local::now().format("%Y%m%d-%H%M%S")
    );
    let pieces = futures_util::StreamExt::map(file_pieces(f), move |piece| {
        // The stream owns the file's name until it ends.
        let _keep = &temp;
        piece
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.sqlite3".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(pieces),
    )
        .into_response())
}

/// A file read in pieces as the client takes them.
fn file_pieces(
    f: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(Some(f), |f| async move {
        let mut f = f?;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(f)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
