//! "Privacy means no picture": who may get a picture of a device's screen.
//!
//! The rule, for every picture a console or another device can get (grid
//! thumbnails, the live view, which shows the same stream enlarged, and a
//! device shown as a broadcast source):
//!
//! 1. `thumbnails_allowed = false` means the device's screen is never streamed:
//!    no thumbnails, no live view, not a broadcast source, for anyone (the
//!    agent also refuses to stream). Bypass does not override it.
//! 2. Otherwise `remote_view` decides, per console user: `allow` gives
//!    pictures; `deny` gives none; `ask_then_allow` / `ask_then_deny` ask the
//!    student once (`ViewRequest`) and follow the answer, or the default after
//!    `remote_view_ask_secs` (server.toml, 10 s by default) without one.
//! 3. The bypass-client-privacy right overrides `deny` and the question
//!    (administrators hold it); its first use per device and console session is
//!    audited as `privacy.bypass`, each live view as `live_view` with reason
//!    `bypass`.
//! 4. An answer holds for that teacher's console session, and at most to the
//!    end of a lesson running over the device when it was given; it lapses at
//!    once when another student logs in or the device's `remote_view` changes.
//!    A timeout is remembered too (no question per scroll), but opening the
//!    live view asks again after one.
//! 5. Until the server knows a device's policy, it sends no pictures.
//!
//! Safeguarding evidence (screenshots the server asks for, or the agent takes,
//! on a keyword violation) is not a view of the screen by a person: it follows
//! `keyword_policies` and the severity's `keyword_actions` (`screenshot`,
//! `alert`, `lock` take evidence; `log` does not), whatever `remote_view` and
//! `thumbnails_allowed` say, and is read only by holders of `activity.view`
//! who see the device.

use std::time::Duration;

use lectern_proto::RemoteView;
use lectern_store::now_ms;

use crate::scope::Viewer;
use crate::state::Shared;

/// Seconds a student has to answer a live-view question, unless server.toml's
/// `remote_view_ask_secs` says otherwise.
pub const ASK_SECS: u32 = 10;

/// Why a picture is allowed or refused (as the API and audit log say it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewReason {
    /// `remote_view = allow`.
    PolicyAllow,
    /// `remote_view = deny`.
    PolicyDeny,
    /// The viewer may bypass client privacy.
    Bypass,
    /// The student said yes.
    StudentAllowed,
    /// The student said no.
    StudentDenied,
    /// No answer; `ask_then_allow`.
    TimeoutAllowed,
    /// No answer; `ask_then_deny`.
    TimeoutDenied,
    /// `thumbnails_allowed = false`: the screen is never streamed.
    ThumbnailsOff,
    /// The device's policy is not known yet.
    PolicyPending,
}

impl ViewReason {
    /// The name used in the API and audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            ViewReason::PolicyAllow => "policy_allow",
            ViewReason::PolicyDeny => "policy_deny",
            ViewReason::Bypass => "bypass",
            ViewReason::StudentAllowed => "student_allowed",
            ViewReason::StudentDenied => "student_denied",
            ViewReason::TimeoutAllowed => "timeout_allowed",
            ViewReason::TimeoutDenied => "timeout_denied",
            ViewReason::ThumbnailsOff => "thumbnails_off",
            ViewReason::PolicyPending => "policy_pending",
        }
    }

    /// Whether the student's silence, not an answer, decided.
    pub fn is_timeout(self) -> bool {
        matches!(self, ViewReason::TimeoutAllowed | ViewReason::TimeoutDenied)
    }
}

/// A decision about pictures of one device for one viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewDecision {
    /// Pictures flow.
    pub allowed: bool,
    /// Why.
    pub reason: ViewReason,
}

impl ViewDecision {
    /// Allowed through the bypass right.
    pub const BYPASS: ViewDecision = ViewDecision {
        allowed: true,
        reason: ViewReason::Bypass,
    };

    fn yes(reason: ViewReason) -> Self {
        ViewDecision {
            allowed: true,
            reason,
        }
    }
    fn no(reason: ViewReason) -> Self {
        ViewDecision {
            allowed: false,
            reason,
        }
    }
}

/// What the rule says before anyone is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Decided.
    Decided(ViewDecision),
    /// The student must be asked.
    Ask,
}

/// The rule for one device and viewer: `policy` is the device's
/// `(thumbnails_allowed, remote_view)` (`None`: not known yet), `bypass` the
/// viewer's right, `remembered` a still-valid earlier answer.
pub fn verdict(
    policy: Option<(bool, RemoteView)>,
    bypass: bool,
    remembered: Option<ViewDecision>,
) -> Verdict {
    let Some((thumbnails, mode)) = policy else {
        return Verdict::Decided(ViewDecision::no(ViewReason::PolicyPending));
    };
    match mode {
        _ if !thumbnails => Verdict::Decided(ViewDecision::no(ViewReason::ThumbnailsOff)),
        RemoteView::Allow => Verdict::Decided(ViewDecision::yes(ViewReason::PolicyAllow)),
        _ if bypass => Verdict::Decided(ViewDecision::yes(ViewReason::Bypass)),
        RemoteView::Deny => Verdict::Decided(ViewDecision::no(ViewReason::PolicyDeny)),
        RemoteView::AskThenAllow | RemoteView::AskThenDeny => {
            remembered.map_or(Verdict::Ask, Verdict::Decided)
        }
    }
}

