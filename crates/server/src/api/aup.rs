//! Acceptable use policies for consoles (`aup.manage`).
//!
//! - `GET /aup`: every group that may carry a policy (user groups and
//!   Entire Network) with its policy's versions, newest first.
//! - `POST /aup {group_id, title, text}`: publishes the group's next version
//!   (older versions stay as they were); audited; connected devices whose
//!   user it now applies to are asked to accept it.
//! - `GET /aup/acceptances?version=`: who accepted which version on which
//!   computer, newest first (at most [`MAX_ROWS`]); `GET /aup/acceptances.csv`
//!   the same as CSV.
//! - `GET /aup/pending`: online computers whose user has a policy to accept
//!   and has not (or whose computer cannot show it).
//!
//! Rows about computers are limited to those the caller may see.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_policy::groups::GroupKind;
use lectern_proto::aup::{check_text, check_title};
use lectern_proto::requests::TextError;
use lectern_store::aup::{AupAcceptance, AupVersion, NewAupVersion};
use serde::{Deserialize, Serialize};

use super::auth::Authed;
use super::inventory::safe_cell;
use super::ApiError;
use crate::state::Shared;

/// The right every route here needs.
pub const RIGHT: &str = "aup.manage";
/// Most acceptances one report lists.
pub const MAX_ROWS: u32 = 10_000;

/// A group that may carry a policy, with its versions.
#[derive(Debug, Serialize)]
pub struct GroupPolicies {
    /// Group id.
    pub group_id: i64,
    /// Group name.
    pub group_name: String,
    /// `entire_network` or `user`.
    pub kind: GroupKind,
    /// Its priority (the strongest group a user is in wins).
    pub priority: lectern_policy::groups::Priority,
    /// Versions, newest first (the first is current).
    pub versions: Vec<AupVersion>,
}

/// `GET /aup`.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<GroupPolicies>>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    let versions = st.db(move |s| s.aup().aup_versions(school)).await?;
    let groups = st.db(move |s| s.list_groups(school)).await?;
    let out = groups
        .into_iter()
        .filter(|g| matches!(g.group.kind, GroupKind::User | GroupKind::EntireNetwork))
        .map(|g| GroupPolicies {
            group_id: g.group.id,
            versions: versions
                .iter()
                .filter(|v| v.group_id == g.group.id)
                .cloned()
                .collect(),
            group_name: g.group.name,
            kind: g.group.kind,
            priority: g.group.priority,
        })
        .collect();
    Ok(Json(out))
}

/// Body of `POST /aup` (fields default so that a caller without the right
/// hears 403, not a parse error).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// The user group (or Entire Network) whose members must accept it.
    #[serde(default)]
    pub group_id: i64,
    /// Title, at most 120 characters.
    #[serde(default)]
    pub title: String,
    /// Plain text, paragraphs separated by blank lines, at most 32 KiB.
    #[serde(default)]
    pub text: String,
}

