//! The timetable's scheduler: starts scheduled lessons at their period's
//! start and ends them at its end, reading the time from [`Clock`].
//!
//! An occurrence is claimed in the store (one row per schedule and day)
//! before its lesson starts, so a restart never starts it twice; a server
//! that was down at a period's start starts the lesson when it comes back,
//! as long as the period is still running. The lesson itself is an ordinary
//! lesson row (the policies apply it); the scheduler ends it when the
//! period's end passes on the clock.
//!
//! [`Clock`]: crate::clock::Clock

use chrono::{Datelike, NaiveDate};
use lectern_store::timetable::{Period, Repeat, Run, ScheduledLesson};
use lectern_store::{now_ms, Lesson, SchoolId};

use crate::clock::local_ms;
use crate::state::Shared;

/// Longest the scheduler sleeps without looking again, ms.
const MAX_WAIT_MS: i64 = 60_000;

/// Timetable state shared by the API and the scheduler.
#[derive(Default)]
pub struct Timetable {
    /// Woken when periods or scheduled lessons change.
    pub changed: tokio::sync::Notify,
    /// Held across a check and the write it guards (overlapping periods,
    /// clashing scheduled lessons), so two requests cannot both pass.
    pub edit: tokio::sync::Mutex<()>,
}

/// Weekday number: 0 Monday … 6 Sunday.
pub fn weekday(day: NaiveDate) -> u8 {
    day.weekday().num_days_from_monday() as u8
}

