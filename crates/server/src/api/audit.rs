use axum::extract::{Query, State};
use axum::Json;
use lectern_store::{AuditEntry, AuditReader};
use serde::Deserialize;

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

// A misspelt filter is refused (naming it), never silently ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Page {
    limit: Option<i64>,
    before: Option<i64>,
}

/// `GET /audit?limit=&before=`: newest first; page with `before` = the last
/// id seen. Administrators read everything; anyone else holding `audit.view`
/// reads what [`AuditReader`] allows them (entries about devices they may
/// view, and their own actions).
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
    Query(p): Query<Page>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    auth.require(&st, "audit.view").await?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 1000"));
    }
    let reader = match auth.rights.all {
        true => None,
        false => Some(AuditReader {
            username: auth.username().to_string(),
            devices: crate::scope::visible_devices(&st, &auth.rights)
                .await?
                .into_iter()
                .collect(),
        }),
    };
    let school = st.school.id;
    Ok(Json(
        st.db(move |s| s.audit_list(school, limit, p.before, reader.as_ref()))
            .await?,
    ))
}
