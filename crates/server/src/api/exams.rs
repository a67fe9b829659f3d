//! Exams (issue 13.7): create, hand out the paper and lock down at the
//! start, collect and lift the lock-down at the end, and the exam log.
//!
//! Who may: `command.exams` with control of every device of the exam (to
//! create, upload its paper, start and end it); listing and reading show
//! exams with at least one device the caller sees, and only those devices'
//! log lines and hand-ins.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use lectern_policy::settings::{validate_value, SettingKey};
use lectern_store::files::Exam;
use lectern_store::now_ms;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::files::Actor;
use super::{ApiError, JsonBody};
use crate::state::Shared;

/// The right to run exams.
pub const FEATURE: &str = "command.exams";

/// Body of `POST /exams`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExam {
    /// Name (1 to 120 characters).
    pub name: String,
    /// Devices sitting it.
    pub devices: Vec<i64>,
    /// Applications allowed (empty: applications are not restricted).
    #[serde(default)]
    pub allowed_apps: Vec<String>,
    /// Websites allowed (domain patterns; empty: no web at all).
    #[serde(default)]
    pub allowed_sites: Vec<String>,
    /// File or folder under `~/Lectern/` collected at the end.
    #[serde(default)]
    pub collect_path: Option<String>,
    /// Planned start (ms): the exam starts by itself then, unless its end
    /// has passed by then.
    #[serde(default)]
    pub starts_at: Option<i64>,
    /// Planned end (ms): the exam ends by itself then if still running.
    #[serde(default)]
    pub ends_at: Option<i64>,
}

fn strings(key: SettingKey, list: &[String]) -> Result<Vec<String>, ApiError> {
    let v = validate_value(key, &json!(list)).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

/// `POST /exams`: plans an exam (201).
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewExam>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, FEATURE).await?;
    let JsonBody(b) = body?;
    let name = b.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 120 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the name must be 1 to 120 characters",
        ));
    }
    let collect_path = match b.collect_path.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(p) => Some(
            lectern_policy::files::collect_path(p)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
                .join("/"),
        ),
    };
    if let (Some(s), Some(e)) = (b.starts_at, b.ends_at) {
        if e <= s {
            return Err(ApiError::bad_request("the end must come after the start"));
        }
    }
    let ids: BTreeSet<i64> = b.devices.iter().copied().collect();
    super::files::controlled(&st, &auth, &ids).await?;
    let exam = Exam {
        id: 0,
        name,
        devices: ids.iter().copied().collect(),
        allowed_apps: strings(SettingKey::AppAllowList, &b.allowed_apps)?,
        allowed_sites: strings(SettingKey::AllowList, &b.allowed_sites)?,
        paper_transfer: None,
        paper_name: None,
        collect_path,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        status: "planned".into(),
        started_at: None,
        ended_at: None,
        collection_id: None,
        created_by: auth.username().to_string(),
        created_at: now_ms(),
    };
    let school = auth.session.user.school_id;
    let exam = st.db(move |s| s.files().add_exam(school, &exam)).await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "exam.create",
        "ok",
    );
    entry.devices = exam.devices.clone();
    entry.detail = format!("exam {}: {}", exam.id, exam.name);
    st.audit(entry).await;
    st.files.exams_changed.notify_one();
    Ok((StatusCode::CREATED, Json(json!(exam))))
}

/// The exam, if the caller sees one of its devices.
async fn find(st: &Shared, auth: &Authed, id: i64) -> Result<(Exam, BTreeSet<i64>), ApiError> {
    let school = auth.session.user.school_id;
    let seen: BTreeSet<i64> = super::devices::visible(st, auth)
        .await?
        .into_iter()
        .map(|(v, _)| v.id)
        .collect();
    let exam = st.db(move |s| s.files().exam(school, id)).await?;
    exam.filter(|e| e.devices.iter().any(|d| seen.contains(d)))
        .map(|e| (e, seen))
        .ok_or_else(|| ApiError::not_found(format!("no exam {id}")))
}

/// The exam, if the caller controls all its devices.
async fn find_controlled(st: &Shared, auth: &Authed, id: i64) -> Result<Exam, ApiError> {
    let (exam, _) = find(st, auth, id).await?;
    let ids: BTreeSet<i64> = exam.devices.iter().copied().collect();
    super::files::controlled(st, auth, &ids).await?;
    Ok(exam)
}

