//! The review workflow of violations: status, assignee, notes and history,
//! one at a time or in bulk.
//!
//! Reading a case needs `activity.view` and view access to the violation's
//! device, as reading the violation does. Changing one also needs
//! `violations.review`; an assignee must be a console user of the school
//! who may read that violation. A violation the caller cannot see is
//! answered 404 alone, or skipped and reported in bulk, and never changed.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::{Access, Rights};
use lectern_store::review::{
    AssigneeFilter, CaseChange, CaseEvent, CaseFilter, CaseNote, CaseOutcome, CaseState, CaseStatus,
};
use lectern_store::Role;
use serde::{Deserialize, Deserializer, Serialize};

use super::activity::scope;
use super::auth::Authed;
use super::ApiError;
use crate::review::{CaseUpdate, MAX_IDS, MAX_NOTE_CHARS};
use crate::state::Shared;

/// The right to change cases.
pub const FEATURE: &str = "violations.review";
/// Reason of a 400 for an assignee who may not read the violation.
pub const ASSIGNEE_CANNOT_READ: &str = "assignee_cannot_read";

/// A change as requested; every part is optional, at least one is needed.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    /// Bulk only: the violations.
    #[serde(default)]
    ids: Option<Vec<i64>>,
    #[serde(default)]
    status: Option<String>,
    /// Absent: unchanged; `null` or `""`: unassign; a name: assign.
    #[serde(default, deserialize_with = "present")]
    assignee: Option<Option<String>>,
    #[serde(default)]
    note: Option<String>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A case with its notes and history.
#[derive(Serialize)]
pub struct CaseView {
    /// The violation.
    pub id: i64,
    /// Status, assignee and note count.
    #[serde(flatten)]
    pub state: CaseState,
    /// Notes, oldest first.
    pub notes_list: Vec<CaseNote>,
    /// Every change, oldest first.
    pub history: Vec<CaseEvent>,
}

/// What a bulk change did to each id.
#[derive(Serialize, Default)]
pub struct BulkResult {
    /// Changed (or noted).
    pub changed: Vec<i64>,
    /// Already as asked: nothing written.
    pub unchanged: Vec<i64>,
    /// Not found or not visible to the caller: not changed.
    pub skipped: Vec<i64>,
    /// Visible, but the assignee may not read them: not changed.
    pub refused: Vec<Refused>,
}

/// A violation left alone, and why.
#[derive(Serialize)]
pub struct Refused {
    /// The violation.
    pub id: i64,
    /// A stable reason ([`ASSIGNEE_CANNOT_READ`]).
    pub reason: &'static str,
}

/// The review filters of `GET /violations`: `status` (comma-separated) and
/// `assignee` (`mine`, `unassigned` or a user name).
pub fn case_filter(
    auth: &Authed,
    status: Option<&str>,
    assignee: Option<&str>,
) -> Result<CaseFilter, ApiError> {
    let statuses = status
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.split(',')
                .map(parse_status)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let assignee = match assignee.map(str::trim) {
        None | Some("") => AssigneeFilter::Any,
        Some("mine") => AssigneeFilter::User(auth.username().to_string()),
        Some("unassigned") => AssigneeFilter::Unassigned,
        Some(name) => AssigneeFilter::User(name.to_string()),
    };
    Ok(CaseFilter { statuses, assignee })
}

fn parse_status(s: &str) -> Result<CaseStatus, ApiError> {
    CaseStatus::parse(s.trim()).ok_or_else(|| {
        let known: Vec<&str> = CaseStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::bad_request(format!("unknown status {s:?}; one of {}", known.join(", ")))
    })
}

/// The states of `ids` (those that exist).
pub async fn states(
    st: &Shared,
    school: lectern_store::SchoolId,
    ids: Vec<i64>,
) -> Result<HashMap<i64, CaseState>, ApiError> {
    st.db(move |s| s.review().case_states(school, &ids)).await
}

/// Checks a note: not blank, at most [`MAX_NOTE_CHARS`] characters, no
/// control characters but line breaks and tabs, no bidi overrides.
fn check_note(note: &str) -> Result<String, ApiError> {
    if note.trim().is_empty() {
        return Err(ApiError::bad_request("the note is empty"));
    }
    let n = note.chars().count();
    if n > MAX_NOTE_CHARS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the note has {n} characters; at most {MAX_NOTE_CHARS}"),
        ));
    }
    if note.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t' && c != '\r')
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    }) {
        return Err(ApiError::bad_request(
            "the note has control or text-direction characters",
        ));
    }
    Ok(note.trim_end().to_string())
}

