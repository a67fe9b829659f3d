//! The timetable: periods of the school day, room bookings and lessons
//! scheduled ahead (once or weekly). The scheduler that starts and ends the
//! lessons is `crate::timetable`.
//!
//! Rights: `timetable.manage` edits periods and cancels anyone's booking;
//! `rooms.book` books a room (a computer group the caller can see) and
//! cancels one's own bookings; scheduling a lesson needs `lessons.manage`
//! and control of the class, as starting one does. Each caller sees the
//! bookings of rooms and the lessons of classes they can see.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{Days, NaiveDate};
use lectern_policy::access::Access;
use lectern_policy::groups::GroupKind;
use lectern_store::timetable::{Booking, Period, Repeat, ScheduledLesson};
use lectern_store::GroupRecord;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::lessons::{may_control_class, parse_restrictions};
use super::{ApiError, JsonBody};
use crate::state::Shared;
use crate::timetable::{day_text, occurs_on, parse_day, period_runs_on, period_times, weekday};

/// Most periods a school day has.
const MAX_PERIODS: usize = 24;
/// Longest period or booking note name, characters.
const MAX_NAME: usize = 40;
/// Longest booking note, characters.
const MAX_NOTE: usize = 200;
/// Most future bookings one user holds.
const MAX_BOOKINGS_PER_USER: usize = 200;
/// Most scheduled lessons (series not cancelled) a school holds.
const MAX_SERIES: usize = 500;
/// How far ahead a booking or a weekly series may reach, days.
const MAX_AHEAD_DAYS: u64 = 400;
/// Rights that show the timetable's week.
const READERS: &[&str] = &["rooms.book", "lessons.manage", "timetable.manage"];

/// Refuses (403, audited) callers with none of [`READERS`].
async fn require_reader(st: &Shared, auth: &Authed) -> Result<(), ApiError> {
    if READERS.iter().any(|f| auth.rights.allows(f)) {
        return Ok(());
    }
    auth.deny(st, "the timetable", Vec::new()).await;
    Err(ApiError::missing_right("rooms.book"))
}

fn access_to(auth: &Authed, group: i64) -> Access {
    if auth.rights.all {
        return Access::Control;
    }
    auth.rights
        .group_access
        .get(&group)
        .copied()
        .unwrap_or_default()
}

/// Whether the caller sees this room's bookings.
fn sees_room(auth: &Authed, group: i64) -> bool {
    auth.rights.allows("timetable.manage") || access_to(auth, group) >= Access::View
}

fn hhmm(minute: u32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

fn period_view(p: &Period) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "start": hhmm(p.start_minute),
        "end": hhmm(p.end_minute),
        "days": (0..7).filter(|d| p.days & (1 << d) != 0).collect::<Vec<u8>>(),
    })
}

fn group_name(st: &Shared, school: lectern_store::SchoolId, id: i64) -> String {
    st.policies
        .of(school)
        .group(id)
        .map(|g| g.group.name)
        .unwrap_or_else(|| format!("group {id}"))
}

async fn periods_of(st: &Shared, school: lectern_store::SchoolId) -> Result<Vec<Period>, ApiError> {
    st.db(move |s| s.timetable().periods(school)).await
}

/// `GET /timetable/periods`.
pub async fn periods(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    require_reader(&st, &auth).await?;
    let list = periods_of(&st, auth.school()).await?;
    Ok(Json(json!(list
        .iter()
        .map(period_view)
        .collect::<Vec<_>>())))
}

/// A period as sent: name, `HH:MM` start and end, weekdays 0 (Monday) to 6.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodIn {
    name: String,
    start: String,
    end: String,
    days: Vec<u8>,
}

