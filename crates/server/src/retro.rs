//! Retrospective keyword scanning (issue 15, point 3): when terms are added
//! or changed, the school's retained activity (titles, addresses and
//! searches; typed text is never stored, so never rescanned) is scanned for
//! them in the background, and hits become violations marked
//! `retrospective`.
//!
//! A job reads [`CHUNK_ROWS`] activity rows at a time on a blocking thread,
//! scans them and commits the chunk's progress and hits in one transaction.
//! After each chunk it sleeps `work × (100 − p) / p`, so over its wall time
//! it uses at most `p` % of one core (`retro_cpu_percent`, a school
//! setting), and the server keeps serving everyone else. The store keeps one
//! active job per school and never stores a duplicate (see
//! `lectern_store::retro`). Retrospective hits never lock a computer and
//! have no evidence screenshots (the moment is gone); `alert` severities send
//! the live alert event, flagged retrospective, at most [`MAX_ALERTS`] per
//! job.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lectern_keywords::{Library, Scanner};
use lectern_store::retro::{
    NewRetroScan, RetroEvent, RetroHit, RetroProgress, RetroScan, RetroState,
};
use lectern_store::{now_ms, NewAudit, SchoolId, Violation};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;
use crate::hub::ConsoleEvent;
use crate::keywords::Union;
use crate::state::Shared;

/// Activity rows read, scanned and committed at a time.
pub const CHUNK_ROWS: i64 = 2_000;
/// A job stops (done, with a note) once it has added this many violations.
pub const MAX_HITS: i64 = 20_000;
/// Live alert events one job sends at most; further hits are stored quietly.
pub const MAX_ALERTS: u32 = 20;
/// The longest period a rescan covers, days.
pub const MAX_DAYS: u32 = 3650;
/// The store document holding the changed terms offered for a rescan.
pub const OFFER_DOCUMENT: &str = "retro_offer";
/// The audit actor of a job's own entries (its end).
pub const ACTOR: &str = "keyword-rescan";
const DAY_MS: i64 = 86_400_000;

/// Why a job runs.
pub mod reason {
    /// Terms were added or changed (automatically, or the offer taken).
    pub const CHANGED: &str = "changed";
    /// Someone asked for a rescan of the whole library.
    pub const ON_DEMAND: &str = "on_demand";
}

/// Terms changed but not yet rescanned (the school rescans on request).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Offer {
    /// The added or changed terms, newest version of each.
    pub library: Library,
    /// Who changed them last.
    pub by: String,
    /// When (ms).
    pub at: i64,
}

/// Why a job could not start.
#[derive(Debug)]
pub enum StartError {
    /// The school already has a queued or running job.
    Busy,
    /// The store failed.
    Failed(ApiError),
}

impl From<StartError> for ApiError {
    fn from(e: StartError) -> ApiError {
        match e {
            StartError::Busy => ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "A rescan is already running for this school; cancel it or wait for it to finish.",
            )
            .with_reason("rescan_running"),
            StartError::Failed(e) => e,
        }
    }
}

/// The terms of `new` that `old` does not have exactly (new terms, and
/// terms whose category, severity, match type or exceptions changed).
pub fn changed_terms(old: &Library, new: &Library) -> Library {
    let before: HashSet<&lectern_keywords::Term> = old.terms.iter().collect();
    Library::new(
        new.terms
            .iter()
            .filter(|t| !before.contains(t))
            .cloned()
            .collect(),
    )
}

/// The hook the library's save calls: rescans the changed terms at once
/// when the school says so (`retro_auto_days` > 0 and no job running),
/// otherwise offers them on the Keywords page.
pub async fn on_terms_changed(
    st: &Shared,
    school: SchoolId,
    old: &Library,
    new: &Library,
    actor: &str,
) {
    let changed = changed_terms(old, new);
    if changed.is_empty() {
        return;
    }
    if let Err(e) = add_offer(st, school, changed, actor).await {
        tracing::error!("cannot record the rescan offer: {}", e.message);
        return;
    }
    let days = st.settings.get(st, school).retro_auto_days;
    if days == 0 {
        return;
    }
    // Automatic: everything offered (these terms and any left from before)
    // is rescanned now, unless a job is running: then it stays offered.
    let offered = match offer(st, school).await {
        Ok(Some(o)) => o.library,
        _ => return,
    };
    match start(st, school, offered, days, reason::CHANGED, actor, None).await {
        Ok(_) => {
            if let Err(e) = set_offer(st, school, None).await {
                tracing::error!("cannot clear the rescan offer: {}", e.message);
            }
        }
        Err(StartError::Busy) => {}
        Err(StartError::Failed(e)) => {
            tracing::error!("cannot start a keyword rescan: {}", e.message)
        }
    }
}

