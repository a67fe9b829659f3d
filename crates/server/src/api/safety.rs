//! Violations (with their screenshots) and the keyword library.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
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
    severity: Option<u8>,
    since: Option<i64>,
    until: Option<i64>,
    q: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
    /// Review statuses, comma-separated.
    status: Option<String>,
    /// `mine`, `unassigned` or a console user name.
    assignee: Option<String>,
    /// `true`: only violations found by a retrospective scan; `false`: only live ones.
    retrospective: Option<bool>,
}

/// A violation with its device's name and its case (status, assignee, notes).
#[derive(Serialize)]
pub struct ViolationView {
    #[serde(flatten)]
    v: Violation,
    hostname: String,
    /// The keyword library the term came from.
    library_id: Option<i64>,
    /// Its name when the violation was recorded.
    library: Option<String>,
    #[serde(flatten)]
    case: Option<lectern_store::review::CaseState>,
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
    if p.severity.is_some_and(|s| !(1..=5).contains(&s)) {
        return Err(ApiError::bad_request("severity must be 1 to 5"));
    }
    let case = super::review::case_filter(&auth, p.status.as_deref(), p.assignee.as_deref())?;
    let hosts = scope(&st, &auth, p.device, p.group).await?;
    let filter = ViolationFilter {
        devices: Some(hosts.keys().copied().collect()),
        user: p.user,
        category: p.category,
        min_severity: p.min_severity,
        severity: p.severity,
        since: p.since,
        until: p.until,
        text: p.q.filter(|q| !q.is_empty()),
        case,
        retrospective: p.retrospective,
        limit,
    };
    let school = auth.school();
    let rows = st.db(move |s| s.violations(school, &filter)).await?;
    let mut cases =
        super::review::states(&st, auth.school(), rows.iter().map(|v| v.id).collect()).await?;
    if csv {
        let out = rows
            .into_iter()
            .map(|v| {
                let case = cases.remove(&v.id);
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
                    case.as_ref()
                        .map(|c| c.status.as_str().to_string())
                        .unwrap_or_default(),
                    case.and_then(|c| c.assignee).unwrap_or_default(),
                    if v.retrospective {
                        "retrospective"
                    } else {
                        "live"
                    }
                    .to_string(),
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
                "status",
                "assignee",
                "found",
            ],
            out,
        );
    }
    let libs =
        super::kwpolicy::libraries_of(&st, auth.school(), rows.iter().map(|v| v.id).collect())
            .await?;
    let views: Vec<ViolationView> = rows
        .into_iter()
        .map(|v| {
            let lib = libs.get(&v.id).cloned();
            ViolationView {
                hostname: hosts.get(&v.device_id).cloned().unwrap_or_default(),
                library_id: lib.as_ref().map(|l| l.0),
                library: lib.map(|l| l.1),
                case: cases.remove(&v.id),
                v,
            }
        })
        .collect();
    Ok(Json(views).into_response())
}

/// One violation the caller may see.
async fn visible_violation(st: &Shared, auth: &Authed, id: i64) -> Result<ViolationView, ApiError> {
    auth.require(st, "activity.view").await?;
    let school = auth.school();
    let v = st
        .db(move |s| s.violation(school, id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no violation {id}")))?;
    let hosts = scope(st, auth, None, None).await?;
    let hostname = hosts
        .get(&v.device_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no violation {id}")))?;
    let lib = super::kwpolicy::libraries_of(st, auth.school(), vec![id])
        .await?
        .remove(&id);
    let case = super::review::states(st, auth.school(), vec![id])
        .await?
        .remove(&id);
    Ok(ViolationView {
        v,
        hostname,
        library_id: lib.as_ref().map(|l| l.0),
        library: lib.map(|l| l.1),
        case,
    })
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