/// Checks a period on its own and against the others (`id` aside): a
/// clear 400, or 409 naming the period it overlaps.
fn check_period(b: &PeriodIn, id: i64, others: &[Period]) -> Result<Period, ApiError> {
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "a period needs a name of 1 to {MAX_NAME} characters"
        )));
    }
    let (Some(start), Some(end)) = (parse_hhmm(&b.start), parse_hhmm(&b.end)) else {
        return Err(ApiError::bad_request(
            "give start and end as HH:MM (00:00 to 24:00)",
        ));
    };
    if start >= end {
        return Err(ApiError::bad_request("a period must end after it starts"));
    }
    if b.days.is_empty() || b.days.iter().any(|d| *d > 6) {
        return Err(ApiError::bad_request(
            "give the weekdays the period runs on, 0 (Monday) to 6 (Sunday)",
        ));
    }
    let p = Period {
        id,
        name: name.to_string(),
        start_minute: start,
        end_minute: end,
        days: b.days.iter().fold(0, |m, d| m | (1 << d)),
    };
    let clash = others.iter().find(|o| {
        o.id != id
            && o.days & p.days != 0
            && o.start_minute < p.end_minute
            && p.start_minute < o.end_minute
    });
    if let Some(o) = clash {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{:?} overlaps {:?} ({}–{}) on a shared day: periods of one day cannot overlap",
                p.name,
                o.name,
                hhmm(o.start_minute),
                hhmm(o.end_minute)
            ),
        ));
    }
    Ok(p)
}

/// `POST /timetable/periods`.
pub async fn create_period(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<PeriodIn>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "timetable.manage").await?;
    let JsonBody(b) = body?;
    let _edit = st.timetable.edit.lock().await;
    let others = periods_of(&st, auth.school()).await?;
    if others.len() >= MAX_PERIODS {
        return Err(ApiError::bad_request(format!(
            "a school day has at most {MAX_PERIODS} periods"
        )));
    }
    let p = check_period(&b, 0, &others)?;
    let school = auth.school();
    let p = st.db(move |s| s.timetable().add_period(school, &p)).await?;
    audit(
        &st,
        &auth,
        "timetable.period",
        format!("added {}", period_view(&p)),
    )
    .await;
    st.timetable.changed.notify_one();
    Ok((StatusCode::CREATED, Json(period_view(&p))))
}

/// `PUT /timetable/periods/{id}`.
pub async fn update_period(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<PeriodIn>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "timetable.manage").await?;
    let JsonBody(b) = body?;
    let _edit = st.timetable.edit.lock().await;
    let others = periods_of(&st, auth.school()).await?;
    if !others.iter().any(|o| o.id == id) {
        return Err(ApiError::not_found(format!("no period {id}")));
    }
    let p = check_period(&b, id, &others)?;
    let school = auth.school();
    let stored = p.clone();
    st.db(move |s| s.timetable().update_period(school, &stored))
        .await?;
    audit(
        &st,
        &auth,
        "timetable.period",
        format!("changed {}", period_view(&p)),
    )
    .await;
    st.timetable.changed.notify_one();
    Ok(Json(period_view(&p)))
}

/// `DELETE /timetable/periods/{id}`: 409 while a booking or scheduled
/// lesson uses it.
pub async fn delete_period(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, "timetable.manage").await?;
    let school = auth.school();
    let deleted = st
        .db(move |s| s.timetable().delete_period(school, id))
        .await
        .map_err(|e| match e.status {
            StatusCode::CONFLICT => ApiError::new(
                StatusCode::CONFLICT,
                "bookings or scheduled lessons use this period: cancel them first",
            ),
            _ => e,
        })?;
    if !deleted {
        return Err(ApiError::not_found(format!("no period {id}")));
    }
    audit(
        &st,
        &auth,
        "timetable.period",
        format!("deleted period {id}"),
    )
    .await;
    st.timetable.changed.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

async fn audit(st: &Shared, auth: &Authed, action: &str, detail: String) {
    let mut entry = auth.audit_entry(st, action, "ok");
    entry.detail = detail;
    st.audit(entry).await;
}

/// `?start=YYYY-MM-DD` (a week's first day; default: this week's Monday).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct WeekQuery {
    start: Option<String>,
}