/// The offer, if terms changed since the last rescan of changed terms:
/// only those still in the library as they are now (a term removed, or
/// changed again, since is not rescanned in its old form).
pub async fn offer(st: &Shared, school: SchoolId) -> Result<Option<Offer>, ApiError> {
    let doc = st.db(move |s| s.document(school, OFFER_DOCUMENT)).await?;
    let Some(mut o) = doc.and_then(|d| serde_json::from_str::<Offer>(&d).ok()) else {
        return Ok(None);
    };
    let current = crate::keywords::school_terms(st, school);
    let now: HashSet<&lectern_keywords::Term> = current.terms.iter().collect();
    o.library.terms.retain(|t| now.contains(t));
    Ok((!o.library.is_empty()).then_some(o))
}

async fn add_offer(
    st: &Shared,
    school: SchoolId,
    changed: Library,
    actor: &str,
) -> Result<(), ApiError> {
    let mut o = offer(st, school).await?.unwrap_or_default();
    // A term changed twice is offered once, as it is now.
    let key = |t: &lectern_keywords::Term| (t.term.to_lowercase(), t.category.to_lowercase());
    let fresh: HashSet<_> = changed.terms.iter().map(key).collect();
    o.library.terms.retain(|t| !fresh.contains(&key(t)));
    o.library.terms.extend(changed.terms);
    o.by = actor.to_string();
    o.at = now_ms();
    set_offer(st, school, Some(o)).await
}

/// Replaces (or with `None` clears) the offer.
pub async fn set_offer(st: &Shared, school: SchoolId, o: Option<Offer>) -> Result<(), ApiError> {
    let body = match o {
        Some(o) => serde_json::to_string(&o).map_err(ApiError::internal)?,
        None => String::new(),
    };
    st.db(move |s| s.set_document(school, OFFER_DOCUMENT, &body))
        .await
}

/// The period a rescan of `days` covers at `now`: never older than the
/// activity kept, nor than the violations kept (a hit older than that would
/// be swept at once).
pub fn period(now: i64, days: u32, activity_days: u32, violation_days: u32) -> (i64, i64) {
    let mut since = now - i64::from(days) * DAY_MS;
    for keep in [activity_days, violation_days] {
        if keep > 0 {
            since = since.max(now - i64::from(keep) * DAY_MS);
        }
    }
    (since, now)
}

/// Stores a job for `terms` over the last `days` and starts it.
pub async fn start(
    st: &Shared,
    school: SchoolId,
    terms: Library,
    days: u32,
    why: &str,
    actor: &str,
    address: Option<String>,
) -> Result<RetroScan, StartError> {
    let e = st.settings.get(st, school);
    let (since, until) = period(now_ms(), days, e.activity_days, e.violation_days);
    let new = NewRetroScan {
        library: serde_json::to_string(&terms)
            .map_err(|e| StartError::Failed(ApiError::internal(e)))?,
        terms: terms.len() as i64,
        reason: why.to_string(),
        started_by: actor.to_string(),
        since,
        until,
        cpu_percent: i64::from(e.retro_cpu_percent.clamp(
            crate::settings::RETRO_CPU_MIN,
            crate::settings::RETRO_CPU_MAX,
        )),
    };
    let scan = st
        .db(move |s| s.retro().retro_start(school, &new))
        .await
        .map_err(StartError::Failed)?
        .ok_or(StartError::Busy)?;
    st.audit(NewAudit {
        school_id: school,
        detail: format!(
            "rescan {}: {} terms ({why}), {days} days, {} activity rows, {}% of a core",
            scan.id, scan.terms, scan.rows_total, scan.cpu_percent
        ),
        ..st.audit_entry(school, actor, address, "keywords.rescan.start", "ok")
    })
    .await;
    tokio::spawn(run(st.clone(), school, scan.clone()));
    Ok(scan)
}

