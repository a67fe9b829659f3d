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
//! the desktop's user changes (they log out of the shared account, or
//! another account logs in): then the agent signs them out, so the next
//! person at the computer is never taken for them.

use lectern_desktop::SignInScreen;
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
    /// The line the screen shows: why the last try failed.
    error: Option<String>,
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

    /// The device's policy changed: whether it offers student sign-in.
    pub fn policy(&mut self, offered: bool) {
        self.offered = offered;
    }

    /// The student signed in now, if any.
    pub fn student(&self) -> Option<&str> {
        self.student.as_deref()
    }

    /// The server's answer (also sent unasked at each connection).
    pub fn outcome(&mut self, outcome: SignInOutcome) {
        match outcome {
            SignInOutcome::SignedIn { name, .. } => {
                self.student = Some(name);
                self.error = None;
            }
            SignInOutcome::SignedOut => self.student = None,
            SignInOutcome::Refused {
                reason,
                retry_after_secs,
            } => self.error = Some(refusal_text(reason, retry_after_secs)),
        }
    }

    /// The desktop's user, as the desktop reports it now; a student signed
    /// in under another user (or under nobody: the session ended) is signed
    /// out. Returns the message for the server, if any.
    pub fn desktop_user(&mut self, user: Option<&str>) -> Option<AgentMsg> {
        if self.os_user.as_deref() == user {
            return None;
        }
        self.os_user = user.map(str::to_owned);
        self.error = None;
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
        })
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
        f.policy(true);
        let s = f.screen().expect("offered: shown");
        assert_eq!(s.error, None);
        f.outcome(signed_in("amy"));
        assert_eq!(f.screen(), None, "signed in: gone");
        f.outcome(SignInOutcome::SignedOut);
        assert!(f.screen().is_some(), "signed out: back");
        f.policy(false);
        assert_eq!(f.screen(), None, "no longer offered");

        let mut nobody = SignInFlow::new(true, None);
        nobody.policy(true);
        assert_eq!(nobody.screen(), None, "no one logged in");
        let mut incapable = SignInFlow::new(false, Some("pupil".into()));
        incapable.policy(true);
        assert_eq!(incapable.screen(), None);
        assert_eq!(incapable.typed("amy", pictures(&[1, 2, 3])), None);
    }

    #[test]
    fn what_cannot_be_right_is_not_sent_and_the_screen_says_why() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.policy(true);
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
        f.policy(true);
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
        f.outcome(signed_in("amy"));
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
        f.policy(true);
        assert_eq!(f.desktop_user(Some("pupil")), None, "no change");
        f.outcome(signed_in("amy"));
        assert_eq!(f.desktop_user(Some("pupil")), None, "same session");
        assert_eq!(f.desktop_user(None), Some(AgentMsg::StudentSignOut));
        assert_eq!(f.student(), None);
        assert_eq!(f.screen(), None, "nobody logged in: nothing shown");
        assert_eq!(f.desktop_user(Some("pupil")), None, "nobody to sign out");
        assert!(f.screen().is_some(), "the next person is asked");
        f.outcome(signed_in("ben"));
        assert_eq!(
            f.desktop_user(Some("staff")),
            Some(AgentMsg::StudentSignOut)
        );
    }

    #[test]
    fn sign_out_is_sent_only_for_a_signed_in_student() {
        let mut f = SignInFlow::new(true, Some("pupil".into()));
        f.policy(true);
        assert_eq!(f.sign_out(), None);
        f.outcome(signed_in("amy"));
        assert_eq!(f.sign_out(), Some(AgentMsg::StudentSignOut));
        f.outcome(SignInOutcome::SignedOut);
        assert_eq!(f.sign_out(), None);
        assert!(f.screen().is_some(), "the next student is asked");
    }
}
