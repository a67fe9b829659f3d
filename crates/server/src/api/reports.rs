//! `/reports`: scheduled report definitions, runs and their CSV files.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_store::ReportDef;
use serde::Serialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::ApiError;
use crate::reports;
use crate::state::Shared;

/// A definition with its next run.
#[derive(Serialize)]
pub struct ReportView {
    #[serde(flatten)]
    r: ReportDef,
    next_run: i64,
}

fn view(r: ReportDef) -> ReportView {
    let after = r.last_run.unwrap_or_else(lectern_store::now_ms);
    let next_run = reports::parse_schedule(&r.schedule).map_or(0, |s| {
        reports::next_run(&s, after.max(lectern_store::now_ms() - 60_000))
    });
    ReportView { r, next_run }
}

/// Whether the caller may see and manage `r`: administrators see every
/// report; others only their own (a report shows what its creator may see).
fn owns(auth: &Authed, r: &ReportDef) -> bool {
    auth.rights.all || r.created_by.eq_ignore_ascii_case(auth.username())
}

/// `GET /reports`: the caller's own (every one, for administrators).
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<ReportView>>, ApiError> {
    auth.require(&st, "reports.manage").await?;
    let school = auth.school();
    Ok(Json(
        st.db(move |s| s.reports(school))
            .await?
            .into_iter()
            .filter(|r| owns(&auth, r))
            .map(view)
            .collect(),
    ))
}

/// `POST /reports`: the caller needs the rights to the report's data too; the
/// report will run with the caller's rights as they are at each run.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<ReportView>), ApiError> {
    auth.require(&st, "reports.manage").await?;
    let mut r: ReportDef = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad report: {e}")))?;
    for f in reports::required_features(r.kind) {
        auth.require(&st, f).await?;
    }
    reports::validate(&r).map_err(ApiError::bad_request)?;
    if let Some(g) = r.group_id {
        if st.policies.of(auth.school()).group(g).is_none() {
            return Err(ApiError::bad_request(format!("no group {g}")));
        }
    }
    r.created_by = auth.username().to_string();
    let school = auth.school();
    let saved = st.db(move |s| s.create_report(school, &r)).await?;
    st.audit(lectern_store::NewAudit {
        detail: format!(
            "{} ({}, {})",
            saved.name,
            saved.kind.as_str(),
            saved.schedule
        ),
        ..st.audit_entry(
            school,
            auth.username(),
            auth.address.clone(),
            "report.create",
            "ok",
        )
    })
    .await;
    Ok((StatusCode::CREATED, Json(view(saved))))
}

async fn find(st: &Shared, auth: &Authed, id: i64) -> Result<ReportDef, ApiError> {
    let school = auth.school();
    st.db(move |s| s.reports(school))
        .await?
        .into_iter()
        .find(|r| r.id == id && owns(auth, r))
        .ok_or_else(|| ApiError::not_found(format!("no report {id}")))
}

/// `DELETE /reports/{id}`: the definition and its runs.
pub async fn delete(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "reports.manage").await?;
    find(&st, &auth, id).await?;
    let school = auth.school();
    st.db(move |s| s.delete_report(school, id)).await?;
    let _ = tokio::fs::remove_dir_all(reports::dir(&st, id)).await;
    st.audit(lectern_store::NewAudit {
        detail: format!("report {id}"),
        ..st.audit_entry(
            school,
            auth.username(),
            auth.address.clone(),
            "report.delete",
            "ok",
        )
    })
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /reports/{id}/run`: runs it now, with its creator's current rights.
pub async fn run(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "reports.manage").await?;
    let r = find(&st, &auth, id).await?;
    let (file, rows) = reports::run(&st, auth.school(), &r)
        .await
        .map_err(|e| match e {
            reports::RunError::NotAllowed { message, feature } => {
                let e = ApiError::forbidden(message)
                    .with_reason(super::reason::REPORT_CREATOR_LACKS_RIGHT);
                match feature {
                    Some(f) => e.with_feature(f),
                    None => e,
                }
            }
            reports::RunError::Failed(e) => ApiError::internal(format!("{e:#}")),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"file": file, "rows": rows})),
    ))
}

/// `GET /reports/{id}/runs`: newest first.
pub async fn runs(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Value>>, ApiError> {
    auth.require(&st, "reports.manage").await?;
    find(&st, &auth, id).await?;
    let dir = reports::dir(&st, id);
    let mut out = Vec::new();
    if let Ok(mut rd) = tokio::fs::read_dir(&dir).await {
        while let Ok(Some(e)) = rd.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if !reports::is_run_file(&name) {
                continue;
            }
            let meta = e.metadata().await.ok();
            let at = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            let rows = tokio::fs::read_to_string(e.path())
                .await
                .map_or(0, |t| t.lines().count().saturating_sub(1));
            out.push(json!({"file": name, "at": at, "rows": rows}));
        }
    }
    out.sort_by(|a, b| b["file"].as_str().cmp(&a["file"].as_str()));
    Ok(Json(out))
}

/// `GET /reports/{id}/runs/{file}`: the CSV.
pub async fn download(
    State(st): State<Shared>,
    auth: Authed,
    Path((id, file)): Path<(i64, String)>,
) -> Result<Response, ApiError> {
    auth.require(&st, "reports.manage").await?;
    find(&st, &auth, id).await?;
    if !reports::is_run_file(&file) {
        return Err(ApiError::not_found(format!("no run {file:?}")));
    }
    let bytes = tokio::fs::read(reports::dir(&st, id).join(&file))
        .await
        .map_err(|_| ApiError::not_found(format!("no run {file:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"report-{id}-{file}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