/// A parsed, checked change.
struct Checked {
    change: CaseChange,
    /// The assignee's rights when one is named.
    assignee_rights: Option<Rights>,
}

/// Parses and checks a change (the caller's rights were checked first).
async fn check_change(
    st: &Shared,
    school: lectern_store::SchoolId,
    body: &Bytes,
) -> Result<(ChangeBody, Checked), ApiError> {
    let mut b: ChangeBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("bad change: {e}")))?;
    let status = b.status.as_deref().map(parse_status).transpose()?;
    let note = b.note.as_deref().map(check_note).transpose()?;
    let assignee = b
        .assignee
        .take()
        .map(|a| a.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()));
    if status.is_none() && assignee.is_none() && note.is_none() {
        return Err(ApiError::bad_request(
            "nothing to change: give a status, an assignee or a note",
        ));
    }
    let (assignee, assignee_rights) = match assignee {
        Some(Some(name)) => {
            let (name, rights) = assignee_rights(st, school, &name).await?;
            (Some(Some(name)), Some(rights))
        }
        other => (other, None),
    };
    Ok((
        b,
        Checked {
            change: CaseChange {
                status,
                assignee,
                note,
            },
            assignee_rights,
        },
    ))
}

/// An assignee's exact name and rights: an enabled console user of the
/// school who may read violations (400 otherwise).
async fn assignee_rights(
    st: &Shared,
    school: lectern_store::SchoolId,
    name: &str,
) -> Result<(String, Rights), ApiError> {
    let accounts = st.db(move |s| s.accounts().list_accounts(school)).await?;
    // Names are matched as sign-in matches them, regardless of case.
    let account = accounts
        .into_iter()
        .find(|a| a.username.eq_ignore_ascii_case(name))
        .filter(|a| !a.disabled)
        .ok_or_else(|| ApiError::bad_request(format!("no console user {name:?}")))?;
    let rights =
        st.policies
            .of(school)
            .rights(&account.username, None, account.role == Role::Admin);
    if !rights.allows("activity.view") {
        return Err(ApiError::bad_request(format!(
            "{} can't read violations, so can't be assigned one",
            account.username
        ))
        .with_reason(ASSIGNEE_CANNOT_READ));
    }
    Ok((account.username, rights))
}

/// The devices `rights` may view.
async fn visible_to(
    st: &Shared,
    school: lectern_store::SchoolId,
    rights: &Rights,
) -> Result<HashSet<i64>, ApiError> {
    let devices = st.db(move |s| s.list_devices(school)).await?;
    Ok(devices
        .into_iter()
        .filter(|d| {
            let state: lectern_proto::DeviceState =
                serde_json::from_str(&d.state_json).unwrap_or_default();
            let groups = st.device_groups(school, d.id, &d.hostname, state.user.as_deref());
            rights.device_access(&groups) >= Access::View
        })
        .map(|d| d.id)
        .collect())
}

/// Refuses (429, audited) a caller over their budget for `ids` violations.
async fn spend(
    st: &Shared,
    auth: &Authed,
    change: &CaseChange,
    ids: usize,
) -> Result<(), ApiError> {
    let n = ids as u32;
    let changes = if change.status.is_some() || change.assignee.is_some() {
        n
    } else {
        0
    };
    let notes = if change.note.is_some() { n } else { 0 };
    let now = std::time::Instant::now();
    if let Err(secs) = st
        .review
        .spend(auth.school(), auth.username(), changes, notes, now)
    {
        let mut entry = auth.audit_entry(st, "violation.review", "rate_limited");
        entry.detail = format!("{ids} violations");
        st.audit(entry).await;
        return Err(ApiError {
            retry_after: Some(secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too many case changes or notes; try again later",
            )
            .with_reason(super::reason::RATE_LIMITED)
        });
    }
    Ok(())
}

/// Sorts `ids` into those to change, skipped and refused.
struct Sorted {
    apply: Vec<i64>,
    skipped: Vec<i64>,
    refused: Vec<i64>,
}