/// `GET /exams`: exams with a device the caller sees.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let school = auth.session.user.school_id;
    let seen: BTreeSet<i64> = super::devices::visible(&st, &auth)
        .await?
        .into_iter()
        .map(|(v, _)| v.id)
        .collect();
    let exams = st.db(move |s| s.files().exams(school)).await?;
    let shown: Vec<Exam> = exams
        .into_iter()
        .filter(|e| e.devices.iter().any(|d| seen.contains(d)))
        .collect();
    Ok(Json(json!(shown)))
}

/// `GET /exams/{id}`: the exam and its log (lines about devices the caller
/// does not see left out).
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let (exam, seen) = find(&st, &auth, id).await?;
    let school = auth.session.user.school_id;
    let log = st.db(move |s| s.files().exam_log(school, id)).await?;
    let log: Vec<_> = log
        .into_iter()
        .filter(|l| l.device_id.is_none_or(|d| seen.contains(&d)))
        .collect();
    let mut v = json!(exam);
    v["log"] = json!(log);
    Ok(Json(v))
}

/// Query of a paper upload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperQuery {
    /// The paper's file name (sanitised).
    pub name: String,
}

/// `PUT /exams/{id}/paper?name=…`, the body being the file: the paper
/// handed out at the start (planned exams only; replaces an earlier one).
pub async fn paper(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    query: Result<Query<PaperQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut exam = find_controlled(&st, &auth, id).await?;
    if exam.status != "planned" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the exam has already started",
        ));
    }
    let school = auth.session.user.school_id;
    let limits = crate::files::limits(&st, school).await;
    let dir = paper_dir(&st, id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let tmp = dir.join("paper.tmp");
    let received =
        super::files::receive_body(body, &tmp, limits.max_upload_mib * 1024 * 1024).await;
    if let Err(e) = received {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    tokio::fs::rename(&tmp, dir.join("paper"))
        .await
        .map_err(ApiError::internal)?;
    exam.paper_name = Some(lectern_policy::files::sanitize_name(&q.name, "paper"));
    let saved = exam.clone();
    st.db(move |s| s.files().update_exam(school, &saved))
        .await?;
    Ok(Json(json!(exam)))
}

fn paper_dir(st: &Shared, id: i64) -> std::path::PathBuf {
    st.data_dir.join("exam-papers").join(id.to_string())
}

/// `POST /exams/{id}/start`: locks the devices down, hands out the paper
/// and tells the students.
pub async fn start(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let exam = find_controlled(&st, &auth, id).await?;
    if exam.status != "planned" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the exam is {}", exam.status),
        ));
    }
    let exam = begin(&st, exam, &Actor::from(&auth)).await?;
    // A running exam's end time is now the timer's to keep.
    st.files.exams_changed.notify_one();
    Ok(Json(json!(exam)))
}

/// Starts a planned exam: lock-down, paper, notice, log, audit.
async fn begin(st: &Shared, mut exam: Exam, by: &Actor<'_>) -> Result<Exam, ApiError> {
    let (school, id) = (by.school, exam.id);
    let ids: BTreeSet<i64> = exam.devices.iter().copied().collect();
    claim(st, school, &mut exam, "planned", "running").await?;
    log(st, id, None, "started", format!("started by {}", by.name)).await;
    // The lock-down is a policy: enforced offline and across restarts.
    st.reload_policies(school).await?;
    let mut title = None;
    if let Some(name) = exam.paper_name.clone() {
        let from = paper_dir(st, id).join("paper");
        let tmp = crate::files::uploads_dir(st).join(format!("exam-{id}.tmp"));
        tokio::fs::create_dir_all(crate::files::uploads_dir(st))
            .await
            .map_err(ApiError::internal)?;
        tokio::fs::copy(&from, &tmp)
            .await
            .map_err(ApiError::internal)?;
        let (size, sha) = hash_file(&tmp).await?;
        let t = lectern_policy::files::sanitize_name(&exam.name, "Exam");
        let file = (name, t.clone(), size, sha);
        let transfer = super::files::send_file(st, by, &ids, &tmp, file, Some(id)).await?;
        exam.paper_transfer = Some(transfer.id);
        title = Some(t);
        let saved = exam.clone();
        st.db(move |s| s.files().update_exam(school, &saved))
            .await?;
    }
    let text = crate::exams::start_text(&exam, title.as_deref());
    crate::exams::notice(st, school, by.name, &exam.devices, text).await;
    let mut entry = st.audit_entry(school, by.name, by.address.clone(), "exam.start", "ok");
    entry.devices = exam.devices.clone();
    entry.detail = format!("exam {}: {}", exam.id, exam.name);
    st.audit(entry).await;
    Ok(exam)
}