/// Whether `p` runs on `day`'s weekday.
pub fn period_runs_on(p: &Period, day: NaiveDate) -> bool {
    p.days & (1 << weekday(day)) != 0
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// `YYYY-MM-DD`.
pub fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Whether the schedule has an occurrence on `day` (cancelled occurrences
/// and series aside).
pub fn occurs_on(s: &ScheduledLesson, day: NaiveDate) -> bool {
    let text = day_text(day);
    match &s.repeat {
        Repeat::Once { day: d } => *d == text,
        Repeat::Weekly {
            weekday: w,
            from,
            until,
        } => {
            *w == weekday(day) && from.as_str() <= text.as_str() && text.as_str() <= until.as_str()
        }
    }
}

/// A period's start and end on `day`, ms.
pub fn period_times(p: &Period, day: NaiveDate) -> (i64, i64) {
    (local_ms(day, p.start_minute), local_ms(day, p.end_minute))
}

/// What the scheduler reads each turn.
struct Plan {
    periods: Vec<Period>,
    schedules: Vec<ScheduledLesson>,
    skipped: Vec<(i64, String)>,
}

impl Plan {
    fn period(&self, id: i64) -> Option<&Period> {
        self.periods.iter().find(|p| p.id == id)
    }
    fn schedule(&self, id: i64) -> Option<&ScheduledLesson> {
        self.schedules.iter().find(|s| s.id == id)
    }
    fn skips(&self, id: i64, day: &str) -> bool {
        self.skipped.iter().any(|(s, d)| *s == id && d == day)
    }
}

/// Runs until shutdown: each turn claims the occurrences due now, moves the
/// open ones on, then sleeps until the next start or end (at most a minute),
/// or until the clock or the timetable changes.
pub async fn scheduler(st: Shared) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let generation = st.clock.generation();
        let wait = match turn(&st).await {
            Ok(w) => w,
            Err(e) => {
                tracing::error!("timetable scheduler: {}", e.message);
                MAX_WAIT_MS
            }
        };
        st.clock.turn_done(generation);
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
            _ = st.clock.moved.notified() => {}
            _ = st.timetable.changed.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One turn for every school; returns how long to wait, ms.
async fn turn(st: &Shared) -> Result<i64, crate::api::ApiError> {
    let schools = st.db(|s| s.schools()).await?;
    let mut wait = MAX_WAIT_MS;
    for school in schools {
        wait = wait.min(turn_of(st, school.id).await?);
    }
    Ok(wait)
}

/// One school's turn; returns how long to wait, ms.
async fn turn_of(st: &Shared, school: SchoolId) -> Result<i64, crate::api::ApiError> {
    let plan = st
        .db(move |s| {
            let t = s.timetable();
            Ok(Plan {
                periods: t.periods(school)?,
                schedules: t.scheduled_lessons(school)?,
                skipped: t.skipped(school)?,
            })
        })
        .await?;
    let now = st.clock.now_ms();
    let today = st.clock.local_now().date();
    let mut next = now + MAX_WAIT_MS;
    for (s, p) in todays(&plan, today) {
        let (start, end) = period_times(p, today);
        if start > now {
            next = next.min(start);
        } else if now < end {
            claim(st, school, s, today, start, end).await?;
        }
    }
    let runs = st.db(move |s| s.timetable().open_runs(school)).await?;
    for run in runs {
        if let Some(end) = advance(st, school, &plan, run, now).await? {
            next = next.min(end);
        }
    }
    Ok((next - now).clamp(5, MAX_WAIT_MS))
}

/// Today's live occurrences with their periods.
fn todays(plan: &Plan, today: NaiveDate) -> Vec<(&ScheduledLesson, &Period)> {
    let text = day_text(today);
    plan.schedules
        .iter()
        .filter(|s| s.cancelled_at.is_none() && occurs_on(s, today) && !plan.skips(s.id, &text))
        .filter_map(|s| Some((s, plan.period(s.period_id)?)))
        .filter(|(_, p)| period_runs_on(p, today))
        .collect()
}

async fn claim(
    st: &Shared,
    school: SchoolId,
    s: &ScheduledLesson,
    day: NaiveDate,
    starts_at: i64,
    ends_at: i64,
) -> Result<(), crate::api::ApiError> {
    let run = Run {
        schedule_id: s.id,
        day: day_text(day),
        starts_at,
        ends_at,
        lesson_id: None,
        outcome: "due".into(),
        finished: false,
    };
    st.db(move |db| db.timetable().claim_run(school, &run))
        .await?;
    Ok(())
}

/// Moves an open occurrence on: ends it (its period is over, or it was
/// cancelled) or starts its lesson. Returns its end while it runs.
async fn advance(
    st: &Shared,
    school: SchoolId,
    plan: &Plan,
    mut run: Run,
    now: i64,
) -> Result<Option<i64>, crate::api::ApiError> {
    let cancelled = plan
        .schedule(run.schedule_id)
        .is_none_or(|s| s.cancelled_at.is_some())
        || plan.skips(run.schedule_id, &run.day);
    if cancelled || now >= run.ends_at {
        if let Some(id) = run.lesson_id {
            end_lesson(st, school, id, run.schedule_id).await?;
        }
        run.outcome = match (cancelled, run.outcome.as_str()) {
            (true, _) => "cancelled".into(),
            (false, "clash") => "clash".into(),
            (false, "due") => "missed".into(),
            _ => "ended".into(),
        };
        run.finished = true;
        return store_run(st, school, run).await.map(|_| None);
    }
    if run.lesson_id.is_none() {
        let Some(s) = plan.schedule(run.schedule_id) else {
            return Ok(None);
        };
        start_lesson(st, school, s, &mut run, now).await?;
    }
    Ok((!run.finished).then_some(run.ends_at))
}

async fn store_run(st: &Shared, school: SchoolId, run: Run) -> Result<(), crate::api::ApiError> {
    st.db(move |db| db.timetable().update_run(school, &run))
        .await
}

/// Starts the occurrence's lesson for the rest of its period, unless the
/// class has a lesson running already (then the occurrence is a clash: one
/// class has one lesson at a time). The lesson row is in system time, so
/// the policies apply it as any lesson; with the clock moved (debug builds)
/// it lasts what is left of the period on the clock.
async fn start_lesson(
    st: &Shared,
    school: SchoolId,
    s: &ScheduledLesson,
    run: &mut Run,
    now: i64,
) -> Result<(), crate::api::ApiError> {
    let real_now = now_ms();
    let group = s.group_id;
    let running = st
        .db(move |db| db.lessons_since(school, real_now))
        .await?
        .into_iter()
        .find(|l| l.group_id == group && l.active_at(real_now));
    let class = st
        .policies
        .of(school)
        .group(s.group_id)
        .map(|g| g.group.name)
        .unwrap_or_else(|| format!("group {}", s.group_id));
    if !teacher_may_still(st, school, s).await? {
        run.outcome = "refused".into();
        run.finished = true;
        let mut entry = st.audit_entry(school, &s.teacher, None, "lesson.start", "refused");
        entry.detail = format!(
            "scheduled lesson {} on {} for {class:?}: {} no longer holds lessons.manage with control of the class",
            s.id, run.day, s.teacher
        );
        st.audit(entry).await;
        return store_run(st, school, run.clone()).await;
    }
    if let Some(l) = running {
        run.outcome = "clash".into();
        run.finished = true;
        let mut entry = st.audit_entry(school, &s.teacher, None, "lesson.start", "refused");
        entry.detail = format!(
            "scheduled lesson {} on {} for {class:?}: the class already has lesson {}",
            s.id, run.day, l.id
        );
        st.audit(entry).await;
        return store_run(st, school, run.clone()).await;
    }
    let lesson = Lesson {
        id: 0,
        group_id: s.group_id,
        teacher: s.teacher.clone(),
        restrictions: s.restrictions.clone(),
        starts_at: real_now,
        ends_at: real_now + (run.ends_at - now).max(1),
        ended_at: None,
    };
    let lesson = st.db(move |db| db.create_lesson(school, &lesson)).await?;
    run.lesson_id = Some(lesson.id);
    run.outcome = "started".into();
    store_run(st, school, run.clone()).await?;
    let mut entry = st.audit_entry(school, &s.teacher, None, "lesson.start", "ok");
    entry.detail = format!(
        "lesson {} for {class:?} from scheduled lesson {} on {}: {}",
        lesson.id,
        s.id,
        run.day,
        serde_json::to_string(&lesson.restrictions).unwrap_or_default()
    );
    st.audit(entry).await;
    st.reload_policies(school).await?;
    st.lessons_changed.notify_one();
    Ok(())
}

/// Whether the teacher who scheduled the lesson still may start it now:
/// the account exists and holds `lessons.manage` with control of the class
/// (rights change after a series is planned; the start is judged on today's).
async fn teacher_may_still(
    st: &Shared,
    school: SchoolId,
    s: &ScheduledLesson,
) -> Result<bool, crate::api::ApiError> {
    let users = st.db(move |db| db.list_users(school)).await?;
    let Some(user) = users.iter().find(|u| u.username == s.teacher) else {
        return Ok(false);
    };
    let rights = st
        .policies
        .of(school)
        .account_rights(&user.username, user.role == lectern_store::Role::Admin);
    Ok(rights.allows("lessons.manage")
        && (rights.all
            || rights.group_access.get(&s.group_id)
                == Some(&lectern_policy::access::Access::Control)))
}

async fn end_lesson(
    st: &Shared,
    school: SchoolId,
    id: i64,
    schedule: i64,
) -> Result<(), crate::api::ApiError> {
    let at = now_ms();
    let ended = st.db(move |db| db.end_lesson(school, id, at)).await?;
    // Only when this call ended it: a teacher may have ended it already.
    if ended.is_some_and(|l| l.ended_at == Some(at)) {
        let mut entry = st.audit_entry(school, "timetable", None, "lesson.end", "ok");
        entry.detail = format!("lesson {id} (scheduled lesson {schedule})");
        st.audit(entry).await;
    }
    st.reload_policies(school).await?;
    st.lessons_changed.notify_one();
    Ok(())
}