/// `GET /timetable/week`: seven days from `start`: the periods, the
/// bookings of rooms the caller can see, the occurrences of lessons
/// scheduled for classes the caller can see, and the rooms and classes the
/// caller may book and schedule for.
pub async fn week(
    State(st): State<Shared>,
    auth: Authed,
    q: Result<Query<WeekQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_reader(&st, &auth).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let today = st.clock.local_now().date();
    let start = match q.start {
        Some(s) => {
            parse_day(&s).ok_or_else(|| ApiError::bad_request("start must be YYYY-MM-DD"))?
        }
        None => today - Days::new(u64::from(weekday(today))),
    };
    let days: Vec<NaiveDate> = (0..7).map(|i| start + Days::new(i)).collect();
    let (from, until) = (day_text(days[0]), day_text(days[6]));
    let school = auth.school();
    let (periods, bookings, schedules, skipped, runs, groups) = st
        .db(move |s| {
            let t = s.timetable();
            Ok((
                t.periods(school)?,
                t.bookings(school, &from, &until)?,
                t.scheduled_lessons(school)?,
                t.skipped(school)?,
                t.runs(school, &from, &until)?,
                s.list_groups(school)?,
            ))
        })
        .await?;
    let bookings: Vec<Value> = bookings
        .iter()
        .filter(|b| sees_room(&auth, b.group_id))
        .map(|b| booking_view(&st, &auth, b))
        .collect();
    let mut lessons = Vec::new();
    for day in &days {
        let text = day_text(*day);
        for s in schedules.iter().filter(|s| {
            s.cancelled_at.is_none()
                && occurs_on(s, *day)
                && access_to(&auth, s.group_id) >= Access::View
        }) {
            let skipped = skipped.iter().any(|(id, d)| *id == s.id && *d == text);
            let run = runs.iter().find(|r| r.schedule_id == s.id && r.day == text);
            let status = match (skipped, run) {
                (true, _) => "cancelled",
                (false, Some(r)) if !r.finished && r.lesson_id.is_some() => "running",
                (false, Some(r)) => r.outcome.as_str(),
                (false, None) => "planned",
            };
            let mut v = schedule_view(&st, &auth, s);
            v["day"] = json!(text);
            v["status"] = json!(status);
            lessons.push(v);
        }
    }
    Ok(Json(json!({
        "start": day_text(start),
        "today": day_text(today),
        "now": st.clock.now_ms(),
        "days": days.iter().map(|d| json!({"day": day_text(*d), "weekday": weekday(*d)})).collect::<Vec<_>>(),
        "periods": periods.iter().map(period_view).collect::<Vec<_>>(),
        "rooms": choices(&groups, |g| is_room(g) && auth.rights.allows("rooms.book") && access_to(&auth, g.group.id) >= Access::View),
        "classes": choices(&groups, |g| auth.rights.allows("lessons.manage") && may_control_class(&auth, g.group.id)),
        "bookings": bookings,
        "lessons": lessons,
    })))
}

fn is_room(g: &GroupRecord) -> bool {
    g.group.kind == GroupKind::Computer
}

fn choices(groups: &[GroupRecord], keep: impl Fn(&GroupRecord) -> bool) -> Vec<Value> {
    groups
        .iter()
        .filter(|g| keep(g))
        .map(|g| json!({"id": g.group.id, "name": g.group.name}))
        .collect()
}

fn may_cancel_booking(auth: &Authed, b: &Booking) -> bool {
    auth.rights.allows("timetable.manage")
        || (auth.rights.allows("rooms.book") && b.booked_by == auth.username())
}

fn booking_view(st: &Shared, auth: &Authed, b: &Booking) -> Value {
    json!({
        "id": b.id,
        "group_id": b.group_id,
        "room": group_name(st, auth.school(), b.group_id),
        "day": b.day,
        "period_id": b.period_id,
        "booked_by": b.booked_by,
        "note": b.note,
        "created_at": b.created_at,
        "can_cancel": may_cancel_booking(auth, b),
    })
}

/// A booking as sent.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct BookingIn {
    group_id: i64,
    day: String,
    period_id: i64,
    note: String,
}

/// The period `id` on `day`, refused unless it runs that weekday and has
/// not ended yet on the server's clock.
fn period_on(st: &Shared, periods: &[Period], id: i64, day: NaiveDate) -> Result<Period, ApiError> {
    let p = periods
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| ApiError::bad_request(format!("no period {id}")))?;
    if !period_runs_on(p, day) {
        return Err(ApiError::bad_request(format!(
            "{:?} does not run on {}",
            p.name,
            day.format("%A %Y-%m-%d")
        )));
    }
    if period_times(p, day).1 <= st.clock.now_ms() {
        return Err(ApiError::bad_request(format!(
            "{:?} on {} is over",
            p.name,
            day_text(day)
        )));
    }
    Ok(p.clone())
}

