//! Student requests: a raised hand with an optional note, its answer, and
//! two-way chat between a teacher and students.
//!
//! The limits here are the wire's; the server meters each device on top of
//! them (see `crates/server/src/requests.rs`).

use serde::{Deserialize, Serialize};

/// Longest note a student may attach to a raised hand, in characters.
pub const MAX_NOTE_CHARS: usize = 500;

/// Longest answer a teacher may give to a raised hand, in characters.
pub const MAX_ANSWER_CHARS: usize = 500;

/// Longest chat message either side may send, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 1024;

/// Most lines a [`crate::ServerMsg::ChatHistory`] carries: the newest of the
/// device's current thread, so a chat window is not empty after a reconnect.
pub const HISTORY_LINES: usize = 20;

/// One line of a chat as a student's screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// The server's id of the message.
    pub id: i64,
    /// Written by the teacher (true) or by the student on this device.
    pub from_teacher: bool,
    /// Who wrote it: the teacher's user name, or the student's.
    pub author: String,
    /// The text, at most [`MAX_CHAT_BYTES`].
    pub text: String,
    /// When (ms since epoch).
    pub at: i64,
}

/// Why a note, answer or chat text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Longer than allowed.
    #[error("{what} is too long: {len} of at most {max} {unit}")]
    TooLong {
        /// "the note", "the message"…
        what: &'static str,
        /// Its length.
        len: usize,
        /// The most allowed.
        max: usize,
        /// "characters" or "bytes".
        unit: &'static str,
    },
    /// Empty (after trimming) where text is needed.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// Contains control characters other than line breaks and tabs.
    #[error("{0} contains control characters")]
    Control(&'static str),
}

fn no_controls(what: &'static str, text: &str) -> Result<(), TextError> {
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(TextError::Control(what));
    }
    Ok(())
}

/// Checks a raised hand's note (may be empty) and returns it trimmed.
pub fn check_note(note: &str) -> Result<String, TextError> {
    let note = note.trim();
    let len = note.chars().count();
    if len > MAX_NOTE_CHARS {
        return Err(TextError::TooLong {
            what: "the note",
            len,
            max: MAX_NOTE_CHARS,
            unit: "characters",
        });
    }
    no_controls("the note", note)?;
    Ok(note.to_string())
}

/// Checks a teacher's answer to a raised hand and returns it trimmed.
pub fn check_answer(answer: &str) -> Result<String, TextError> {
    let answer = answer.trim();
    let len = answer.chars().count();
    if len == 0 {
        return Err(TextError::Empty("the answer"));
    }
    if len > MAX_ANSWER_CHARS {
        return Err(TextError::TooLong {
            what: "the answer",
            len,
            max: MAX_ANSWER_CHARS,
            unit: "characters",
        });
    }
    no_controls("the answer", answer)?;
    Ok(answer.to_string())
}

/// Checks a chat message (not empty, at most [`MAX_CHAT_BYTES`]) and returns
/// it trimmed.
pub fn check_chat(text: &str) -> Result<String, TextError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TextError::Empty("the message"));
    }
    if text.len() > MAX_CHAT_BYTES {
        return Err(TextError::TooLong {
            what: "the message",
            len: text.len(),
            max: MAX_CHAT_BYTES,
            unit: "bytes",
        });
    }
    no_controls("the message", text)?;
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_may_be_empty_but_not_too_long() {
        assert_eq!(check_note("  ").unwrap(), "");
        assert_eq!(check_note(" Zoë: ✓ ").unwrap(), "Zoë: ✓");
        let long = "é".repeat(MAX_NOTE_CHARS + 1);
        assert!(matches!(check_note(&long), Err(TextError::TooLong { .. })));
        assert!(check_note(&"é".repeat(MAX_NOTE_CHARS)).is_ok());
        assert!(matches!(check_note("a\u{7}"), Err(TextError::Control(_))));
    }

    #[test]
    fn chat_is_limited_in_bytes_and_never_empty() {
        assert!(matches!(check_chat(" \n"), Err(TextError::Empty(_))));
        assert!(check_chat(&"a".repeat(MAX_CHAT_BYTES)).is_ok());
        let err = check_chat(&"€".repeat(400)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the message is too long: 1200 of at most 1024 bytes"
        );
        assert_eq!(
            check_chat("line one\nline two").unwrap(),
            "line one\nline two"
        );
    }

    #[test]
    fn answers_need_text() {
        assert!(matches!(check_answer(""), Err(TextError::Empty(_))));
        assert_eq!(check_answer(" Coming ").unwrap(), "Coming");
    }
}