async fn hash_file(path: &std::path::Path) -> Result<(u64, String), ApiError> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<(u64, String)> {
        use sha2::Digest;
        let mut f = std::fs::File::open(p)?;
        let mut h = sha2::Sha256::new();
        let n = std::io::copy(&mut f, &mut h)?;
        Ok((n, hex::encode(h.finalize())))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)
}

/// Moves the exam from `from` to `to` in the store, atomically, so that a
/// teacher and the schedule acting at the same moment cannot both start
/// (or end) it: the second gets 409.
async fn claim(
    st: &Shared,
    school: lectern_store::SchoolId,
    exam: &mut Exam,
    from: &'static str,
    to: &'static str,
) -> Result<(), ApiError> {
    let (id, at) = (exam.id, now_ms());
    let moved = st
        .db(move |s| s.files().move_exam(school, id, from, to, at))
        .await?;
    if !moved {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the exam is no longer {from}"),
        ));
    }
    exam.status = to.into();
    if to == "running" {
        exam.started_at = Some(at);
    } else {
        exam.ended_at = Some(at);
    }
    Ok(())
}

async fn log(st: &Shared, exam: i64, device: Option<i64>, kind: &'static str, detail: String) {
    let _ = st
        .db(move |s| s.files().exam_log_add(exam, device, kind, &detail))
        .await;
}

/// `POST /exams/{id}/end`: collects the answers, lifts the lock-down and
/// tells the students.
pub async fn end(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let exam = find_controlled(&st, &auth, id).await?;
    if exam.status != "running" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("the exam is {}", exam.status),
        ));
    }
    let school = auth.session.user.school_id;
    let exam = finish(&st, school, exam, auth.username(), auth.address.clone()).await?;
    st.files.exams_changed.notify_one();
    Ok(Json(json!(exam)))
}

/// Ends a running exam: collection, lock-down lifted, notice, log, audit.
async fn finish(
    st: &Shared,
    school: lectern_store::SchoolId,
    mut exam: Exam,
    actor: &str,
    address: Option<String>,
) -> Result<Exam, ApiError> {
    claim(st, school, &mut exam, "running", "ended").await?;
    if let Some(path) = exam.collect_path.clone() {
        let ids: BTreeSet<i64> = exam.devices.iter().copied().collect();
        let c = super::files::collect_from(
            st,
            school,
            actor,
            address.clone(),
            &ids,
            &path,
            Some(exam.id),
        )
        .await?;
        exam.collection_id = Some(c.id);
    }
    let saved = exam.clone();
    st.db(move |s| s.files().update_exam(school, &saved))
        .await?;
    log(st, exam.id, None, "ended", format!("ended by {actor}")).await;
    st.reload_policies(school).await?;
    let text = format!("Exam \"{}\" is over.", exam.name);
    crate::exams::notice(st, school, actor, &exam.devices, text).await;
    let mut entry = st.audit_entry(school, actor, address, "exam.end", "ok");
    entry.devices = exam.devices.clone();
    entry.detail = format!("exam {}: {}", exam.id, exam.name);
    st.audit(entry).await;
    Ok(exam)
}

/// `GET /exams/{id}/zip`: the answers collected at the end, as a zip.
pub async fn zip(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    auth.require(&st, FEATURE).await?;
    let (exam, _) = find(&st, &auth, id).await?;
    let Some(c) = exam.collection_id else {
        return Err(ApiError::not_found("nothing was collected from this exam"));
    };
    super::files::zip_response(&st, &auth, c).await
}

/// The name the schedule acts under in the audit log and the exam log.
const SCHEDULE: &str = "schedule";

/// After a pass that failed (the store, the disk), the timer waits this long
/// before it tries again instead of spinning on the same due exam.
const RETRY_MS: i64 = 30_000;

/// The longest sleep, so that a wall-clock change is noticed within it.
const MAX_SLEEP_MS: i64 = 300_000;

