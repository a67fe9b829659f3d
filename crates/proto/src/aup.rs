//! Acceptable use policies: the text a student must accept before using a
//! device, as the server sends it and the limits both sides hold.
//!
//! A policy is plain text (paragraphs separated by blank lines), any
//! Unicode, at most [`MAX_TEXT_BYTES`] bytes so that a
//! [`crate::ServerMsg::AcceptableUse`] always fits a control frame
//! ([`crate::MAX_SERVER_TEXT_FRAME`]) even with every line break escaped.

use serde::{Deserialize, Serialize};

use crate::requests::TextError;

/// Longest policy text, in bytes of UTF-8 (about eight pages).
pub const MAX_TEXT_BYTES: usize = 32 * 1024;

/// Longest policy title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;

/// One published version of a policy, as a student's device shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptableUse {
    /// The server's id of this version; the acceptance names it.
    pub version_id: i64,
    /// The version's number within its policy (1, 2, …), for the student.
    pub version: i64,
    /// Title, e.g. "Acceptable use of school computers".
    pub title: String,
    /// The text: paragraphs separated by blank lines.
    pub text: String,
    /// When it was published (ms since epoch).
    pub published_at: i64,
}

/// How a device answered an [`AcceptableUse`] it was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AupAnswer {
    /// The student pressed "I accept".
    Accepted,
    /// This device cannot show a policy (a headless agent, a platform
    /// without the surface); the server reports it and asks again at the
    /// next connection.
    Unsupported,
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

/// Checks a policy's text: not empty, at most [`MAX_TEXT_BYTES`], no control
/// characters but line breaks and tabs. Returns it trimmed, with Windows
/// line ends made plain.
pub fn check_text(text: &str) -> Result<String, TextError> {
    let text = text.replace("\r\n", "\n");
    let text = text.trim();
    if text.is_empty() {
        return Err(TextError::Empty("the policy text"));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(TextError::TooLong {
            what: "the policy text",
            len: text.len(),
            max: MAX_TEXT_BYTES,
            unit: "bytes",
        });
    }
    no_controls("the policy text", text)?;
    Ok(text.to_string())
}

/// Checks a policy's title: 1 to [`MAX_TITLE_CHARS`] characters on one line.
pub fn check_title(title: &str) -> Result<String, TextError> {
    let title = title.trim();
    let len = title.chars().count();
    if len == 0 {
        return Err(TextError::Empty("the title"));
    }
    if len > MAX_TITLE_CHARS {
        return Err(TextError::TooLong {
            what: "the title",
            len,
            max: MAX_TITLE_CHARS,
            unit: "characters",
        });
    }
    if title.chars().any(char::is_control) {
        return Err(TextError::Control("the title"));
    }
    Ok(title.to_string())
}

/// The text's paragraphs (split at blank lines), each with its own line
/// breaks kept, for a surface that lays them out.
pub fn paragraphs(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_unicode_limited_and_plain() {
        assert_eq!(
            check_text(" Règle 1 ✓\r\n\r\nПравило 2 ").unwrap(),
            "Règle 1 ✓\n\nПравило 2"
        );
        assert!(matches!(check_text(" \n "), Err(TextError::Empty(_))));
        assert!(check_text(&"é".repeat(MAX_TEXT_BYTES / 2)).is_ok());
        assert!(matches!(
            check_text(&"é".repeat(MAX_TEXT_BYTES / 2 + 1)),
            Err(TextError::TooLong { .. })
        ));
        assert!(matches!(
            check_text("a\u{1b}[2J"),
            Err(TextError::Control(_))
        ));
        assert!(matches!(check_title("a\nb"), Err(TextError::Control(_))));
        assert!(check_title(&"ü".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(check_title(&"ü".repeat(MAX_TITLE_CHARS + 1)).is_err());
    }

    #[test]
    fn the_largest_policy_fits_a_server_frame() {
        // Every byte a line break: each escapes to two bytes in JSON.
        let msg = crate::ServerMsg::AcceptableUse {
            policy: AcceptableUse {
                version_id: i64::MAX,
                version: i64::MAX,
                title: "ü".repeat(MAX_TITLE_CHARS),
                text: "\n".repeat(MAX_TEXT_BYTES),
                published_at: i64::MAX,
            },
        };
        let text = msg.encode();
        assert!(text.len() < crate::MAX_SERVER_TEXT_FRAME);
        assert_eq!(crate::ServerMsg::decode(&text).unwrap(), msg);
    }

    #[test]
    fn paragraphs_split_at_blank_lines() {
        assert_eq!(paragraphs("a\nb\n\n\n c \n\n"), ["a\nb", "c"]);
    }
}