/// Ends an active job as cancelled by `actor`; `None` if it was not active.
pub async fn cancel(
    st: &Shared,
    school: SchoolId,
    id: i64,
    actor: &str,
    address: Option<String>,
) -> Result<Option<RetroScan>, ApiError> {
    let note = format!("cancelled by {actor}");
    let done = st
        .db(move |s| {
            s.retro()
                .retro_finish(school, id, RetroState::Cancelled, &note)
        })
        .await?;
    if let Some(scan) = &done {
        st.audit(NewAudit {
            school_id: school,
            detail: summary(scan),
            ..st.audit_entry(school, actor, address, "keywords.rescan.cancel", "ok")
        })
        .await;
    }
    Ok(done)
}

/// Starts the jobs a stopped server left queued or running, from where
/// they were.
pub async fn resume(st: Shared) {
    match st.db(|s| s.retro().retro_unfinished()).await {
        Ok(jobs) => {
            for (school, scan) in jobs {
                tokio::spawn(run(st.clone(), school, scan));
            }
        }
        Err(e) => tracing::error!("cannot resume keyword rescans: {}", e.message),
    }
}

fn summary(s: &RetroScan) -> String {
    format!(
        "rescan {}: {} of {} rows, {} hits, {} pauses, {} ms working",
        s.id, s.rows_scanned, s.rows_total, s.hits, s.pauses, s.busy_ms
    )
}

/// How a job's loop ended.
enum Ended {
    /// Every row was scanned (with a note when it stopped early).
    Done(String),
    /// Someone cancelled it (already recorded).
    Cancelled,
    /// The server is stopping; the job resumes at the next start.
    Stopping,
}

async fn run(st: Shared, school: SchoolId, scan: RetroScan) {
    let id = scan.id;
    let (state, note) = match scan_all(&st, school, scan).await {
        Ok(Ended::Done(note)) => (RetroState::Done, note),
        Ok(Ended::Cancelled | Ended::Stopping) => return,
        Err(msg) => {
            tracing::error!(rescan = id, "keyword rescan failed: {msg}");
            (RetroState::Failed, msg)
        }
    };
    let ended = st
        .db(move |s| s.retro().retro_finish(school, id, state, &note))
        .await;
    if let Ok(Some(scan)) = ended {
        st.audit(NewAudit {
            school_id: school,
            detail: summary(&scan),
            ..st.audit_entry(
                school,
                ACTOR,
                None,
                "keywords.rescan.finish",
                state.as_str(),
            )
        })
        .await;
    }
}

async fn scan_all(st: &Shared, school: SchoolId, scan: RetroScan) -> Result<Ended, String> {
    let lib: Library = serde_json::from_str(&scan.library)
        .map_err(|e| format!("the stored terms cannot be read: {e}"))?;
    let scanner =
        Scanner::new(&lib).map_err(|e| format!("the stored terms do not compile: {e}"))?;
    let id = scan.id;
    let runner = runner_token();
    let begun = st
        .db(move |s| s.retro().retro_begin(school, id, runner))
        .await
        .map_err(|e| e.message)?;
    if !begun {
        return Ok(Ended::Cancelled);
    }
    let hosts = st
        .db(move |s| s.list_devices(school))
        .await
        .map_err(|e| e.message)?
        .into_iter()
        .map(|d| (d.id, d.hostname))
        .collect();
    let mut worker = Worker {
        st: st.clone(),
        school,
        id,
        runner,
        scanner: Arc::new(scanner),
        hosts,
        monitored: HashMap::new(),
        pending: RetroProgress::default(),
    };
    let percent = u32::try_from(scan.cpu_percent).unwrap_or(crate::settings::RETRO_CPU_DEFAULT);
    let mut alerts = 0;
    loop {
        if *st.shutdown.borrow() {
            return Ok(Ended::Stopping);
        }
        let (back, step, work) = next_chunk(worker).await?;
        worker = back;
        let Step::Chunk { rows, added, hits } = step else {
            return Ok(Ended::Cancelled);
        };
        alerts = announce(st, school, added, alerts);
        if pause(st, &mut worker, work, percent).await {
            return Ok(Ended::Stopping);
        }
        if hits >= MAX_HITS {
            let note = format!("stopped after {MAX_HITS} hits: narrow the terms or the period");
            return close(st, &mut worker, note).await;
        }
        if rows < CHUNK_ROWS {
            return close(st, &mut worker, String::new()).await;
        }
    }
}

