//! Lessons: restrictions on a class until a set time.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use lectern_policy::access::Access;
use lectern_policy::settings::{parse_settings, SettingKey, SettingsMap};
use lectern_store::{now_ms, Lesson};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::state::Shared;

/// Settings a lesson may impose.
const LESSON_SETTINGS: &[SettingKey] = &[
    SettingKey::ScreenLocked,
    SettingKey::InternetBlocked,
    SettingKey::WebFilterMode,
    SettingKey::AllowList,
    SettingKey::BlockList,
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLesson {
    group_id: i64,
    minutes: Option<i64>,
    ends_at: Option<i64>,
    #[serde(default)]
    restrictions: Value,
}

/// A lesson's restrictions from JSON: only [`LESSON_SETTINGS`], at least one.
pub(crate) fn parse_restrictions(v: &Value) -> Result<SettingsMap, ApiError> {
    let restrictions = if v.is_null() {
        Default::default()
    } else {
        parse_settings(v).map_err(|e| ApiError::bad_request(e.to_string()))?
    };
    if let Some(k) = restrictions.keys().find(|k| !LESSON_SETTINGS.contains(k)) {
        return Err(ApiError::bad_request(format!(
            "a lesson cannot set {:?}",
            k.name()
        )));
    }
    if restrictions.is_empty() {
        return Err(ApiError::bad_request(
            "a lesson needs at least one restriction (lock screens, block the internet, or a web filter)",
        ));
    }
    Ok(restrictions)
}

fn view(st: &Shared, school: lectern_store::SchoolId, l: &Lesson) -> Value {
    let now = now_ms();
    json!({
        "id": l.id,
        "group_id": l.group_id,
        "group_name": st.policies.of(school).group(l.group_id).map(|g| g.group.name),
        "teacher": l.teacher,
        "starts_at": l.starts_at,
        "ends_at": l.ends_at,
        "ended_at": l.ended_at,
        "active": l.active_at(now),
        "restrictions": l.restrictions,
    })
}

/// `GET /lessons`: running lessons and those that ended in the last day.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "lessons.manage").await?;
    let school = auth.school();
    let lessons = st
        .db(move |s| s.lessons_since(school, now_ms() - 86_400_000))
        .await?;
    Ok(Json(json!(lessons
        .iter()
        .map(|l| view(&st, school, l))
        .collect::<Vec<_>>())))
}

pub(crate) fn may_control_class(auth: &Authed, group_id: i64) -> bool {
    auth.rights.all
        || auth
            .rights
            .group_access
            .get(&group_id)
            .is_some_and(|a| *a == Access::Control)
}

/// `POST /lessons`: starts a lesson for a class now, until `ends_at` or for `minutes`.
pub async fn create(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewLesson>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, "lessons.manage").await?;
    let JsonBody(b) = body?;
    let class = st
        .policies
        .of(auth.school())
        .group(b.group_id)
        .ok_or_else(|| ApiError::bad_request(format!("no group {}", b.group_id)))?;
    if !may_control_class(&auth, b.group_id) {
        auth.deny(&st, &format!("lesson for group {}", b.group_id), Vec::new())
            .await;
        return Err(ApiError::forbidden(format!(
            "You can't control the class {:?}. Ask your administrator.",
            class.group.name
        ))
        .with_reason(super::reason::NO_CONTROL_OF_CLASS));
    }
    let now = now_ms();
    let ends_at = match (b.minutes, b.ends_at) {
        (Some(m), None) if (1..=24 * 60).contains(&m) => now + m * 60_000,
        (None, Some(t)) if t > now && t <= now + 86_400_000 => t,
        _ => {
            return Err(ApiError::bad_request(
                "give minutes (1 to 1440) or ends_at (within the next 24 hours)",
            ))
        }
    };
    let restrictions = parse_restrictions(&b.restrictions)?;
    // One lesson per class at a time: two would fight over the same settings.
    // Held across the check and the insert, so two starts cannot both pass.
    let _one_at_a_time = super::delegation::Change::begin(&st, &auth).await;
    overlapping(
        &st,
        auth.school(),
        b.group_id,
        now,
        ends_at,
        &class.group.name,
    )
    .await?;
    let lesson = Lesson {
        id: 0,
        group_id: b.group_id,
        teacher: auth.username().to_string(),
        restrictions,
        starts_at: now,
        ends_at,
        ended_at: None,
    };
    let school = auth.school();
    let lesson = st.db(move |s| s.create_lesson(school, &lesson)).await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "lesson.start",
        "ok",
    );
    entry.detail = format!(
        "lesson {} for {:?} until {}: {}",
        lesson.id,
        class.group.name,
        ends_at,
        serde_json::to_string(&lesson.restrictions).unwrap_or_default()
    );
    st.audit(entry).await;
    st.reload_policies(school).await?;
    st.lessons_changed.notify_one();
    Ok((StatusCode::CREATED, Json(view(&st, school, &lesson))))
}