/// A day within [`MAX_AHEAD_DAYS`] of today.
fn future_day(st: &Shared, s: &str) -> Result<NaiveDate, ApiError> {
    let day = parse_day(s).ok_or_else(|| ApiError::bad_request("give the day as YYYY-MM-DD"))?;
    if day > st.clock.local_now().date() + Days::new(MAX_AHEAD_DAYS) {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_AHEAD_DAYS} days ahead"
        )));
    }
    Ok(day)
}

/// `POST /timetable/bookings`: books a room for a period of a day; 409 if
/// it is booked already.
pub async fn book(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<BookingIn>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "rooms.book").await?;
    let JsonBody(b) = body?;
    let room = st
        .policies
        .of(auth.school())
        .group(b.group_id)
        .filter(is_room)
        .ok_or_else(|| ApiError::bad_request(format!("no room (computer group) {}", b.group_id)))?;
    if access_to(&auth, b.group_id) < Access::View {
        auth.deny(&st, &format!("book room {}", b.group_id), Vec::new())
            .await;
        return Err(ApiError::forbidden(format!(
            "You can't book {:?}: you can't see it. Ask your administrator.",
            room.group.name
        )));
    }
    let note = b.note.trim().to_string();
    if note.chars().count() > MAX_NOTE {
        return Err(ApiError::bad_request(format!(
            "a note has at most {MAX_NOTE} characters"
        )));
    }
    let day = future_day(&st, &b.day)?;
    let p = period_on(
        &st,
        &periods_of(&st, auth.school()).await?,
        b.period_id,
        day,
    )?;
    let (school, me, today) = (
        auth.school(),
        auth.username().to_string(),
        day_text(st.clock.local_now().date()),
    );
    let held = st
        .db(move |s| s.timetable().bookings(school, &today, "9999-12-31"))
        .await?
        .iter()
        .filter(|x| x.booked_by == me)
        .count();
    if held >= MAX_BOOKINGS_PER_USER {
        return Err(ApiError::bad_request(format!(
            "you hold {MAX_BOOKINGS_PER_USER} bookings already; cancel some first"
        )));
    }
    let booking = Booking {
        id: 0,
        group_id: b.group_id,
        day: day_text(day),
        period_id: p.id,
        booked_by: auth.username().to_string(),
        note,
        created_at: st.clock.now_ms(),
    };
    let stored = st
        .db(move |s| s.timetable().add_booking(school, &booking))
        .await;
    let booking = match stored {
        Ok(b) => b,
        Err(e) if e.status == StatusCode::CONFLICT => {
            return Err(double_booking(&st, auth.school(), &room.group.name, &p, day).await)
        }
        Err(e) => return Err(e),
    };
    audit(
        &st,
        &auth,
        "timetable.book",
        format!(
            "booked {:?} for {} {:?} (booking {})",
            room.group.name, booking.day, p.name, booking.id
        ),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(booking_view(&st, &auth, &booking)),
    ))
}

/// The 409 for a room booked already, naming who holds it.
async fn double_booking(
    st: &Shared,
    school: lectern_store::SchoolId,
    room: &str,
    p: &Period,
    day: NaiveDate,
) -> ApiError {
    let (text, pid) = (day_text(day), p.id);
    let holder = st
        .db(move |s| s.timetable().bookings(school, &text, &text))
        .await
        .ok()
        .and_then(|list| list.into_iter().find(|b| b.period_id == pid))
        .map(|b| b.booked_by)
        .unwrap_or_else(|| "someone".into());
    ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "{room:?} is already booked by {holder} for {:?} on {}: a room has one booking per period",
            p.name,
            day_text(day)
        ),
    )
}

