//! What a student asks for from the desktop (a raised hand, a chat message)
//! and what the server answers, between the agent core and a backend.

use lectern_proto::requests::ChatLine;
use serde::{Deserialize, Serialize};

/// Something the student did on a request surface, for the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StudentRequest {
    /// Raise a hand with this note (may be empty).
    RaiseHand {
        /// The note.
        note: String,
    },
    /// Withdraw the raised hand.
    LowerHand,
    /// Send a chat message.
    Chat {
        /// The text.
        text: String,
    },
    /// The student accepted the acceptable use policy shown.
    AcceptAup {
        /// Its [`lectern_proto::aup::AcceptableUse::version_id`].
        version_id: i64,
    },
    /// The signed-in student pressed "Sign out".
    SignOut,
    /// A student signed in on the sign-in screen (see
    /// [`crate::Desktop::show_student_sign_in`]).
    SignIn {
        /// The user name typed.
        name: String,
        /// The pictures tapped or the password typed.
        secret: lectern_proto::signin::StudentSecret,
    },
    /// The student chose another school this device is registered with,
    /// one of [`SignInScreen::schools`].
    SwitchSchool {
        /// Its name, as offered.
        school: String,
    },
}

/// What the student sign-in screen shows besides the form (the backend adds
/// the school's name it was told, and the protocol's picture grid).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInScreen {
    /// Why the last try was refused (or could not be right), if it was.
    pub error: Option<String>,
    /// The other schools this device is registered with, by name, when the
    /// school it is in now lets students switch: the screen offers each
    /// (chosen, it comes back as [`StudentRequest::SwitchSchool`]).
    #[serde(default)]
    pub schools: Vec<String>,
}

/// What the server said about the student's requests, for the screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StudentNotice {
    /// The hand is raised and the teachers see it.
    HandRaised,
    /// The hand is down: answered (shown to the student), dismissed or
    /// withdrawn.
    HandClosed {
        /// The teacher's answer.
        answer: Option<String>,
    },
    /// The server refused the raise or withdraw (the reason, for the student).
    HandRefused {
        /// Why.
        message: String,
    },
    /// A chat line (a teacher's, or the student's own as stored).
    Chat {
        /// The line.
        line: ChatLine,
    },
    /// The recent lines of the device's chat (oldest first): they replace
    /// what the chat shows, without opening it.
    ChatHistory {
        /// The lines.
        lines: Vec<ChatLine>,
    },
    /// The server refused a chat message.
    ChatRefused {
        /// Why.
        message: String,
    },
}