/// Scans the next chunk on a blocking thread; the worker comes back with
/// the step and the time it took (added to its working time).
async fn next_chunk(mut worker: Worker) -> Result<(Worker, Step, Duration), String> {
    let began = Instant::now();
    let (mut worker, step) = tokio::task::spawn_blocking(move || {
        let step = worker.step();
        (worker, step)
    })
    .await
    .map_err(|e| format!("the scan stopped: {e}"))?;
    let work = began.elapsed();
    worker.pending.busy_ms += work.as_millis() as i64;
    Ok((worker, step?, work))
}

/// Records the last pause and working time; the job is done with `note`
/// unless it was cancelled meanwhile.
async fn close(st: &Shared, worker: &mut Worker, note: String) -> Result<Ended, String> {
    let (school, id, runner) = (worker.school, worker.id, worker.runner);
    let last = std::mem::take(&mut worker.pending);
    let kept = st
        .db(move |s| s.retro().retro_commit(school, id, runner, &last, &[]))
        .await
        .map_err(|e| e.message)?;
    Ok(match kept {
        Some(_) => Ended::Done(note),
        None => Ended::Cancelled,
    })
}

/// A token no other task of this process has, and unlikely to be one an
/// earlier process left in the store.
fn runner_token() -> i64 {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    now_ms() * 1_000 + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 1_000
}

/// Sleeps so that the job's work stays within `percent` of one core;
/// true when the server is stopping.
async fn pause(st: &Shared, worker: &mut Worker, work: Duration, percent: u32) -> bool {
    let d = pause_for(work, percent);
    if d.is_zero() {
        return false;
    }
    worker.pending.pauses += 1;
    let mut stop = st.shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stop.wait_for(|s| *s) => true,
    }
}

/// The pause after `work` that keeps a job at `percent` of one core.
pub fn pause_for(work: Duration, percent: u32) -> Duration {
    let p = percent.clamp(crate::settings::RETRO_CPU_MIN, 100);
    work * (100 - p) / p
}

/// Sends the live alert of each new violation whose severity alerts,
/// until the job has sent [`MAX_ALERTS`]; returns how many it has sent.
fn announce(st: &Shared, school: SchoolId, added: Vec<Violation>, mut sent: u32) -> u32 {
    for mut v in added {
        if v.action != "alert" || sent >= MAX_ALERTS {
            continue;
        }
        sent += 1;
        let person = v
            .user
            .as_deref()
            .and_then(|u| st.policies.of(school).person_for(u));
        v.person_id = person.as_ref().map(|p| p.id);
        v.person = person.map(|p| p.display_name);
        st.hub.publish(ConsoleEvent::Violation(Box::new(v)));
    }
    sent
}

/// What one chunk did.
enum Step {
    /// The job is no longer running (cancelled): nothing was stored.
    Gone,
    /// Rows read and violations added; `hits` is the job's total.
    Chunk {
        rows: i64,
        added: Vec<Violation>,
        hits: i64,
    },
}

/// A job's scanning side, moved onto a blocking thread for each chunk.
struct Worker {
    st: Shared,
    school: SchoolId,
    id: i64,
    /// This task's token: its chunks are recorded only while it owns the job.
    runner: i64,
    scanner: Arc<Scanner>,
    /// Device names, to resolve whether keyword monitoring applies.
    hosts: HashMap<i64, String>,
    /// The keyword libraries in force (None: monitoring off), per device and user.
    monitored: HashMap<(i64, Option<String>), Option<Arc<Union>>>,
    /// Pauses and working time not yet recorded.
    pending: RetroProgress,
}

impl Worker {
    fn step(&mut self) -> Result<Step, String> {
        let (school, id) = (self.school, self.id);
        let store = self.st.store.clone();
        let retro = store.retro();
        let scan = match retro.retro_scan(school, id).map_err(|e| e.to_string())? {
            Some(s) if s.state == RetroState::Running && s.runner == self.runner => s,
            _ => return Ok(Step::Gone),
        };
        let events = retro
            .retro_chunk(school, &scan, CHUNK_ROWS)
            .map_err(|e| e.to_string())?;
        let hits = self.hits(&events);
        let progress = RetroProgress {
            cursor: events.last().map_or(scan.cursor, |e| e.id),
            rows: events.len() as i64,
            ..std::mem::take(&mut self.pending)
        };
        match retro
            .retro_commit(school, id, self.runner, &progress, &hits)
            .map_err(|e| e.to_string())?
        {
            None => Ok(Step::Gone),
            Some(added) => Ok(Step::Chunk {
                rows: progress.rows,
                hits: scan.hits + added.len() as i64,
                added,
            }),
        }
    }

