//! `GET /activity`: the activity log (sites visited, apps used, logins, power),
//! limited to the devices the caller may see; JSON or CSV.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_store::ActivityFilter;
use serde::Deserialize;

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
    kind: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    q: Option<String>,
    limit: Option<i64>,
    format: Option<String>,
}

/// The devices a log query covers: those the caller may see, narrowed to one
/// device or one group's members. Returns ids with their host names.
pub async fn scope(
    st: &Shared,
    auth: &Authed,
    device: Option<i64>,
    group: Option<i64>,
) -> Result<HashMap<i64, String>, ApiError> {
    let visible = super::devices::visible(st, auth).await?;
    if let Some(d) = device {
        if !visible.iter().any(|(v, _)| v.id == d) {
            return Err(ApiError::not_found(format!("no device {d}")));
        }
    }
    if let Some(g) = group {
        if st.policies.of(auth.school()).group(g).is_none() {
            return Err(ApiError::not_found(format!("no group {g}")));
        }
    }
    Ok(visible
        .into_iter()
        .filter(|(v, _)| device.is_none_or(|d| d == v.id))
        .filter(|(v, _)| {
            group.is_none_or(|g| {
                st.device_groups(auth.school(), v.id, &v.hostname, v.state.user.as_deref())
                    .contains(&g)
            })
        })
        .map(|(v, _)| (v.id, v.hostname))
        .collect())
}

/// Whether the caller asked for CSV (`format=csv`); anything but json/csv is refused.
pub fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(f) => Err(ApiError::bad_request(format!(
            "format must be json or csv, not {f:?}"
        ))),
    }
}

/// A CSV download named `name`.
pub fn csv_response(
    name: &str,
    header_row: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<Response, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header_row).map_err(ApiError::internal)?;
    for r in rows {
        let r: Vec<String> = r.into_iter().map(crate::reports::safe_cell).collect();
        w.write_record(&r).map_err(ApiError::internal)?;
    }
    let body = w.into_inner().map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Milliseconds as an RFC 3339 UTC time, for CSV files.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `GET /activity?device=&group=&user=&kind=&since=&until=&q=&limit=&format=`: newest first.
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
    if let Some(k) = &p.kind {
        if !lectern_proto::ACTIVITY_KINDS.contains(&k.as_str()) && k != "dropped" {
            return Err(ApiError::bad_request(format!(
                "kind must be one of {:?}",
                lectern_proto::ACTIVITY_KINDS
            )));
        }
    }
    let hosts = scope(&st, &auth, p.device, p.group).await?;
    let filter = ActivityFilter {
        devices: Some(hosts.keys().copied().collect()),
        user: p.user,
        kind: p.kind,
        since: p.since,
        until: p.until,
        text: p.q.filter(|q| !q.is_empty()),
        limit,
    };
    let school = auth.school();
    let rows = st.db(move |s| s.activity(school, &filter)).await?;
    if !csv {
        return Ok(Json(rows).into_response());
    }
    let out = rows
        .into_iter()
        .map(|r| {
            vec![
                iso(r.at),
                hosts.get(&r.device_id).cloned().unwrap_or_default(),
                r.user.unwrap_or_default(),
                r.kind,
                r.url.unwrap_or_default(),
                r.title.unwrap_or_default(),
                r.app.unwrap_or_default(),
            ]
        })
        .collect();
    csv_response(
        "activity.csv",
        &["time", "device", "user", "kind", "url", "title", "app"],
        out,
    )
}
