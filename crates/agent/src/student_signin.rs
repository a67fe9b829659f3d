//! Student sign-in on a shared desktop (issue 16 point 3): what the agent
//! shows and sends, worked out from what it hears, with no I/O so every
//! rule is unit-tested.
//!
//! The sign-in screen covers the desktop while all of these hold: the
//! desktop can show it (it announced `Capability::StudentSignIn`), the
//! device's policy offers student sign-in (the server turns the offer off
//! when the desktop's own user is a student's automatic login identifier,
//! so those students are never asked), someone is logged in to the
//! desktop, and no student is signed in. A student stays signed in until
//! the desktop's user or its login changes (they log out of the shared
//! account, even when it logs in again at once or while the device is
//! offline, or another account logs in): then the agent signs them out, so
//! the next person at the computer is never taken for them.
//!
//! The flow outlives connections ([`SignInState`], kept by the reconnect
//! loop): the server remembers who is signed in on a device and says so at
//! each connection, but only this process saw that student sign in, on
//! this desktop user. A sign-in the agent cannot vouch for (a restarted
//! agent, a user change while offline) is answered with a sign-out, and
//! the user change is reported before anything queued offline is sent.

use lectern_desktop::{Desktop, SignInScreen};
use lectern_proto::signin::{SecretError, SignInOutcome, SignInRefusal, StudentSecret};
use lectern_proto::AgentMsg;

/// The sign-in state of one connection to the server.
#[derive(Debug, Default)]
pub struct SignInFlow {
    /// The desktop shows the screen (announced the capability).
    capable: bool,
    /// The policy offers student sign-in.
    offered: bool,
    /// The student signed in, as the server said.
    student: Option<String>,
    /// The desktop's own user, last seen.
    os_user: Option<String>,
    /// Which login of that user ([`Desktop::login_key`]), last seen.
    os_login: Option<String>,
    /// The line the screen shows: why the last try failed.
    error: Option<String>,
    /// A sign-in was sent and not answered yet: the next `SignedIn` is its
    /// answer.
    pending: bool,
    /// The policy lets the student switch to another school.
    switch: bool,
    /// The other schools this device is registered with, by name.
    schools: Vec<String>,
}

impl SignInFlow {
    /// A flow for a desktop that can (`capable`) or cannot show the screen.
    pub fn new(capable: bool, os_user: Option<String>) -> Self {
        SignInFlow {
            capable,
            os_user,
            ..Default::default()
        }
    }

    /// Whether this connection's desktop shows the screen.
    pub fn set_capable(&mut self, capable: bool) {
        self.capable = capable;
    }

    /// The device's policy changed: whether it offers student sign-in, and
    /// whether it lets the student switch school.
    pub fn policy(&mut self, offered: bool, switch: bool) {
        self.offered = offered;
        self.switch = switch;
    }

    /// The other schools this device is registered with (the connection's
    /// school is not one of them).
    pub fn set_schools(&mut self, schools: Vec<String>) {
        self.schools = schools;
    }

    /// The student chose `school` on the screen: the school to switch to,
    /// only while the screen is up (nobody signed in, so nobody is carried
    /// over, and no lock: a lock covers the screen), the policy allows it
    /// and `school` is one offered.
    pub fn switch_to(&self, school: &str) -> Option<String> {
        (self.wants_screen() && self.switch && self.schools.iter().any(|s| s == school))
            .then(|| school.to_owned())
    }

    /// The student signed in now, if any.
    pub fn student(&self) -> Option<&str> {
        self.student.as_deref()
    }

    /// The server's answer (also sent unasked at each connection). A
    /// student this process did not see sign in (it restarted, or the
    /// desktop's user changed meanwhile) is signed out: the message to send.
    pub fn outcome(&mut self, outcome: SignInOutcome) -> Option<AgentMsg> {
        let pending = std::mem::take(&mut self.pending);
        match outcome {
            SignInOutcome::SignedIn { name, .. } => {
                if pending || self.student.as_deref() == Some(name.as_str()) {
                    self.student = Some(name);
                    self.error = None;
                    None
                } else {
                    self.student = None;
                    Some(AgentMsg::StudentSignOut)
                }
            }
            SignInOutcome::SignedOut => {
                self.student = None;
                self.error = None;
                None
            }
            SignInOutcome::Refused {
                reason,
                retry_after_secs,
            } => {
                self.error = Some(refusal_text(reason, retry_after_secs));
                None
            }
        }
    }

