//! The audit log: a filtered, paged list and its CSV export.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use lectern_store::auditset::AuditFilter;
use lectern_store::{AuditEntry, AuditReader, SchoolId};
use serde::Deserialize;

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// Rows read from the store per piece of a CSV export.
const CSV_PAGE: i64 = 1000;
/// Most rows one CSV export holds (a narrower filter gets the rest).
pub const CSV_MAX_ROWS: i64 = 100_000;
/// The outcomes the filter accepts.
pub const OUTCOMES: &[&str] = &[
    "ok",
    "denied",
    "failed",
    "partial",
    "bad_credentials",
    "rate_limited",
];

// A misspelt filter is refused (naming it), never silently ignored.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    limit: Option<i64>,
    before: Option<i64>,
    user: Option<String>,
    action: Option<String>,
    device: Option<i64>,
    outcome: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    format: Option<String>,
}

/// The query checked: a filter (limit still unset) and whether CSV is wanted.
fn parse(uri: &Uri) -> Result<(AuditFilter, Option<i64>, bool), ApiError> {
    let Query(p) = Query::<Params>::try_from_uri(uri)
        .map_err(|e| ApiError::bad_request(format!("bad audit filter: {}", e.body_text())))?;
    let csv = super::activity::wants_csv(p.format.as_deref())?;
    let text = |name: &str, v: Option<String>| -> Result<Option<String>, ApiError> {
        match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() > 128 => Err(ApiError::bad_request(format!(
                "{name} must be at most 128 characters"
            ))),
            other => Ok(other),
        }
    };
    let outcome = text("outcome", p.outcome)?;
    if let Some(o) = &outcome {
        if !OUTCOMES.contains(&o.as_str()) {
            return Err(ApiError::bad_request(format!(
                "outcome must be one of {}",
                OUTCOMES.join(", ")
            )));
        }
    }
    for (name, v) in [("since", p.since), ("until", p.until)] {
        if v.is_some_and(|t| t < 0) {
            return Err(ApiError::bad_request(format!(
                "{name} must be a time in milliseconds since 1970"
            )));
        }
    }
    if let (Some(s), Some(u)) = (p.since, p.until) {
        if s >= u {
            return Err(ApiError::bad_request("since must be before until"));
        }
    }
    if p.device.is_some_and(|d| d <= 0) {
        return Err(ApiError::bad_request("device must be a device id"));
    }
    let filter = AuditFilter {
        actor: text("user", p.user)?,
        action: text("action", p.action)?,
        device: p.device,
        outcome,
        since: p.since,
        until: p.until,
        before: p.before,
        limit: 0,
    };
    Ok((filter, p.limit, csv))
}

/// What a non-administrator may read (see [`AuditReader`]); `None`: all.
async fn reader_for(st: &Shared, auth: &Authed) -> Result<Option<AuditReader>, ApiError> {
    if auth.rights.all {
        return Ok(None);
    }
    Ok(Some(AuditReader {
        username: auth.username().to_string(),
        devices: crate::scope::visible_devices(st, auth.school(), &auth.rights)
            .await?
            .into_iter()
            .collect(),
    }))
}

/// `GET /audit?user=&action=&device=&outcome=&since=&until=&limit=&before=&format=`:
/// newest first; page with `before` = the last id seen; `format=csv` exports
/// every matching entry (up to [`CSV_MAX_ROWS`]) as a streamed CSV file.
/// Administrators read everything; anyone else holding `audit.view` reads
/// what [`AuditReader`] allows them (entries about devices they may view,
/// and their own actions).
pub async fn list(State(st): State<Shared>, auth: Authed, uri: Uri) -> Result<Response, ApiError> {
    auth.require(&st, "audit.view").await?;
    let (mut filter, limit, csv) = parse(&uri)?;
    let reader = reader_for(&st, &auth).await?;
    let school = auth.school();
    if csv {
        if limit.is_some() {
            return Err(ApiError::bad_request(
                "a CSV export holds every matching entry: leave out limit",
            ));
        }
        return Ok(csv_export(st, school, filter, reader));
    }
    filter.limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&filter.limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let rows = st
        .db(move |s| s.auditset().audit_search(school, &filter, reader.as_ref()))
        .await?;
    Ok(Json(rows).into_response())
}