/// `DELETE /timetable/bookings/{id}`: one's own, or any with `timetable.manage`.
pub async fn cancel_booking(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if !["rooms.book", "timetable.manage"]
        .iter()
        .any(|f| auth.rights.allows(f))
    {
        auth.deny(&st, &format!("cancel booking {id}"), Vec::new())
            .await;
        return Err(ApiError::missing_right("rooms.book"));
    }
    let school = auth.school();
    let b = st
        .db(move |s| s.timetable().booking(school, id))
        .await?
        .filter(|b| sees_room(&auth, b.group_id))
        .ok_or_else(|| ApiError::not_found(format!("no booking {id}")))?;
    if !may_cancel_booking(&auth, &b) {
        auth.deny(
            &st,
            &format!("cancel booking {id} of {}", b.booked_by),
            Vec::new(),
        )
        .await;
        return Err(ApiError::missing_right("timetable.manage"));
    }
    st.db(move |s| s.timetable().delete_booking(school, id))
        .await?;
    audit(
        &st,
        &auth,
        "timetable.unbook",
        format!(
            "cancelled booking {id} of {:?} for {} (booked by {})",
            group_name(&st, school, b.group_id),
            b.day,
            b.booked_by
        ),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

fn schedule_view(st: &Shared, auth: &Authed, s: &ScheduledLesson) -> Value {
    json!({
        "id": s.id,
        "group_id": s.group_id,
        "class": group_name(st, auth.school(), s.group_id),
        "period_id": s.period_id,
        "repeat": s.repeat,
        "restrictions": s.restrictions,
        "teacher": s.teacher,
        "created_at": s.created_at,
        "cancelled_at": s.cancelled_at,
        "can_cancel": auth.rights.allows("lessons.manage") && may_control_class(auth, s.group_id),
    })
}

/// `GET /timetable/lessons`: scheduled lessons of classes the caller can see.
pub async fn scheduled(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "lessons.manage").await?;
    let school = auth.school();
    let list = st
        .db(move |s| s.timetable().scheduled_lessons(school))
        .await?;
    Ok(Json(json!(list
        .iter()
        .filter(|s| access_to(&auth, s.group_id) >= Access::View)
        .map(|s| schedule_view(&st, &auth, s))
        .collect::<Vec<_>>())))
}

/// A scheduled lesson as sent: `day` for once, or `weekday` (0 Monday … 6
/// Sunday) with `from` and `until` for weekly.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleIn {
    group_id: i64,
    period_id: i64,
    day: Option<String>,
    weekday: Option<u8>,
    from: Option<String>,
    until: Option<String>,
    restrictions: Value,
}

/// The repeat a request asks for, checked against the period and the clock.
fn repeat_of(st: &Shared, b: &ScheduleIn, periods: &[Period]) -> Result<Repeat, ApiError> {
    match (&b.day, b.weekday, &b.from, &b.until) {
        (Some(day), None, None, None) => {
            let d = future_day(st, day)?;
            period_on(st, periods, b.period_id, d)?;
            Ok(Repeat::Once { day: day_text(d) })
        }
        (None, Some(w), Some(from), Some(until)) if w <= 6 => {
            let f =
                parse_day(from).ok_or_else(|| ApiError::bad_request("from must be YYYY-MM-DD"))?;
            let u = future_day(st, until)?;
            if f > u {
                return Err(ApiError::bad_request("from must not be after until"));
            }
            if u < st.clock.local_now().date() {
                return Err(ApiError::bad_request("until is in the past"));
            }
            // Bounds the occurrences (and cancelled ones) a series can have.
            if u - f > chrono::Duration::days(MAX_AHEAD_DAYS as i64) {
                return Err(ApiError::bad_request(format!(
                    "a weekly lesson spans at most {MAX_AHEAD_DAYS} days"
                )));
            }
            let p = periods
                .iter()
                .find(|p| p.id == b.period_id)
                .ok_or_else(|| ApiError::bad_request(format!("no period {}", b.period_id)))?;
            if p.days & (1 << w) == 0 {
                return Err(ApiError::bad_request(format!(
                    "{:?} does not run on that weekday",
                    p.name
                )));
            }
            Ok(Repeat::Weekly {
                weekday: w,
                from: day_text(f),
                until: day_text(u),
            })
        }
        _ => Err(ApiError::bad_request(
            "give day (once), or weekday (0 Monday to 6 Sunday) with from and until (weekly)",
        )),
    }
}