/// The decision from a student's answer (`None`: none in time) under `mode`.
pub fn from_answer(answer: Option<bool>, mode: RemoteView) -> ViewDecision {
    match (answer, mode) {
        (Some(true), _) => ViewDecision::yes(ViewReason::StudentAllowed),
        (Some(false), _) => ViewDecision::no(ViewReason::StudentDenied),
        (None, RemoteView::AskThenAllow) => ViewDecision::yes(ViewReason::TimeoutAllowed),
        (None, _) => ViewDecision::no(ViewReason::TimeoutDenied),
    }
}

/// How an ask begins (see [`crate::hub::Hub::begin_ask`]).
pub enum AskStart {
    /// An answer for this session is remembered.
    Known(ViewDecision),
    /// Another request of this session is asking; this receives its decision.
    Wait(tokio::sync::oneshot::Receiver<ViewDecision>),
    /// The question went to the device; this receives the student's answer.
    Asked {
        /// The answer (`None`: no answer in time).
        answer: tokio::sync::oneshot::Receiver<Option<bool>>,
        /// The mode asked under (for the default).
        mode: RemoteView,
    },
}

/// Asks `device`'s student whether `viewer` may see the screen, once per
/// console session: a remembered answer is returned without asking, and
/// concurrent asks share one question, audited once as `remote_view`. With
/// `fresh`, a remembered timeout is asked again (the teacher explicitly
/// opened the live view). `None` when the device is offline or cannot be
/// asked.
pub async fn ask(st: &Shared, device: i64, viewer: &Viewer, fresh: bool) -> Option<ViewDecision> {
    let now = now_ms();
    let (school, hostname, user) = st.hub.subject(device)?;
    let lesson_end = st
        .policies
        .of(school)
        .lesson_end(&hostname, user.as_deref(), now);
    let until = lesson_end.map_or(viewer.session_ends, |l| l.min(viewer.session_ends));
    // The agent answers within its own timeout; allow a little more on the wire.
    let wire = Duration::from_secs(u64::from(st.hub.ask_secs()) + 2);
    match st.hub.begin_ask(device, viewer, until, fresh)? {
        AskStart::Known(d) => Some(d),
        AskStart::Wait(rx) => tokio::time::timeout(wire + Duration::from_secs(2), rx)
            .await
            .ok()?
            .ok(),
        AskStart::Asked { answer, mode } => {
            let answer = tokio::time::timeout(wire, answer)
                .await
                .ok()
                .and_then(Result::ok)
                .flatten();
            let d = from_answer(answer, mode);
            st.hub.finish_ask(device, viewer.session, d);
            // Each question put to a student is audited once, by the asker.
            audit(st, viewer, "remote_view", device, d).await;
            Some(d)
        }
    }
}

/// Asks on behalf of a console that watches the device's thumbnail (the hub
/// starts the frames if the answer allows them).
pub async fn ask_for_thumbnails(st: Shared, device: i64, viewer: Viewer) {
    ask(&st, device, &viewer, false).await;
}

/// Writes an audit entry for a picture decision.
pub async fn audit(st: &Shared, viewer: &Viewer, action: &str, device: i64, d: ViewDecision) {
    let mut entry = st.audit_entry(
        viewer.school,
        &viewer.username,
        viewer.address.map(|a| a.to_string()),
        action,
        if d.allowed { "allowed" } else { "denied" },
    );
    entry.devices = vec![device];
    entry.detail = d.reason.as_str().to_string();
    st.audit(entry).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        use RemoteView::*;
        let yes = |r| Verdict::Decided(ViewDecision::yes(r));
        let no = |r| Verdict::Decided(ViewDecision::no(r));
        assert_eq!(
            verdict(Some((true, Allow)), false, None),
            yes(ViewReason::PolicyAllow)
        );
        assert_eq!(
            verdict(Some((true, Deny)), false, None),
            no(ViewReason::PolicyDeny)
        );
        assert_eq!(
            verdict(Some((true, Deny)), true, None),
            yes(ViewReason::Bypass)
        );
        assert_eq!(
            verdict(Some((false, Allow)), true, None),
            no(ViewReason::ThumbnailsOff),
            "bypass never turns capture on"
        );
        assert_eq!(
            verdict(Some((true, AskThenDeny)), false, None),
            Verdict::Ask
        );
        let said_no = ViewDecision::no(ViewReason::StudentDenied);
        assert_eq!(
            verdict(Some((true, AskThenAllow)), false, Some(said_no)),
            Verdict::Decided(said_no)
        );
        assert_eq!(verdict(None, true, None), no(ViewReason::PolicyPending));
        assert_eq!(
            from_answer(None, AskThenAllow),
            ViewDecision::yes(ViewReason::TimeoutAllowed)
        );
        assert_eq!(
            from_answer(None, AskThenDeny),
            ViewDecision::no(ViewReason::TimeoutDenied)
        );
    }
}
