//! Violations (with their screenshots) and the keyword library.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_keywords::Library;
use lectern_store::{Violation, ViolationFilter};
use serde::{Deserialize, Serialize};

use super::activity::{csv_response, iso, scope, wants_csv};
use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// Filters, all optional.
// A misspelt filter is refused (naming it), never silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    device: Option<i64>,
    group: Option<i64>,
    user: Option<String>,
    category: Option<String>,
    min_severity: Option<u8>,
    since: Option<i64>,
    until: Option<i64>,
    q: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
}

/// A violation with its device's name.
#[derive(Serialize)]
pub struct ViolationView {
    #[serde(flatten)]
    v: Violation,
    hostname: String,
}

/// `GET /violations?…`: newest first, JSON or CSV.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
    Query(p): Query<Params>,
) -> Result<Response, ApiError> {
    auth.require(&st, "activity.view").await?;
    let csv = wants_csv(p.format.as_deref())?;
    let limit = p.limit.unwrap_or(if csv { 10_000 } else { 200 });
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 10000"));
    }
    if p.min_severity.is_some_and(|s| !(1..=5).contains(&s)) {
        return Err(ApiError::bad_request("min_severity must be 1 to 5"));
    }
    let hosts = scope(&st, &auth, p.device, p.group).await?;
    let filter = ViolationFilter {
        devices: Some(hosts.keys().copied().collect()),
        user: p.user,
        category: p.category,
        min_severity: p.min_severity,
        since: p.since,
        until: p.until,
        text: p.q.filter(|q| !q.is_empty()),
        limit,
    };
    let school = st.school.id;
    let rows = st.db(move |s| s.violations(school, &filter)).await?;
    if csv {
        let out = rows
            .into_iter()
            .map(|v| {
                vec![
                    iso(v.at),
                    hosts.get(&v.device_id).cloned().unwrap_or_default(),
                    v.user.unwrap_or_default(),
                    v.category,
                    v.severity.to_string(),
                    v.term,
                    v.matched,
                    v.context,
                    v.source,
                    v.action,
                    v.screenshots.to_string(),
                ]
            })
            .collect();
        return csv_response(
            "violations.csv",
            &[
                "time",
                "device",
                "user",
                "category",
                "severity",
                "term",
                "matched",
                "context",
                "source",
                "action",
                "screenshots",
            ],
            out,
        );
    }
    let views: Vec<ViolationView> = rows
        .into_iter()
        .map(|v| ViolationView {
            hostname: hosts.get(&v.device_id).cloned().unwrap_or_default(),
            v,
        })
        .collect();
    Ok(Json(views).into_response())
}

/// One violation the caller may see.
async fn visible_violation(st: &Shared, auth: &Authed, id: i64) -> Result<ViolationView, ApiError> {
    auth.require(st, "activity.view").await?;
    let school = st.school.id;
    let v = st
        .db(move |s| s.violation(school, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no violation {id}")))?;
    let hosts = scope(st, auth, None, None).await?;
    let hostname = hosts
        .get(&v.device_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no violation {id}")))?;
    Ok(ViolationView { v, hostname })
}

/// `GET /violations/{id}`.
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<ViolationView>, ApiError> {
    Ok(Json(visible_violation(&st, &auth, id).await?))
}

/// `GET /violations/{id}/screenshots/{n}`: a JPEG, oldest first.
pub async fn screenshot(
    State(st): State<Shared>,
    auth: Authed,
    Path((id, n)): Path<(i64, u32)>,
) -> Result<Response, ApiError> {
    let v = visible_violation(&st, &auth, id).await?;
    if n >= v.v.screenshots {
        return Err(ApiError::not_found(format!(
            "violation {id} has {} screenshots",
            v.v.screenshots
        )));
    }
    // The path is built from integers only: nothing from the request reaches it as text.
    let path = st
        .data_dir
        .join("evidence")
        .join(id.to_string())
        .join(format!("{n}.jpg"));
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found(format!("screenshot {n} of violation {id} is gone")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

/// `GET /keywords`: the library in force.
pub async fn library(State(st): State<Shared>, auth: Authed) -> Result<Json<Library>, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    Ok(Json((*st.keywords.library()).clone()))
}

/// `GET /keywords/csv`.
pub async fn library_csv(State(st): State<Shared>, auth: Authed) -> Result<Response, ApiError> {
    auth.require(&st, "keywords.manage").await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"keywords.csv\"".to_string(),
            ),
        ],
        st.keywords.library().to_csv(),
    )
        .into_response())
}

async fn install(
    st: &Shared,
    auth: &Authed,
    lib: Library,
    how: &str,
) -> Result<StatusCode, ApiError> {
    let terms = lib.terms.len();
    st.keywords
        .replace(lib.clone())
        .map_err(ApiError::bad_request)?;
    let json = serde_json::to_string(&lib).map_err(ApiError::internal)?;
    let school = st.school.id;
    st.db(move |s| s.set_document(school, crate::keywords::DOCUMENT, &json))
        .await?;
    st.audit(lectern_store::NewAudit {
        detail: format!("{terms} terms ({how})"),
        ..st.audit_entry(
            auth.username(),
            auth.address.clone(),
            "keywords.update",
            "ok",
        )
    })
    .await;
    Ok(StatusCode::OK)
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
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the CSV must be UTF-8"))?;
    let lib = Library::from_csv(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    install(&st, &auth, lib, "CSV import").await
}
