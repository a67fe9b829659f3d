//! Student sign-in on shared devices (issue 16; `lectern_proto::signin`):
//! the device sends the name and picture or text password a student typed;
//! the server checks it against the school's students (rate-limited like
//! console sign-ins, audited) and, from then until the student signs out,
//! attributes the device's session to them: its state, activity and
//! violations carry the student's name whatever the device reports, so
//! groups, policies and logs follow the student.
//!
//! Who is signed in where is kept in memory per device: it survives the
//! device's reconnects, and the device is told at each connection (a
//! restarted server has no one signed in, and the device shows its sign-in
//! again).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use lectern_proto::signin::{SignInOutcome, SignInRefusal, StudentSecret, MAX_NAME_CHARS};
use lectern_store::SchoolId;

use crate::metrics::inc;
use crate::state::Shared;

/// A student signed in on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The name they signed in with, as their profile spells it.
    pub name: String,
    /// Their name as the school shows it.
    pub display_name: String,
    /// Their profile.
    pub person_id: i64,
    /// The user the device itself reported when they signed in (the shared
    /// account; none for a browser without one): if the device reports
    /// another, the session is no longer theirs.
    pub reported_user: Option<String>,
}

/// Who is signed in on each device.
#[derive(Default)]
pub struct SignedInStudents {
    devices: Mutex<HashMap<i64, SignedIn>>,
}

impl SignedInStudents {
    /// The student signed in on `device`.
    pub fn on(&self, device: i64) -> Option<SignedIn> {
        self.lock().get(&device).cloned()
    }

    fn set(&self, device: i64, who: SignedIn) {
        self.lock().insert(device, who);
    }

    /// Signs out whoever is signed in on `device` (also when the device is
    /// revoked or deleted); who it was.
    pub fn clear(&self, device: i64) -> Option<SignedIn> {
        self.lock().remove(&device)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, SignedIn>> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the device is told at each connection: who is signed in on it.
pub fn current(st: &Shared, device: i64) -> SignInOutcome {
    match st.students.on(device) {
        Some(s) => SignInOutcome::SignedIn {
            name: s.name,
            display_name: s.display_name,
        },
        None => SignInOutcome::SignedOut,
    }
}

fn refused(reason: SignInRefusal, retry_after_secs: u64) -> SignInOutcome {
    SignInOutcome::Refused {
        reason,
        retry_after_secs,
    }
}

/// Checks a sign-in from `device` (of `school`) and records it.
/// Refused when the device did not announce
/// [`lectern_proto::Capability::StudentSignIn`] or its policy does not
/// offer student sign-in, the
/// name or secret is malformed, the name or the device has failed too often
/// (the school's login limits, counted apart from console sign-ins), or the
/// credentials are
/// wrong (never saying which part).
pub async fn sign_in(
    st: &Shared,
    device: i64,
    school: SchoolId,
    name: &str,
    secret: StudentSecret,
    capable: bool,
    reported_user: Option<String>,
) -> SignInOutcome {
    let offered = capable && st.hub.policy_of(device).is_some_and(|p| p.student_sign_in);
    if !offered {
        return refused(SignInRefusal::NotOffered, 0);
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || secret.check().is_err() {
        return refused(SignInRefusal::Malformed, 0);
    }
    // Limited by name and by device: shared devices often reach the server
    // from one address (the school's), so the device's id stands in for
    // it, and one device guessing many names slows only itself.
    let key = name.to_lowercase();
    let addr = IpAddr::V6(Ipv6Addr::from(device as u128));
    let limiter = st.student_limiter.of(school);
    if let Some(wait) = limiter.check(&key, addr) {
        audit(st, school, name, device, "rate_limited").await;
        return refused(SignInRefusal::RateLimited, wait);
    }
    let typed = name.to_string();
    let found = st
        .db(move |s| s.students().verify_student(school, &typed, &secret))
        .await;
    let student = match found {
        Ok(Some(s)) => s,
        Ok(None) => {
            limiter.failed(&key, addr);
            inc(&st.metrics.logins_failed);
            audit(st, school, name, device, "bad_credentials").await;
            return refused(SignInRefusal::WrongCredentials, 0);
        }
        Err(e) => {
            tracing::error!(device, "student sign-in: {}", e.message);
            return refused(SignInRefusal::WrongCredentials, 0);
        }
    };
    limiter.succeeded(&key, addr);
    audit(st, school, &student.name, device, "ok").await;
    st.students.set(
        device,
        SignedIn {
            name: student.name.clone(),
            display_name: student.display_name.clone(),
            person_id: student.person_id,
            reported_user,
        },
    );
    SignInOutcome::SignedIn {
        name: student.name,
        display_name: student.display_name,
    }
}

/// Signs the student on `device` out.
pub async fn sign_out(st: &Shared, device: i64, school: SchoolId) -> SignInOutcome {
    end(st, device, school, "ok").await;
    SignInOutcome::SignedOut
}

/// Signs out the student on `device` if the device now reports another
/// user of its own than when they signed in (the shared account logged out,
/// another logged in, perhaps while the device was offline): what it sends
/// from then is not theirs. True when someone was signed out.
pub async fn check_device_user(
    st: &Shared,
    device: i64,
    school: SchoolId,
    reported: Option<&str>,
) -> bool {
    // The browser client reports the student it signed in as its user;
    // either that or the device's user at sign-in is still theirs.
    match st.students.on(device) {
        Some(who)
            if who.reported_user.as_deref() != reported && reported != Some(who.name.as_str()) =>
        {
            end(st, device, school, "desktop_user_changed").await;
            true
        }
        _ => false,
    }
}

async fn end(st: &Shared, device: i64, school: SchoolId, outcome: &str) {
    if let Some(who) = st.students.clear(device) {
        let mut entry = st.audit_entry(school, &who.name, None, "student.sign_out", outcome);
        entry.devices = vec![device];
        st.audit(entry).await;
    }
}

async fn audit(st: &Shared, school: SchoolId, name: &str, device: i64, outcome: &str) {
    let actor: String = name.chars().take(64).collect();
    let mut entry = st.audit_entry(school, &actor, None, "student.sign_in", outcome);
    entry.devices = vec![device];
    st.audit(entry).await;
}
