//! `GET /safeguarding/summary`: the safeguarding dashboard's figures for a
//! period and, optionally, one group, over the devices the caller may see
//! (the same scoping as `/violations`).

use axum::extract::{Query, State};
use axum::http::Uri;
use axum::Json;
use lectern_policy::access::Access;
use lectern_policy::groups::GroupKind;
use lectern_store::dashboard::{DashboardScope, Summary, SITE_WINDOW_MS};
use serde::{Deserialize, Serialize};

use super::activity::scope;
use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// The longest period one summary covers.
pub const MAX_DAYS: i64 = 366;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The period when none is given.
const DEFAULT_DAYS: i64 = 30;

/// The query, read only after the rights check.
// A misspelt parameter is refused (naming it), never silently ignored.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    from: Option<i64>,
    to: Option<i64>,
    group: Option<i64>,
}

/// A group the caller may narrow the dashboard to.
#[derive(Serialize)]
pub struct GroupChoice {
    id: i64,
    name: String,
    /// `computer` or `user`.
    kind: &'static str,
}

/// What the dashboard draws.
#[derive(Serialize)]
pub struct SummaryView {
    /// The period, ms (from inclusive, to exclusive).
    from: i64,
    to: i64,
    /// The group it is narrowed to.
    group: Option<i64>,
    /// Groups the caller may choose.
    groups: Vec<GroupChoice>,
    /// How far back a violation's site is looked for, minutes.
    site_window_minutes: i64,
    #[serde(flatten)]
    summary: Summary,
}

/// The period asked for: `to` defaults to now, `from` to 30 days before `to`;
/// `from` must be before `to` and at most [`MAX_DAYS`] earlier.
fn period(p: &Params, now: i64) -> Result<(i64, i64), ApiError> {
    let to = p.to.unwrap_or(now);
    let from = p.from.unwrap_or(to - DEFAULT_DAYS * DAY_MS);
    if from < 0 || to < 0 {
        return Err(ApiError::bad_request(
            "from and to are milliseconds since 1970",
        ));
    }
    if from >= to {
        return Err(ApiError::bad_request("from must be before to"));
    }
    if to - from > MAX_DAYS * DAY_MS {
        return Err(ApiError::bad_request(format!(
            "the period may be at most {MAX_DAYS} days"
        )));
    }
    Ok((from, to))
}

/// The computer and user groups the caller may see (view access to the
/// group or to Entire Network, or administrator), by name.
async fn choices(st: &Shared, auth: &Authed) -> Result<Vec<GroupChoice>, ApiError> {
    let school = auth.school();
    let all = st.db(move |s| s.list_groups(school)).await?;
    let everything = st
        .policies
        .of(school)
        .entire_network()
        .is_some_and(|en| may_see_group(auth, en));
    let mut out: Vec<GroupChoice> = all
        .into_iter()
        .filter(|g| may_see_group(auth, g.group.id) || everything)
        .filter_map(|g| {
            let kind = match g.group.kind {
                GroupKind::Computer => "computer",
                GroupKind::User => "user",
                _ => return None,
            };
            Some(GroupChoice {
                id: g.group.id,
                name: g.group.name,
                kind,
            })
        })
        .collect();
    out.sort_by_cached_key(|g| g.name.to_lowercase());
    Ok(out)
}

fn may_see_group(auth: &Authed, id: i64) -> bool {
    auth.rights.all
        || auth
            .rights
            .group_access
            .get(&id)
            .copied()
            .unwrap_or(Access::None)
            >= Access::View
}

/// `GET /safeguarding/summary?from=&to=&group=`.
pub async fn summary(
    State(st): State<Shared>,
    auth: Authed,
    uri: Uri,
) -> Result<Json<SummaryView>, ApiError> {
    auth.require(&st, "activity.view").await?;
    let Query(p) =
        Query::<Params>::try_from_uri(&uri).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (from, to) = period(&p, lectern_store::now_ms())?;
    let groups = choices(&st, &auth).await?;
    // A group the caller cannot see answers as one that does not exist.
    if let Some(g) = p.group {
        if !groups.iter().any(|c| c.id == g) {
            return Err(ApiError::not_found(format!("no group {g}")));
        }
    }
    let hosts = scope(&st, &auth, None, p.group).await?;
    let dash = DashboardScope {
        devices: hosts.into_keys().collect(),
        since: from,
        until: to,
    };
    let school = auth.school();
    let summary = st
        .db(move |s| s.dashboard().safeguarding_summary(school, &dash))
        .await?;
    Ok(Json(SummaryView {
        from,
        to,
        group: p.group,
        groups,
        site_window_minutes: SITE_WINDOW_MS / 60_000,
        summary,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_bounded() {
        let now = 400 * DAY_MS;
        let p = |from, to| Params {
            from,
            to,
            group: None,
        };
        assert_eq!(
            period(&p(None, None), now).unwrap(),
            (now - 30 * DAY_MS, now)
        );
        assert!(period(&p(Some(5), Some(5)), now).is_err());
        assert!(period(&p(Some(6), Some(5)), now).is_err());
        assert!(period(&p(Some(-1), None), now).is_err());
        assert!(period(&p(Some(0), Some(366 * DAY_MS)), now).is_ok());
        assert!(period(&p(Some(0), Some(366 * DAY_MS + 1)), now).is_err());
    }
}