const CSV_HEADER: [&str; 9] = [
    "id", "time", "user", "address", "action", "detail", "devices", "command", "outcome",
];

/// Entries as CSV lines, every cell safe from spreadsheet formulas.
fn csv_lines(rows: &[AuditEntry], header: bool) -> Result<Bytes, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    if header {
        w.write_record(CSV_HEADER)?;
    }
    for e in rows {
        let devices = e
            .devices
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        let cells = [
            e.id.to_string(),
            super::activity::iso(e.at),
            e.actor.clone(),
            e.address.clone().unwrap_or_default(),
            e.action.clone(),
            e.detail.clone(),
            devices,
            e.command_id.map(|c| c.to_string()).unwrap_or_default(),
            e.outcome.clone(),
        ];
        w.write_record(cells.map(crate::reports::safe_cell))?;
    }
    Ok(Bytes::from(w.into_inner().map_err(|e| e.into_error())?))
}

/// Where a CSV export has got to.
struct Export {
    st: Shared,
    school: SchoolId,
    filter: AuditFilter,
    reader: Option<AuditReader>,
    written: i64,
    header: bool,
    done: bool,
}

/// The next piece of a CSV export: the header and the next page of rows,
/// read from the store as the client takes them (never the whole log in
/// memory).
async fn next_piece(mut x: Export) -> Option<(Result<Bytes, std::io::Error>, Export)> {
    if x.done {
        return None;
    }
    let mut f = x.filter.clone();
    f.limit = CSV_PAGE.min(CSV_MAX_ROWS - x.written);
    let (school, reader) = (x.school, x.reader.clone());
    let rows = if f.limit > 0 {
        match x
            .st
            .db(move |s| s.auditset().audit_search(school, &f, reader.as_ref()))
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                x.done = true;
                return Some((Err(std::io::Error::other(e.message)), x));
            }
        }
    } else {
        Vec::new()
    };
    x.written += rows.len() as i64;
    x.done = (rows.len() as i64) < CSV_PAGE || x.written >= CSV_MAX_ROWS;
    x.filter.before = rows.last().map(|e| e.id).or(x.filter.before);
    let piece = csv_lines(&rows, x.header).map_err(std::io::Error::other);
    x.header = false;
    Some((piece, x))
}

fn csv_export(
    st: Shared,
    school: SchoolId,
    filter: AuditFilter,
    reader: Option<AuditReader>,
) -> Response {
    let start = Export {
        st,
        school,
        filter,
        reader,
        written: 0,
        header: true,
        done: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(start, next_piece));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked_with_clear_errors() {
        let uri = |q: &str| format!("/audit?{q}").parse::<Uri>().unwrap();
        let err = |q: &str| parse(&uri(q)).err().map(|e| e.message).unwrap_or_default();
        assert!(err("outcome=maybe").contains("outcome must be one of ok, denied"));
        assert!(err("usr=ann").contains("usr"));
        assert!(err("since=5&until=5").contains("since must be before until"));
        assert!(err("device=abc").contains("device"));
        assert!(err("format=xml").contains("json or csv"));
        let (f, limit, csv) = parse(&uri("user=+ann+&action=&outcome=denied&format=csv")).unwrap();
        assert_eq!(f.actor.as_deref(), Some("ann"));
        assert_eq!(f.action, None);
        assert_eq!(f.outcome.as_deref(), Some("denied"));
        assert!(csv && limit.is_none());
    }

    #[test]
    fn csv_cells_cannot_run_as_formulas() {
        let e = AuditEntry {
            id: 1,
            at: 0,
            actor: "=cmd|' /C calc'!A0".into(),
            address: Some("@x".into()),
            action: "login".into(),
            detail: "+1, \"quoted\"".into(),
            devices: vec![1, 2],
            command_id: None,
            outcome: "-ok".into(),
        };
        let text = String::from_utf8(csv_lines(&[e], true).unwrap().to_vec()).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let row = r.records().next().unwrap().unwrap();
        assert_eq!(&row[2], "'=cmd|' /C calc'!A0");
        assert_eq!(&row[3], "'@x");
        assert_eq!(&row[5], "'+1, \"quoted\"");
        assert_eq!(&row[6], "1 2");
        assert_eq!(&row[8], "'-ok");
    }
}