/// Refuses (409, naming it) a lesson for `group_id` whose time overlaps
/// `starts_at..ends_at` with one not ended yet.
async fn overlapping(
    st: &Shared,
    school: lectern_store::SchoolId,
    group_id: i64,
    starts_at: i64,
    ends_at: i64,
    class: &str,
) -> Result<(), ApiError> {
    let lessons = st.db(move |s| s.lessons_since(school, starts_at)).await?;
    let clash = lessons.iter().find(|l| {
        l.group_id == group_id
            && l.ended_at.is_none()
            && l.starts_at < ends_at
            && starts_at < l.ends_at
    });
    match clash {
        None => Ok(()),
        Some(l) => {
            // Whole minutes, rounded up: "0 more minutes" would read as over.
            let left = ((l.ends_at - starts_at).max(0) + 59_999) / 60_000;
            Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "{class:?} already has a lesson (lesson {}, started by {}, {left} more minutes): \
                     one class has one lesson at a time; end that one first, then start this one",
                    l.id, l.teacher
                ),
            ))
        }
    }
}

/// `POST /lessons/{id}/end`: ends a lesson now; its restrictions lift at once.
pub async fn end(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "lessons.manage").await?;
    let school = auth.school();
    let existing = st
        .db(move |s| s.lessons_since(school, 0))
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no lesson {id}")))?;
    if !may_control_class(&auth, existing.group_id) {
        auth.deny(&st, &format!("end lesson {id}"), Vec::new())
            .await;
        return Err(ApiError::forbidden(
            "You can't control this lesson's class. Ask your administrator.",
        )
        .with_reason(super::reason::NO_CONTROL_OF_CLASS));
    }
    let lesson = st
        .db(move |s| s.end_lesson(school, id, now_ms()))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no lesson {id}")))?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "lesson.end",
        "ok",
    );
    entry.detail = format!("lesson {id}");
    st.audit(entry).await;
    st.reload_policies(school).await?;
    st.lessons_changed.notify_one();
    Ok(Json(view(&st, school, &lesson)))
}

/// Lifts and applies lessons as they start and end: sleeps until the next
/// boundary (at most a minute), then re-resolves every device. Lessons are in
/// the store, so after a restart the expired ones are simply not applied.
pub async fn timer(st: Shared) {
    let mut shutdown = st.shutdown.clone();
    loop {
        let now = now_ms();
        let schools = st.policies.schools();
        let wait = schools
            .iter()
            .filter_map(|&s| st.policies.of(s).next_lesson_change(now))
            .min()
            .map(|t| t - now + 5)
            .unwrap_or(60_000)
            .clamp(5, 60_000);
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait as u64)) => {}
            _ = st.lessons_changed.notified() => continue,
            _ = shutdown.changed() => return,
        }
        // Every school's: a lesson of one of them started or ended.
        for school in schools {
            if let Err(e) = st.reload_policies(school).await {
                tracing::error!(
                    school,
                    "lesson timer could not reload policies: {}",
                    e.message
                );
            }
        }
    }
}