/// Whether two schedules of one class and period share a day.
fn share_a_day(a: &Repeat, b: &Repeat) -> bool {
    let on = |r: &Repeat, day: &str| match r {
        Repeat::Once { day: d } => d == day,
        Repeat::Weekly {
            weekday: w,
            from,
            until,
        } => {
            parse_day(day).is_some_and(|d| weekday(d) == *w)
                && from.as_str() <= day
                && day <= until.as_str()
        }
    };
    match (a, b) {
        (Repeat::Once { day }, other) | (other, Repeat::Once { day }) => on(other, day),
        (
            Repeat::Weekly {
                weekday: w1,
                from: f1,
                until: u1,
            },
            Repeat::Weekly {
                weekday: w2,
                from: f2,
                until: u2,
            },
        ) => w1 == w2 && f1 <= u2 && f2 <= u1,
    }
}

/// `POST /timetable/lessons`: schedules a lesson for a class.
pub async fn schedule(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<ScheduleIn>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "lessons.manage").await?;
    let JsonBody(b) = body?;
    let class = st
        .policies
        .of(auth.school())
        .group(b.group_id)
        .ok_or_else(|| ApiError::bad_request(format!("no group {}", b.group_id)))?;
    if !may_control_class(&auth, b.group_id) {
        auth.deny(
            &st,
            &format!("scheduled lesson for group {}", b.group_id),
            Vec::new(),
        )
        .await;
        return Err(ApiError::forbidden(format!(
            "You can't control the class {:?}. Ask your administrator.",
            class.group.name
        ))
        .with_reason(super::reason::NO_CONTROL_OF_CLASS));
    }
    let restrictions = parse_restrictions(&b.restrictions)?;
    let _edit = st.timetable.edit.lock().await;
    let repeat = repeat_of(&st, &b, &periods_of(&st, auth.school()).await?)?;
    let school = auth.school();
    let live: Vec<ScheduledLesson> = st
        .db(move |s| s.timetable().scheduled_lessons(school))
        .await?
        .into_iter()
        .filter(|s| s.cancelled_at.is_none())
        .collect();
    if live.len() >= MAX_SERIES {
        return Err(ApiError::bad_request(format!(
            "a school holds at most {MAX_SERIES} scheduled lessons"
        )));
    }
    if let Some(c) = live.iter().find(|s| {
        s.group_id == b.group_id && s.period_id == b.period_id && share_a_day(&s.repeat, &repeat)
    }) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{:?} already has a lesson in that period (scheduled lesson {} by {}): one class has one lesson at a time",
                class.group.name, c.id, c.teacher
            ),
        ));
    }
    let s = ScheduledLesson {
        id: 0,
        group_id: b.group_id,
        period_id: b.period_id,
        repeat,
        restrictions,
        teacher: auth.username().to_string(),
        created_at: st.clock.now_ms(),
        cancelled_at: None,
    };
    let s = st
        .db(move |db| db.timetable().add_scheduled_lesson(school, &s))
        .await?;
    audit(
        &st,
        &auth,
        "timetable.lesson",
        format!(
            "scheduled lesson {} for {:?}: {}",
            s.id,
            class.group.name,
            serde_json::to_string(&s.repeat).unwrap_or_default()
        ),
    )
    .await;
    st.timetable.changed.notify_one();
    Ok((StatusCode::CREATED, Json(schedule_view(&st, &auth, &s))))
}

/// The scheduled lesson `id`, if the caller may change it (`lessons.manage`
/// checked first, then control of its class).
async fn own_schedule(st: &Shared, auth: &Authed, id: i64) -> Result<ScheduledLesson, ApiError> {
    auth.require(st, "lessons.manage").await?;
    let school = auth.school();
    let s = st
        .db(move |s| s.timetable().scheduled_lessons(school))
        .await?
        .into_iter()
        .find(|s| s.id == id && access_to(auth, s.group_id) >= Access::View)
        .ok_or_else(|| ApiError::not_found(format!("no scheduled lesson {id}")))?;
    if !may_control_class(auth, s.group_id) {
        auth.deny(st, &format!("change scheduled lesson {id}"), Vec::new())
            .await;
        return Err(ApiError::forbidden(
            "You can't control this lesson's class. Ask your administrator.",
        )
        .with_reason(super::reason::NO_CONTROL_OF_CLASS));
    }
    Ok(s)
}

