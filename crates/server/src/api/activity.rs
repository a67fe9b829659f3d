//! `GET /activity`: the activity log (sites visited, apps used, logins),
//! limited to the devices the caller may see.

use axum::extract::{Query, State};
use axum::Json;
use lectern_store::{ActivityFilter, ActivityRow};
use serde::Deserialize;

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// Filters, all optional.
#[derive(Deserialize)]
pub struct Params {
    device: Option<i64>,
    user: Option<String>,
    kind: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    q: Option<String>,
    limit: Option<i64>,
}

/// `GET /activity?device=&user=&kind=&since=&until=&q=&limit=`: newest first.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
    Query(p): Query<Params>,
) -> Result<Json<Vec<ActivityRow>>, ApiError> {
    auth.require(&st, "activity.view").await?;
    let limit = p.limit.unwrap_or(200);
    if !(1..=5000).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 5000"));
    }
    if let Some(k) = &p.kind {
        if !lectern_proto::ACTIVITY_KINDS.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "kind must be one of {:?}",
                lectern_proto::ACTIVITY_KINDS
            )));
        }
    }
    let visible: Vec<i64> = super::devices::visible(&st, &auth)
        .await?
        .into_iter()
        .map(|(d, _)| d.id)
        .collect();
    let devices = match p.device {
        Some(d) if visible.contains(&d) => vec![d],
        Some(d) => return Err(ApiError::not_found(format!("no device {d}"))),
        None => visible,
    };
    let filter = ActivityFilter {
        devices: Some(devices),
        user: p.user,
        kind: p.kind,
        since: p.since,
        until: p.until,
        text: p.q.filter(|q| !q.is_empty()),
        limit,
    };
    let school = st.school.id;
    Ok(Json(st.db(move |s| s.activity(school, &filter)).await?))
}
