//! Acceptable use policies on students' devices.
//!
//! A policy belongs to a user group or to Entire Network; the one that
//! applies to a device's logged-in user is the current version of the
//! strongest such group the user is in (priority, then kind, then the older
//! group: the order settings resolve in). The server offers it
//! ([`ServerMsg::AcceptableUse`]) when the device connects, when its user
//! changes, and when a version is published or groups change, unless this
//! device and user accepted that version already. With no user logged in
//! nothing is offered.
//!
//! An acceptance is the device's own report: it is recorded for the sending
//! device and the user the server knows is logged in on it (from the
//! device's state), never a name in the frame, and only for the version the
//! server offered this device. Each device may send at most
//! [`ANSWERS_PER_MINUTE`] answers in any 60 seconds; others are refused.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lectern_policy::groups::GroupKind;
use lectern_proto::aup::{AcceptableUse, AupAnswer};
use lectern_proto::{ErrorCode, RefusedFrame, ServerMsg};
use lectern_store::aup::{AupAcceptance, AupVersion};
use lectern_store::SchoolId;

use crate::requests::Refusal;
use crate::state::AppState;

/// Answers a device may send in any 60 seconds.
pub const ANSWERS_PER_MINUTE: usize = 6;

/// What each connected device was offered and how it answered.
#[derive(Debug, Default)]
pub struct AupState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Device → the version offered and not yet answered.
    offered: HashMap<i64, i64>,
    /// Devices that said they cannot show a policy (until they reconnect).
    unsupported: HashSet<i64>,
    /// Device → instants of its answers in the last minute.
    answers: HashMap<i64, VecDeque<Instant>>,
}

impl AupState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The version offered to `device` and not yet answered.
    pub fn offered(&self, device: i64) -> Option<i64> {
        self.lock().offered.get(&device).copied()
    }

    /// Whether `device` said it cannot show a policy.
    pub fn unsupported(&self, device: i64) -> bool {
        self.lock().unsupported.contains(&device)
    }

    /// Takes one answer of `device`'s minute, or says how long to wait.
    fn take(&self, device: i64, now: Instant) -> Result<(), Duration> {
        const WINDOW: Duration = Duration::from_secs(60);
        let mut inner = self.lock();
        let w = inner.answers.entry(device).or_default();
        while w
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            w.pop_front();
        }
        if w.len() >= ANSWERS_PER_MINUTE {
            let oldest = w.front().copied().unwrap_or(now);
            return Err((oldest + WINDOW)
                .saturating_duration_since(now)
                .max(Duration::from_millis(100)));
        }
        w.push_back(now);
        Ok(())
    }
}

/// The policy a device and user must accept: the current version of the
/// strongest user group (or Entire Network) with a policy that the user is
/// in, among `current` (each group's newest version).
pub fn applicable<'a>(
    st: &AppState,
    school: SchoolId,
    current: &'a [AupVersion],
    hostname: &str,
    user: &str,
) -> Option<&'a AupVersion> {
    if current.is_empty() {
        return None;
    }
    let policies = st.policies.of(school);
    let matched = policies.resolve(Some(hostname), Some(user)).groups;
    current
        .iter()
        .filter(|v| matched.contains(&v.group_id))
        .filter_map(|v| {
            let g = policies.group(v.group_id)?.group;
            matches!(g.kind, GroupKind::User | GroupKind::EntireNetwork)
                .then_some(((g.priority, g.kind, std::cmp::Reverse(g.id)), v))
        })
        .max_by_key(|(strength, _)| *strength)
        .map(|(_, v)| v)
}

/// The wire form of a stored version.
pub fn wire(v: &AupVersion) -> AcceptableUse {
    AcceptableUse {
        version_id: v.id,
        version: v.number,
        title: v.title.clone(),
        text: v.text.clone(),
        published_at: v.published_at,
    }
}

/// What `device` should be shown now: `Some(version)` to accept, `None`
/// when nothing is due. `Err` if the store failed (nothing changes then).
async fn due(
    st: &AppState,
    device: i64,
    current: &[AupVersion],
) -> Result<Option<AupVersion>, crate::api::ApiError> {
    let Some((school, hostname, Some(user))) = st.hub.subject(device) else {
        return Ok(None);
    };
    let Some(v) = applicable(st, school, current, &hostname, &user).cloned() else {
        return Ok(None);
    };
    let id = v.id;
    let done = st
        .db(move |s| s.aup().aup_accepted(school, id, device, &user))
        .await?;
    Ok((!done).then_some(v))
}