/// Starts and ends exams at their `starts_at` and `ends_at`. The times are
/// in the store, so after a restart the timer picks them up (an exam whose
/// end passed while the server was down ends at once). It sleeps until the
/// next due time and wakes early when an exam is created, started or ended.
pub async fn timer(st: Shared) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let wait = match run_due(&st).await {
            Ok(next) => next.map_or(MAX_SLEEP_MS, |t| (t - now_ms()).clamp(0, MAX_SLEEP_MS)),
            Err(e) => {
                tracing::error!("exam timer: {}", e.message);
                RETRY_MS
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
            _ = st.files.exams_changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Runs every due start and end; the next time something is due after.
async fn run_due(st: &Shared) -> Result<Option<i64>, ApiError> {
    let timed = st.db(|s| s.files().timed_exams()).await?;
    let now = now_ms();
    let mut next: Option<i64> = None;
    for (school, exam) in timed {
        let by = Actor {
            school,
            name: SCHEDULE,
            address: None,
        };
        let done = match due(&exam, now) {
            Due::At(t) => {
                next = Some(next.map_or(t, |n| n.min(t)));
                Ok(())
            }
            Due::Start => {
                // It may end soon: look again at once.
                next = Some(now);
                begin(st, exam, &by).await.map(drop)
            }
            Due::End => finish(st, school, exam, SCHEDULE, None).await.map(drop),
            Due::Missed => missed(st, school, exam).await,
        };
        match done {
            // A teacher moved it first: nothing left to do.
            Err(e) if e.status == StatusCode::CONFLICT => {}
            other => other?,
        }
    }
    Ok(next)
}

/// What the clock asks of a timed exam.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    /// Nothing yet; next at this time (ms).
    At(i64),
    /// A planned exam's start has come.
    Start,
    /// A running exam's end has come.
    End,
    /// A planned exam's end came before it could start.
    Missed,
}

fn due(e: &Exam, now: i64) -> Due {
    let ended = e.ends_at.is_some_and(|t| t <= now);
    match (e.status.as_str(), e.starts_at, e.ends_at) {
        ("planned", Some(_), _) if ended => Due::Missed,
        ("planned", Some(s), _) if s <= now => Due::Start,
        ("planned", Some(s), _) => Due::At(s),
        ("running", _, Some(_)) if ended => Due::End,
        ("running", _, Some(t)) => Due::At(t),
        _ => Due::At(i64::MAX),
    }
}

/// Closes a planned exam whose end passed before it started (the server was
/// down for all of it): nothing is locked down or collected, the log says why.
async fn missed(
    st: &Shared,
    school: lectern_store::SchoolId,
    mut exam: Exam,
) -> Result<(), ApiError> {
    claim(st, school, &mut exam, "planned", "ended").await?;
    let why = "not started: its end time passed before its start could run".to_string();
    log(st, exam.id, None, "ended", why).await;
    let mut entry = st.audit_entry(school, SCHEDULE, None, "exam.end", "missed");
    entry.devices = exam.devices.clone();
    entry.detail = format!("exam {}: {}", exam.id, exam.name);
    st.audit(entry).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exam(status: &str, starts_at: Option<i64>, ends_at: Option<i64>) -> Exam {
        Exam {
            id: 1,
            name: "x".into(),
            devices: vec![1],
            allowed_apps: vec![],
            allowed_sites: vec![],
            paper_transfer: None,
            paper_name: None,
            collect_path: None,
            starts_at,
            ends_at,
            status: status.into(),
            started_at: None,
            ended_at: None,
            collection_id: None,
            created_by: "t".into(),
            created_at: 0,
        }
    }

    #[test]
    fn the_clock_starts_ends_and_skips_what_it_should() {
        assert_eq!(due(&exam("planned", Some(10), Some(20)), 5), Due::At(10));
        assert_eq!(due(&exam("planned", Some(10), Some(20)), 10), Due::Start);
        assert_eq!(due(&exam("planned", Some(10), None), 99), Due::Start);
        assert_eq!(due(&exam("planned", Some(10), Some(20)), 20), Due::Missed);
        assert_eq!(due(&exam("running", Some(10), Some(20)), 15), Due::At(20));
        assert_eq!(due(&exam("running", None, Some(20)), 20), Due::End);
        assert_eq!(due(&exam("running", Some(10), None), 99), Due::At(i64::MAX));
        assert_eq!(
            due(&exam("ended", Some(10), Some(20)), 99),
            Due::At(i64::MAX)
        );
    }
}