    /// The matches in `events` of devices and users keyword monitoring
    /// applies to now, one per term and event.
    fn hits(&mut self, events: &[RetroEvent]) -> Vec<RetroHit> {
        let mut out = Vec::new();
        for e in events {
            let Some(libraries) = self.libraries(e.device_id, e.event.user.as_deref()) else {
                continue;
            };
            let texts = lectern_policy::safety::event_texts(&e.event);
            for (source, text, m) in self.scanner.scan_each_term_once(&texts) {
                // Only terms of a library that applies to this device and
                // user, with that library's action.
                let Some(library) = libraries.origin(&m.term, &m.category) else {
                    continue;
                };
                let action = library.action(m.severity);
                out.push(RetroHit {
                    activity_id: e.id,
                    violation: Violation {
                        id: 0,
                        device_id: e.device_id,
                        user: e.event.user.clone(),
                        person_id: None,
                        person: None,
                        term: m.term.clone(),
                        category: m.category.clone(),
                        severity: m.severity,
                        matched: m.matched.to_string(),
                        context: lectern_policy::safety::context(text, m.start, m.end),
                        source: source.into(),
                        action: retro_action(&action).into(),
                        screenshots: 0,
                        at: e.event.at,
                        retrospective: true,
                    },
                });
            }
        }
        out
    }

    /// The keyword libraries that apply to the device and `user` (as the
    /// groups stand now), or `None` when the device's resolved policy for
    /// the user has keyword monitoring off or the device is no longer
    /// enrolled.
    fn libraries(&mut self, device: i64, user: Option<&str>) -> Option<Arc<Union>> {
        let key = (device, user.map(str::to_string));
        if let Some(on) = self.monitored.get(&key) {
            return on.clone();
        }
        let on = self.hosts.get(&device).and_then(|host| {
            let res = self.st.policies.of(self.school).resolve(Some(host), user);
            crate::policies::to_policy(&res.resultant, 0)
                .keyword_policies
                .then(|| {
                    let applied = crate::keywords::applied(&self.st, self.school, Some(host), user);
                    Arc::new(crate::keywords::union_of(&self.st, self.school, applied))
                })
        });
        self.monitored.insert(key, on.clone());
        on
    }
}

/// What a retrospective hit does for a severity's action: never a lock
/// (the moment is long gone) and no screenshots (there is nothing to take),
/// so `lock` alerts and `screenshot` only logs.
pub fn retro_action(action: &str) -> &'static str {
    match action {
        "alert" | "lock" => "alert",
        _ => "log",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_keywords::{MatchType, Term};

    #[test]
    fn changed_terms_are_the_new_and_the_altered() {
        let a = Term::new("alpha", "x", 2, MatchType::WholeWord);
        let b = Term::new("beta", "x", 2, MatchType::WholeWord);
        let old = Library::new(vec![a.clone(), b.clone()]);
        let b5 = Term { severity: 5, ..b };
        let c = Term::new("gamma", "y", 1, MatchType::Contains);
        let new = Library::new(vec![a, b5.clone(), c.clone()]);
        assert_eq!(changed_terms(&old, &new).terms, vec![b5, c]);
        assert!(changed_terms(&new, &new).is_empty());
    }

    #[test]
    fn the_period_never_reaches_past_retention() {
        let now = 1_000 * DAY_MS;
        assert_eq!(period(now, 30, 0, 0), (now - 30 * DAY_MS, now));
        assert_eq!(period(now, 30, 7, 0), (now - 7 * DAY_MS, now));
        assert_eq!(period(now, 30, 90, 10), (now - 10 * DAY_MS, now));
    }

    #[test]
    fn pauses_keep_the_share_and_retro_hits_never_lock() {
        let ms = Duration::from_millis;
        assert_eq!(pause_for(ms(100), 25), ms(300));
        assert_eq!(pause_for(ms(100), 100), ms(0));
        assert_eq!(pause_for(ms(100), 1), ms(1900)); // Clamped to 5 %.
        assert_eq!(retro_action("lock"), "alert");
        assert_eq!(retro_action("screenshot"), "log");
        assert_eq!(retro_action("alert"), "alert");
        assert_eq!(retro_action("log"), "log");
    }
}