async fn sort_ids(
    st: &Shared,
    auth: &Authed,
    ids: &[i64],
    checked: &Checked,
) -> Result<Sorted, ApiError> {
    let mine = scope(st, auth, None, None).await?;
    let theirs = match &checked.assignee_rights {
        Some(r) => Some(visible_to(st, auth.school(), r).await?),
        None => None,
    };
    let known = states(st, auth.school(), ids.to_vec()).await?;
    let mut out = Sorted {
        apply: Vec::new(),
        skipped: Vec::new(),
        refused: Vec::new(),
    };
    for &id in ids {
        match known.get(&id) {
            Some(s) if mine.contains_key(&s.device_id) => {
                if theirs.as_ref().is_some_and(|t| !t.contains(&s.device_id)) {
                    out.refused.push(id);
                } else {
                    out.apply.push(id);
                }
            }
            _ => out.skipped.push(id),
        }
    }
    Ok(out)
}

/// Writes the change, tells consoles, and audits it.
async fn apply(
    st: &Shared,
    auth: &Authed,
    sorted: &Sorted,
    change: CaseChange,
) -> Result<Vec<CaseOutcome>, ApiError> {
    let (school, ids, actor) = (
        auth.school(),
        sorted.apply.clone(),
        auth.username().to_string(),
    );
    let c = change.clone();
    let now = lectern_store::now_ms();
    let out = st
        .db(move |s| s.review().change_cases(school, &ids, &c, &actor, now))
        .await?;
    for o in out.iter().filter(|o| !o.events.is_empty()) {
        st.hub
            .publish(crate::hub::ConsoleEvent::Case(Box::new(CaseUpdate {
                violation_id: o.id,
                device_id: o.device_id,
                state: o.state.clone(),
                events: o.events.clone(),
            })));
    }
    audit(st, auth, &change, sorted, &out).await;
    Ok(out)
}

/// One audit entry per request: what was asked (never the note's text),
/// and what became of each id.
async fn audit(
    st: &Shared,
    auth: &Authed,
    change: &CaseChange,
    sorted: &Sorted,
    out: &[CaseOutcome],
) {
    let mut asked = Vec::new();
    if let Some(s) = change.status {
        asked.push(format!("status {}", s.as_str()));
    }
    match &change.assignee {
        Some(Some(a)) => asked.push(format!("assignee {a}")),
        Some(None) => asked.push("unassigned".into()),
        None => {}
    }
    if let Some(n) = &change.note {
        asked.push(format!("note ({} characters)", n.chars().count()));
    }
    let changed: Vec<i64> = out
        .iter()
        .filter(|o| !o.events.is_empty())
        .map(|o| o.id)
        .collect();
    let list = |ids: &[i64]| {
        let shown: Vec<String> = ids.iter().take(100).map(i64::to_string).collect();
        format!("[{}]", shown.join(", "))
    };
    let mut entry = auth.audit_entry(
        st,
        "violation.review",
        match (changed.is_empty(), sorted.apply.is_empty()) {
            (false, _) => "ok",
            (true, false) => "unchanged",
            (true, true) => "refused",
        },
    );
    entry.detail = format!(
        "{}: changed {}, skipped (not visible) {}, refused (assignee cannot read) {}",
        asked.join(", "),
        list(&changed),
        list(&sorted.skipped),
        list(&sorted.refused),
    );
    let mut devices: Vec<i64> = out.iter().map(|o| o.device_id).collect();
    devices.sort_unstable();
    devices.dedup();
    entry.devices = devices;
    st.audit(entry).await;
}

/// A visible violation's case, or 404.
async fn visible_case(st: &Shared, auth: &Authed, id: i64) -> Result<CaseView, ApiError> {
    auth.require(st, "activity.view").await?;
    let state = states(st, auth.school(), vec![id])
        .await?
        .remove(&id)
        .ok_or_else(|| ApiError::not_found(format!("no violation {id}")))?;
    if !scope(st, auth, None, None)
        .await?
        .contains_key(&state.device_id)
    {
        return Err(ApiError::not_found(format!("no violation {id}")));
    }
    let school = auth.school();
    let (notes, history) = st
        .db(move |s| {
            Ok((
                s.review().case_notes(school, id)?,
                s.review().case_history(school, id)?,
            ))
        })
        .await?;
    Ok(CaseView {
        id,
        state,
        notes_list: notes,
        history,
    })
}