    /// The desktop's user and which login of it ([`Desktop::login_key`]), as
    /// the desktop reports them now; a student signed in under another
    /// user, another login of the same user (the shared account logged out
    /// and in again) or nobody (the session ended) is signed out. Returns
    /// the message for the server, if any.
    pub fn desktop_user(&mut self, user: Option<&str>, login: Option<&str>) -> Option<AgentMsg> {
        if self.os_user.as_deref() == user && self.os_login.as_deref() == login {
            return None;
        }
        self.os_user = user.map(str::to_owned);
        self.os_login = login.map(str::to_owned);
        self.error = None;
        // A sign-in sent on the last login is not the next person's: its
        // answer, if it comes, is answered with a sign-out (`outcome`).
        self.pending = false;
        self.student.take().map(|_| AgentMsg::StudentSignOut)
    }

    /// The student pressed "Sign out": the message for the server, if
    /// anyone is signed in.
    pub fn sign_out(&self) -> Option<AgentMsg> {
        self.student.is_some().then_some(AgentMsg::StudentSignOut)
    }

    /// What the student typed or tapped: the message for the server, or
    /// `None` when it cannot be right (the screen then says why, and the
    /// server's rate limit is not spent on it).
    pub fn typed(&mut self, name: &str, secret: StudentSecret) -> Option<AgentMsg> {
        if !self.wants_screen() {
            return None;
        }
        let name = name.trim();
        if name.is_empty() {
            self.error = Some("Type your user name first.".into());
            return None;
        }
        if let Err(e) = secret.check() {
            self.error = Some(secret_error_text(e).into());
            return None;
        }
        self.error = None;
        self.pending = true;
        Some(AgentMsg::StudentSignIn {
            name: name.to_owned(),
            secret,
        })
    }

    fn wants_screen(&self) -> bool {
        self.capable && self.offered && self.student.is_none() && self.os_user.is_some()
    }

    /// The screen to show now (`None`: none); the desktop adds the
    /// school's name it was told.
    pub fn screen(&self) -> Option<SignInScreen> {
        self.wants_screen().then(|| SignInScreen {
            error: self.error.clone(),
            schools: if self.switch {
                self.schools.clone()
            } else {
                Vec::new()
            },
        })
    }
}

/// The flow and what it put on the desktop, kept across connections.
#[derive(Debug, Default)]
pub struct SignInState {
    /// What to show and send.
    pub flow: SignInFlow,
    /// The screen last put on the desktop (`None`: nothing told yet).
    screen_shown: Option<Option<SignInScreen>>,
    /// Whether the desktop was last told a student is signed in.
    signed_in_shown: Option<bool>,
}

impl SignInState {
    /// Puts the screen (and the sign-out offer) on the desktop, changes it
    /// or takes it away, as the flow wants; only a change reaches it.
    pub fn sync(&mut self, desktop: &mut dyn Desktop) {
        let signed_in = self.flow.student().is_some();
        if self.signed_in_shown != Some(signed_in) {
            desktop.show_signed_in(signed_in);
            self.signed_in_shown = Some(signed_in);
        }
        let want = self.flow.screen();
        if self.screen_shown.as_ref() == Some(&want) {
            return;
        }
        match desktop.show_student_sign_in(want.as_ref()) {
            Ok(()) => self.screen_shown = Some(want),
            // A desktop without the screen has nothing to take away (and
            // is not told so again at every poll).
            Err(lectern_desktop::DesktopError::Unsupported(_)) if want.is_none() => {
                self.screen_shown = Some(None);
            }
            Err(e) => tracing::warn!("cannot show the student sign-in: {e}"),
        }
    }

    /// The connection ended: nobody can sign in or out until the next one,
    /// so the screen and the sign-out offer go (a form no one can send must
    /// not hold the desktop while the server is away or the device is
    /// revoked). Who is signed in is kept for the next connection.
    pub fn take_down(&mut self, desktop: &mut dyn Desktop) {
        if self.signed_in_shown == Some(true) {
            desktop.show_signed_in(false);
        }
        if matches!(self.screen_shown, Some(Some(_))) {
            if let Err(e) = desktop.show_student_sign_in(None) {
                tracing::warn!("cannot take the student sign-in away: {e}");
            }
        }
        self.signed_in_shown = None;
        self.screen_shown = None;
        self.flow.pending = false;
    }
}