/// `DELETE /timetable/lessons/{id}`: cancels the series; a running
/// occurrence ends at once.
pub async fn cancel_series(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let s = own_schedule(&st, &auth, id).await?;
    let (school, at) = (auth.school(), st.clock.now_ms());
    if !st
        .db(move |db| db.timetable().cancel_scheduled_lesson(school, id, at))
        .await?
    {
        return Err(ApiError::not_found(format!(
            "scheduled lesson {id} is cancelled already"
        )));
    }
    audit(
        &st,
        &auth,
        "timetable.lesson",
        format!(
            "cancelled scheduled lesson {id} for {:?}",
            group_name(&st, school, s.group_id)
        ),
    )
    .await;
    st.timetable.changed.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// The occurrence to cancel.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct OccurrenceIn {
    day: String,
}

/// `POST /timetable/lessons/{id}/cancel`: cancels one occurrence (`day`);
/// if it is running it ends at once.
pub async fn cancel_occurrence(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
    body: Result<JsonBody<OccurrenceIn>, ApiError>,
) -> Result<StatusCode, ApiError> {
    let s = own_schedule(&st, &auth, id).await?;
    let JsonBody(b) = body?;
    let day = parse_day(&b.day)
        .filter(|d| occurs_on(&s, *d))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "scheduled lesson {id} has no lesson on {:?}",
                b.day
            ))
        })?;
    let (school, text) = (auth.school(), day_text(day));
    st.db(move |db| db.timetable().skip_occurrence(school, id, &text))
        .await?;
    audit(
        &st,
        &auth,
        "timetable.lesson",
        format!(
            "cancelled {:?}'s lesson on {} (scheduled lesson {id})",
            group_name(&st, school, s.group_id),
            day_text(day)
        ),
    )
    .await;
    st.timetable.changed.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

/// The clock as `GET /debug/clock` shows it.
#[cfg(debug_assertions)]
fn clock_view(st: &Shared) -> Value {
    json!({
        "now": st.clock.now_ms(),
        "local": st.clock.local_now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        "offset_ms": st.clock.offset_ms(),
    })
}

/// `GET /debug/clock` (debug builds only).
#[cfg(debug_assertions)]
pub async fn get_clock(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "timetable.manage").await?;
    Ok(Json(clock_view(&st)))
}

/// The time to set: `now` (ms) or `local` (`YYYY-MM-DDTHH:MM`, server time).
#[cfg(debug_assertions)]
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ClockIn {
    now: Option<i64>,
    local: Option<String>,
}

/// `PUT /debug/clock` (debug builds only): sets the server's clock, so
/// tests move the timetable forward without sleeping.
#[cfg(debug_assertions)]
pub async fn set_clock(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<ClockIn>, ApiError>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "timetable.manage").await?;
    let JsonBody(b) = body?;
    let now = match (b.now, b.local) {
        (Some(ms), None) => ms,
        (None, Some(local)) => chrono::NaiveDateTime::parse_from_str(&local, "%Y-%m-%dT%H:%M")
            .map(|t| {
                let minute = chrono::Timelike::num_seconds_from_midnight(&t.time()) / 60;
                crate::clock::local_ms(t.date(), minute)
            })
            .map_err(|_| ApiError::bad_request("local must be YYYY-MM-DDTHH:MM"))?,
        _ => {
            return Err(ApiError::bad_request(
                "give now (ms) or local (YYYY-MM-DDTHH:MM)",
            ))
        }
    };
    st.clock.set(now).await;
    audit(&st, &auth, "clock.set", format!("clock set to {now}")).await;
    Ok(Json(clock_view(&st)))
}

/// `/debug/clock` in a release build: the clock cannot be moved there. The
/// right is still checked first, so every caller without it is refused as
/// on any route, and the rest get 404.
#[cfg(not(debug_assertions))]
pub async fn no_clock(State(st): State<Shared>, auth: Authed) -> ApiError {
    if let Err(e) = auth.require(&st, "timetable.manage").await {
        return e;
    }
    ApiError::not_found("no such API route: the clock moves in debug builds only")
}