/// `GET /violations/{id}/review`: status, assignee, notes and history.
pub async fn get_case(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<CaseView>, ApiError> {
    Ok(Json(visible_case(&st, &auth, id).await?))
}

/// `POST /violations/{id}/review` with `{status?, assignee?, note?}`: the
/// case as it is after.
pub async fn change_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Bytes,
) -> Result<Json<CaseView>, ApiError> {
    auth.require(&st, FEATURE).await?;
    auth.require(&st, "activity.view").await?;
    let (b, checked) = check_change(&st, auth.school(), &body).await?;
    if b.ids.is_some() {
        return Err(ApiError::bad_request(
            "ids belong in POST /violations/review",
        ));
    }
    spend(&st, &auth, &checked.change, 1).await?;
    let sorted = sort_ids(&st, &auth, &[id], &checked).await?;
    if !sorted.skipped.is_empty() {
        auth.deny(&st, &format!("review of violation {id}"), Vec::new())
            .await;
        return Err(ApiError::not_found(format!("no violation {id}")));
    }
    if !sorted.refused.is_empty() {
        let who = match &checked.change.assignee {
            Some(Some(a)) => a.clone(),
            _ => String::new(),
        };
        return Err(ApiError::bad_request(format!(
            "{who} can't see this violation's computer, so can't be assigned it"
        ))
        .with_reason(ASSIGNEE_CANNOT_READ));
    }
    apply(&st, &auth, &sorted, checked.change).await?;
    Ok(Json(visible_case(&st, &auth, id).await?))
}

/// `POST /violations/review` with `{ids, status?, assignee?, note?}`: each
/// id changed, unchanged, skipped (not visible) or refused.
pub async fn change_many(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<Json<BulkResult>, ApiError> {
    auth.require(&st, FEATURE).await?;
    auth.require(&st, "activity.view").await?;
    let (b, checked) = check_change(&st, auth.school(), &body).await?;
    let mut ids = b.ids.unwrap_or_default();
    let mut seen = HashSet::new();
    ids.retain(|id| seen.insert(*id));
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(ApiError::bad_request(format!(
            "ids must name 1 to {MAX_IDS} violations"
        )));
    }
    spend(&st, &auth, &checked.change, ids.len()).await?;
    let sorted = sort_ids(&st, &auth, &ids, &checked).await?;
    if !sorted.skipped.is_empty() {
        auth.deny(
            &st,
            &format!(
                "review of violations {:?}",
                &sorted.skipped[..sorted.skipped.len().min(100)]
            ),
            Vec::new(),
        )
        .await;
    }
    let out = apply(&st, &auth, &sorted, checked.change).await?;
    let (changed, unchanged) = out.iter().partition::<Vec<_>, _>(|o| !o.events.is_empty());
    Ok(Json(BulkResult {
        changed: changed.iter().map(|o| o.id).collect(),
        unchanged: unchanged.iter().map(|o| o.id).collect(),
        skipped: sorted.skipped,
        refused: sorted
            .refused
            .into_iter()
            .map(|id| Refused {
                id,
                reason: ASSIGNEE_CANNOT_READ,
            })
            .collect(),
    }))
}

/// Someone a case may be assigned to.
#[derive(Serialize)]
pub struct Assignee {
    /// Console user name.
    pub username: String,
}

/// `GET /violations/assignees`: enabled console users who may read
/// violations (each case still checks its own device), for those who may
/// review.
pub async fn assignees(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Vec<Assignee>>, ApiError> {
    auth.require(&st, FEATURE).await?;
    auth.require(&st, "activity.view").await?;
    let school = auth.school();
    let accounts = st.db(move |s| s.accounts().list_accounts(school)).await?;
    let mut out: Vec<Assignee> = accounts
        .into_iter()
        .filter(|a| !a.disabled)
        .filter(|a| {
            st.policies
                .of(school)
                .rights(&a.username, None, a.role == Role::Admin)
                .allows("activity.view")
        })
        .map(|a| Assignee {
            username: a.username,
        })
        .collect();
    out.sort_by_key(|a| a.username.to_lowercase());
    Ok(Json(out))
}