/// What the screen says for a refusal: what to do next, never which of the
/// name or the password was wrong.
fn refusal_text(reason: SignInRefusal, retry_after_secs: u64) -> String {
    match reason {
        SignInRefusal::WrongCredentials => {
            "That user name and password do not match. Try again, or ask your teacher.".into()
        }
        SignInRefusal::RateLimited => {
            let mins = retry_after_secs.div_ceil(60).max(1);
            let unit = if mins == 1 { "minute" } else { "minutes" };
            format!("Too many tries. Wait {mins} {unit}, then try again.")
        }
        SignInRefusal::NotOffered => "Student sign-in is not available on this computer.".into(),
        SignInRefusal::Malformed => {
            "Type your user name, then choose 3 or 4 pictures or type your password.".into()
        }
    }
}

fn secret_error_text(e: SecretError) -> &'static str {
    match e {
        SecretError::PictureLength | SecretError::NoSuchPicture => "Choose 3 or 4 pictures.",
        SecretError::TextLength => "A password has at least 6 characters.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pictures(p: &[u8]) -> StudentSecret {
        StudentSecret::Picture {
            picture: p.to_vec(),
        }
    }

    /// Signs `name` in as the screen would: sent, then answered.
    fn sign_in_as(f: &mut SignInFlow, name: &str) {
        assert!(f.typed(name, pictures(&[1, 2, 3])).is_some());
        assert_eq!(f.outcome(signed_in(name)), None);
        assert_eq!(f.student(), Some(name));
    }

    fn signed_in(name: &str) -> SignInOutcome {
        SignInOutcome::SignedIn {
            name: name.into(),
            display_name: name.into(),
        }
    }

    #[test]
    fn the_screen_shows_only_when_offered_capable_logged_in_and_signed_out() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        assert_eq!(f.screen(), None, "not offered yet");
        f.policy(true, false);
        let s = f.screen().expect("offered: shown");
        assert_eq!(s.error, None);
        sign_in_as(&mut f, "amy");
        assert_eq!(f.screen(), None, "signed in: gone");
        f.outcome(SignInOutcome::SignedOut);
        assert!(f.screen().is_some(), "signed out: back");
        f.policy(false, false);
        assert_eq!(f.screen(), None, "no longer offered");

        let mut nobody = SignInFlow::new(true, None);
        nobody.policy(true, false);
        assert_eq!(nobody.screen(), None, "no one logged in");
        let mut incapable = SignInFlow::new(false, Some("pupil".into()));
        incapable.policy(true, false);
        assert_eq!(incapable.screen(), None);
        assert_eq!(incapable.typed("amy", pictures(&[1, 2, 3])), None);
    }

    #[test]
    fn what_cannot_be_right_is_not_sent_and_the_screen_says_why() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.policy(true, false);
        assert_eq!(f.typed("  ", pictures(&[1, 2, 3])), None);
        assert_eq!(
            f.screen().unwrap().error.as_deref(),
            Some("Type your user name first.")
        );
        assert_eq!(f.typed("amy", pictures(&[1, 2])), None);
        assert_eq!(
            f.screen().unwrap().error.as_deref(),
            Some("Choose 3 or 4 pictures.")
        );
        let text = StudentSecret::Text {
            password: "abc".into(),
        };
        assert_eq!(f.typed("amy", text), None);
        let sent = f.typed(" amy ", pictures(&[0, 5, 9]));
        assert_eq!(
            sent,
            Some(AgentMsg::StudentSignIn {
                name: "amy".into(),
                secret: pictures(&[0, 5, 9]),
            })
        );
        assert_eq!(f.screen().unwrap().error, None, "the old line goes");
    }

    #[test]
    fn refusals_say_what_to_do_and_never_which_part_was_wrong() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.policy(true, false);
        f.outcome(SignInOutcome::Refused {
            reason: SignInRefusal::WrongCredentials,
            retry_after_secs: 0,
        });
        let e = f.screen().unwrap().error.unwrap();
        assert!(e.contains("do not match"), "{e}");
        f.outcome(SignInOutcome::Refused {
            reason: SignInRefusal::RateLimited,
            retry_after_secs: 61,
        });
        assert_eq!(
            f.screen().unwrap().error.as_deref(),
            Some("Too many tries. Wait 2 minutes, then try again.")
        );
        sign_in_as(&mut f, "amy");
        f.outcome(SignInOutcome::SignedOut);
        assert_eq!(
            f.screen().unwrap().error,
            None,
            "a new student starts clean"
        );
    }

    #[test]
    fn a_change_of_desktop_user_signs_the_student_out() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.policy(true, false);
        assert_eq!(f.desktop_user(Some("pupil"), None), None, "no change");
        sign_in_as(&mut f, "amy");
        assert_eq!(f.desktop_user(Some("pupil"), None), None, "same session");
        assert_eq!(f.desktop_user(None, None), Some(AgentMsg::StudentSignOut));
        assert_eq!(f.student(), None);
        assert_eq!(f.screen(), None, "nobody logged in: nothing shown");
        assert_eq!(
            f.desktop_user(Some("pupil"), None),
            None,
            "nobody to sign out"
        );
        assert!(f.screen().is_some(), "the next person is asked");
        sign_in_as(&mut f, "ben");
        assert_eq!(
            f.desktop_user(Some("staff"), None),
            Some(AgentMsg::StudentSignOut)
        );
    }

    /// The shared account logged out and in again (above all while the
    /// device was offline, where no poll saw it gone): the same user name,
    /// another login, and the student is signed out.
    #[test]
    fn another_login_of_the_same_shared_account_signs_the_student_out() {
        let mut f = SignInFlow::new(true, None);
        f.policy(true, false);
        assert_eq!(f.desktop_user(Some("pupil"), Some("c1#100")), None);
        sign_in_as(&mut f, "amy");
        assert_eq!(
            f.desktop_user(Some("pupil"), Some("c1#100")),
            None,
            "the same login: still hers"
        );
        assert_eq!(
            f.desktop_user(Some("pupil"), Some("c2#214")),
            Some(AgentMsg::StudentSignOut)
        );
        assert_eq!(f.student(), None);
        assert!(f.screen().is_some(), "the next person is asked");
        // Her sign-in, still on the server's books, is not taken back.
        assert_eq!(f.outcome(signed_in("amy")), Some(AgentMsg::StudentSignOut));
        // A sign-in sent on one login and answered on the next is not the
        // next person's.
        assert!(f.typed("ben", pictures(&[1, 2, 3])).is_some());
        assert_eq!(f.desktop_user(Some("pupil"), Some("c3#300")), None);
        assert_eq!(f.outcome(signed_in("ben")), Some(AgentMsg::StudentSignOut));
        assert_eq!(f.student(), None);
    }

    #[test]
    fn sign_out_is_sent_only_for_a_signed_in_student() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.policy(true, false);
        assert_eq!(f.sign_out(), None);
        sign_in_as(&mut f, "amy");
        assert_eq!(f.sign_out(), Some(AgentMsg::StudentSignOut));
        f.outcome(SignInOutcome::SignedOut);
        assert_eq!(f.sign_out(), None);
        assert!(f.screen().is_some(), "the next student is asked");
    }

    #[test]
    fn a_sign_in_this_process_did_not_see_is_signed_out() {
        // A restarted agent: the server still has Amy on this device.
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.policy(true, false);
        assert_eq!(f.outcome(signed_in("amy")), Some(AgentMsg::StudentSignOut));
        assert_eq!(f.student(), None);
        assert!(f.screen().is_some(), "whoever is there is asked");
        // Amy signed in here; the desktop's user changed while offline: the
        // next connection reports it, and her sign-in is not taken back.
        sign_in_as(&mut f, "amy");
        assert_eq!(
            f.desktop_user(Some("ben"), None),
            Some(AgentMsg::StudentSignOut)
        );
        assert_eq!(f.outcome(signed_in("amy")), Some(AgentMsg::StudentSignOut));
        // The same desktop user after a reconnect: still hers.
        sign_in_as(&mut f, "cat");
        assert_eq!(f.outcome(signed_in("cat")), None);
        assert_eq!(f.student(), Some("cat"));
    }

    #[test]
    fn other_schools_are_offered_and_taken_only_where_the_policy_allows_it() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.set_schools(vec!["Oak Academy".into()]);
        f.policy(true, false);
        assert!(f.screen().unwrap().schools.is_empty(), "not allowed");
        assert_eq!(f.switch_to("Oak Academy"), None);
        f.policy(true, true);
        assert_eq!(f.screen().unwrap().schools, ["Oak Academy"]);
        assert_eq!(f.switch_to("Oak Academy").as_deref(), Some("Oak Academy"));
        // Only a school offered, and only while the screen is up: a signed-in
        // student is never carried into another school.
        assert_eq!(f.switch_to("Elm School"), None);
        sign_in_as(&mut f, "amy");
        assert_eq!(f.switch_to("Oak Academy"), None);
        f.outcome(SignInOutcome::SignedOut);
        f.desktop_user(None, None);
        assert_eq!(f.switch_to("Oak Academy"), None, "nobody logged in");
    }

    #[test]
    fn a_desktop_without_the_screen_is_not_told_again_at_every_poll() {
        let mut s = SignInState::default();
        let mut d = crate::HeadlessDesktop::new("pc", Some("pupil".into()));
        s.sync(&mut d);
        assert_eq!(s.screen_shown, Some(None), "nothing to take away, noted");
    }
}