fn text_error(e: TextError) -> ApiError {
    let status = match e {
        TextError::TooLong { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut m = e.to_string();
    if let Some(first) = m.get(..1) {
        m = first.to_uppercase() + &m[1..];
    }
    ApiError::new(status, format!("{m}."))
}

/// `POST /aup`: publishes a new version.
pub async fn publish(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<(StatusCode, Json<AupVersion>), ApiError> {
    auth.require(&st, RIGHT).await?;
    let body: Publish = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad request body: {e}")))?;
    let title = check_title(&body.title).map_err(text_error)?;
    let text = check_text(&body.text).map_err(text_error)?;
    let group = st
        .policies
        .of(auth.school())
        .group(body.group_id)
        .ok_or_else(|| ApiError::not_found(format!("no group {}", body.group_id)))?;
    if !matches!(group.group.kind, GroupKind::User | GroupKind::EntireNetwork) {
        return Err(ApiError::bad_request(
            "An acceptable use policy belongs to a user group or to Entire Network.",
        ));
    }
    let school = auth.session.user.school_id;
    let new = NewAupVersion {
        group_id: group.group.id,
        title,
        text,
        by: auth.username().to_string(),
        at: lectern_store::now_ms(),
    };
    let v = st.db(move |s| s.aup().publish_aup(school, &new)).await?;
    st.audit(lectern_store::NewAudit {
        school_id: school,
        detail: format!(
            "group {:?} version {} ({} bytes)",
            group.group.name,
            v.number,
            v.text.len()
        ),
        ..st.audit_entry(
            school,
            auth.username(),
            auth.address.clone(),
            "aup.publish",
            "ok",
        )
    })
    .await;
    crate::aup::offer_all(&st, auth.school()).await;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Query of the acceptance reports (text, parsed after the rights check so
/// that a caller without the right hears 403 whatever the query).
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// Only this version (its id).
    #[serde(default)]
    pub version: Option<String>,
}

impl Filter {
    fn version(&self) -> Result<Option<i64>, ApiError> {
        match self.version.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| ApiError::bad_request("version must be a version's id (a number)")),
        }
    }
}

/// One acceptance with the computer's name and the policy's group.
#[derive(Debug, Serialize)]
pub struct AcceptanceRow {
    /// As stored.
    #[serde(flatten)]
    pub acceptance: AupAcceptance,
    /// The computer's enrolled name.
    pub hostname: String,
    /// The version's number within its policy.
    pub version: i64,
    /// The group the policy belongs to.
    pub group_id: i64,
}

/// The computers the caller may see (`None`: all).
async fn visible(st: &Shared, auth: &Authed) -> Result<Option<HashSet<i64>>, ApiError> {
    if auth.rights.all {
        return Ok(None);
    }
    Ok(Some(
        crate::scope::visible_devices(st, auth.school(), &auth.rights).await?,
    ))
}

async fn rows(st: &Shared, auth: &Authed, f: &Filter) -> Result<Vec<AcceptanceRow>, ApiError> {
    let school = auth.session.user.school_id;
    let version = f.version()?;
    let (list, versions, devices) = st
        .db(move |s| {
            Ok((
                s.aup().aup_acceptances(school, version, MAX_ROWS)?,
                s.aup().aup_versions(school)?,
                s.list_devices(school)?,
            ))
        })
        .await?;
    let names: HashMap<i64, String> = devices.into_iter().map(|d| (d.id, d.hostname)).collect();
    let versions: HashMap<i64, (i64, i64)> = versions
        .into_iter()
        .map(|v| (v.id, (v.number, v.group_id)))
        .collect();
    let visible = visible(st, auth).await?;
    Ok(list
        .into_iter()
        .filter(|a| visible.as_ref().is_none_or(|v| v.contains(&a.device_id)))
        .map(|a| {
            let (version, group_id) = versions.get(&a.version_id).copied().unwrap_or((0, 0));
            AcceptanceRow {
                hostname: names
                    .get(&a.device_id)
                    .cloned()
                    .unwrap_or_else(|| format!("device {}", a.device_id)),
                version,
                group_id,
                acceptance: a,
            }
        })
        .collect())
}

/// `GET /aup/acceptances`.
pub async fn acceptances(
    State(st): State<Shared>,
    auth: Authed,
    Query(f): Query<Filter>,
) -> Result<Json<Vec<AcceptanceRow>>, ApiError> {
    auth.require(&st, RIGHT).await?;
    Ok(Json(rows(&st, &auth, &f).await?))
}

/// `GET /aup/acceptances.csv`.
pub async fn csv(
    State(st): State<Shared>,
    auth: Authed,
    Query(f): Query<Filter>,
) -> Result<Response, ApiError> {
    auth.require(&st, RIGHT).await?;
    let rows = rows(&st, &auth, &f).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    let write = |w: &mut csv::Writer<Vec<u8>>| -> Result<(), csv::Error> {
        w.write_record([
            "accepted_at",
            "username",
            "device_id",
            "hostname",
            "group_id",
            "version",
            "version_id",
        ])?;
        for r in &rows {
            w.write_record([
                r.acceptance.accepted_at.to_string(),
                safe_cell(&r.acceptance.username),
                r.acceptance.device_id.to_string(),
                safe_cell(&r.hostname),
                r.group_id.to_string(),
                r.version.to_string(),
                r.acceptance.version_id.to_string(),
            ])?;
        }
        Ok(())
    };
    write(&mut w).map_err(|e| ApiError::internal(format!("cannot write CSV: {e}")))?;
    let body = w
        .into_inner()
        .map_err(|e| ApiError::internal(format!("cannot write CSV: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"acceptable-use.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// An online computer whose user has not accepted the policy due.
#[derive(Debug, Serialize)]
pub struct Pending {
    /// Device.
    pub device_id: i64,
    /// Its name.
    pub hostname: String,
    /// The user it reports.
    pub username: String,
    /// The version due.
    pub version_id: i64,
    /// Its number.
    pub version: i64,
    /// The group the policy belongs to.
    pub group_id: i64,
    /// `waiting` (shown, not yet accepted) or `unsupported` (the computer
    /// cannot show it).
    pub status: &'static str,
}

/// `GET /aup/pending`.
pub async fn pending(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<Pending>>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    let current = st.db(move |s| s.aup().current_aups(school)).await?;
    let visible = visible(&st, &auth).await?;
    let mut out = Vec::new();
    for (id, hostname, user) in st.hub.subjects(school, None) {
        let Some(user) = user else { continue };
        if visible.as_ref().is_some_and(|v| !v.contains(&id)) {
            continue;
        }
        let Some(v) = crate::aup::applicable(&st, school, &current, &hostname, &user).cloned()
        else {
            continue;
        };
        let (vid, u) = (v.id, user.clone());
        if st
            .db(move |s| s.aup().aup_accepted(school, vid, id, &u))
            .await?
        {
            continue;
        }
        out.push(Pending {
            device_id: id,
            hostname,
            username: user,
            version_id: v.id,
            version: v.number,
            group_id: v.group_id,
            status: if st.aup.unsupported(id) {
                "unsupported"
            } else {
                "waiting"
            },
        });
    }
    out.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(Json(out))
}