/// Offers `device` what it must accept, or takes an offer away that no
/// longer applies; nothing is sent when nothing changed.
async fn offer_with(st: &AppState, device: i64, current: &[AupVersion]) {
    let due = match due(st, device, current).await {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(
                device,
                "cannot decide the acceptable use policy: {}",
                e.message
            );
            return;
        }
    };
    let before = st.aup.offered(device);
    // A device that said it cannot show one is not asked again this session
    // (it stays on the report as unable to).
    if due.is_some() && st.aup.unsupported(device) {
        return;
    }
    match due {
        Some(v) if before != Some(v.id) => {
            st.aup.lock().offered.insert(device, v.id);
            st.hub
                .send(device, ServerMsg::AcceptableUse { policy: wire(&v) });
        }
        Some(_) => {}
        None if before.is_some() => {
            st.aup.lock().offered.remove(&device);
            st.hub.send(device, ServerMsg::AcceptableUseClear);
        }
        None => {}
    }
}

async fn current(st: &AppState, school: SchoolId) -> Option<Vec<AupVersion>> {
    match st.db(move |s| s.aup().current_aups(school)).await {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!("cannot load acceptable use policies: {}", e.message);
            None
        }
    }
}

/// Offers one device its policy (at connect and when its user changes).
pub async fn offer(st: &AppState, device: i64) {
    let Some((school, _, _)) = st.hub.subject(device) else {
        return;
    };
    if let Some(current) = current(st, school).await {
        offer_with(st, device, &current).await;
    }
}

/// Offers each of the school's connected devices its policy (after a
/// version is published or groups change).
pub async fn offer_all(st: &AppState, school: SchoolId) {
    let Some(current) = current(st, school).await else {
        return;
    };
    for (id, _, _) in st.hub.subjects(school, None) {
        offer_with(st, id, &current).await;
    }
}

/// Forgets a device whose session ended.
pub fn device_gone(st: &AppState, device: i64) {
    let mut inner = st.aup.lock();
    inner.offered.remove(&device);
    inner.unsupported.remove(&device);
}

fn refusal(code: ErrorCode, retry_after: Option<Duration>, message: String) -> Refusal {
    Refusal {
        code,
        frame: RefusedFrame::Aup,
        retry_after,
        message,
    }
}

/// `aup_answer` from a device: metered; only the version offered to it
/// counts; an acceptance is stored for this device and its user, audited,
/// and answered with `acceptable_use_clear`.
pub async fn answer(
    st: &AppState,
    device: i64,
    version_id: i64,
    answer: AupAnswer,
) -> Result<Option<ServerMsg>, Refusal> {
    st.aup.take(device, Instant::now()).map_err(|w| {
        refusal(
            ErrorCode::RateLimited,
            Some(w),
            format!("too many answers; wait {} s", w.as_secs().max(1)),
        )
    })?;
    if st.aup.offered(device) != Some(version_id) {
        return Err(refusal(
            ErrorCode::NotAllowed,
            None,
            "this policy is not the one this computer was asked to show".into(),
        ));
    }
    let Some((school, _, Some(user))) = st.hub.subject(device) else {
        return Err(refusal(
            ErrorCode::NotAllowed,
            None,
            "no one is logged in to accept it".into(),
        ));
    };
    match answer {
        AupAnswer::Accepted => accept(st, school, device, version_id, user).await,
        AupAnswer::Unsupported => {
            {
                let mut inner = st.aup.lock();
                inner.offered.remove(&device);
                inner.unsupported.insert(device);
            }
            crate::requests::audit(
                st,
                school,
                &format!("device {device}"),
                None,
                "aup.unsupported",
                device,
                format!("version {version_id}: this computer cannot show it"),
            )
            .await;
            Ok(None)
        }
    }
}

async fn accept(
    st: &AppState,
    school: SchoolId,
    device: i64,
    version_id: i64,
    user: String,
) -> Result<Option<ServerMsg>, Refusal> {
    let a = AupAcceptance {
        version_id,
        device_id: device,
        username: user.clone(),
        accepted_at: lectern_store::now_ms(),
    };
    st.db(move |s| s.aup().accept_aup(school, &a))
        .await
        .map_err(|_| {
            refusal(
                ErrorCode::Internal,
                Some(Duration::from_secs(5)),
                "the server could not record it; try again".into(),
            )
        })?;
    st.aup.lock().offered.remove(&device);
    crate::requests::audit(
        st,
        school,
        &user,
        None,
        "aup.accept",
        device,
        format!("version {version_id}"),
    )
    .await;
    Ok(Some(ServerMsg::AcceptableUseClear))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_gets_its_answers_per_minute_then_waits() {
        let s = AupState::default();
        let t0 = Instant::now();
        for _ in 0..ANSWERS_PER_MINUTE {
            s.take(1, t0).unwrap();
        }
        assert!(s.take(1, t0).unwrap_err() > Duration::from_secs(59));
        s.take(2, t0).unwrap();
        s.take(1, t0 + Duration::from_secs(60)).unwrap();
    }
}
