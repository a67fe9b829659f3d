//! Student sign-in on shared devices (issue 16): a student with no
//! automatic identifier (an OS login or browser account that is one of
//! their profile's aliases) signs in with their user name and a **picture
//! password** (3 or 4 pictures from a fixed grid, for young children) or a
//! text password, both set by their teachers. The device sends
//! [`crate::AgentMsg::StudentSignIn`]; the server checks it (rate-limited)
//! and answers [`crate::ServerMsg::StudentSignIn`]. Until the student signs
//! out, the server attributes the device's session to them.
//!
//! ```
//! use lectern_proto::signin::{StudentSecret, PICTURES};
//!
//! let secret = StudentSecret::Picture { picture: vec![0, 5, 9] };
//! assert!(secret.check().is_ok());
//! assert_eq!(secret.canonical(), "picture:0,5,9");
//! assert_eq!(PICTURES[0].0, "🐶");
//! ```

use serde::{Deserialize, Serialize};

/// The picture grid, in order (4 × 4): each picture and its name (what a
/// screen reader says, and what a teacher reads out).
pub const PICTURES: [(&str, &str); 16] = [
    ("🐶", "dog"),
    ("🐱", "cat"),
    ("🐸", "frog"),
    ("🦊", "fox"),
    ("🐻", "bear"),
    ("🐼", "panda"),
    ("🦁", "lion"),
    ("🐷", "pig"),
    ("🍎", "apple"),
    ("🍌", "banana"),
    ("🍓", "strawberry"),
    ("🍕", "pizza"),
    ("⚽", "ball"),
    ("🚗", "car"),
    ("🚀", "rocket"),
    ("⭐", "star"),
];

/// Fewest and most pictures in a picture password.
pub const PICTURE_LEN: std::ops::RangeInclusive<usize> = 3..=4;

/// Shortest and longest text password, in characters.
pub const TEXT_LEN: std::ops::RangeInclusive<usize> = 6..=128;

/// Longest user name typed, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// What a student signs in with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StudentSecret {
    /// Pictures of [`PICTURES`] by index, in order.
    Picture {
        /// Indexes into [`PICTURES`].
        picture: Vec<u8>,
    },
    /// A text password.
    Text {
        /// The password.
        password: String,
    },
}

/// Why a secret is not one a student could have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Fewer or more pictures than [`PICTURE_LEN`].
    #[error("a picture password has 3 or 4 pictures")]
    PictureLength,
    /// An index past the grid.
    #[error("a picture password uses only the 16 pictures of the grid")]
    NoSuchPicture,
    /// Shorter or longer than [`TEXT_LEN`].
    #[error("a text password has 6 to 128 characters")]
    TextLength,
}

impl StudentSecret {
    /// Checks the shape (not whether it is right).
    pub fn check(&self) -> Result<(), SecretError> {
        match self {
            StudentSecret::Picture { picture } => {
                if !PICTURE_LEN.contains(&picture.len()) {
                    return Err(SecretError::PictureLength);
                }
                if picture.iter().any(|&i| usize::from(i) >= PICTURES.len()) {
                    return Err(SecretError::NoSuchPicture);
                }
                Ok(())
            }
            StudentSecret::Text { password } => {
                if TEXT_LEN.contains(&password.chars().count()) {
                    Ok(())
                } else {
                    Err(SecretError::TextLength)
                }
            }
        }
    }

    /// `picture` or `text`.
    pub fn kind(&self) -> &'static str {
        match self {
            StudentSecret::Picture { .. } => "picture",
            StudentSecret::Text { .. } => "text",
        }
    }

    /// The string the server hashes and checks: the kind, then the secret,
    /// so a text password never matches a picture password.
    pub fn canonical(&self) -> String {
        match self {
            StudentSecret::Picture { picture } => {
                let list: Vec<String> = picture.iter().map(u8::to_string).collect();
                format!("picture:{}", list.join(","))
            }
            StudentSecret::Text { password } => format!("text:{password}"),
        }
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInRefusal {
    /// No such student, no password set, or the wrong one (never which).
    WrongCredentials,
    /// Too many wrong tries: wait [`SignInOutcome::Refused::retry_after_secs`].
    RateLimited,
    /// The school does not offer student sign-in on this device.
    NotOffered,
    /// The name or secret was not one a student could have.
    Malformed,
}

/// The server's answer to a sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SignInOutcome {
    /// Signed in: the session is theirs until they sign out.
    SignedIn {
        /// The name they signed in with (what the device now reports).
        name: String,
        /// Their name as their school shows it.
        display_name: String,
    },
    /// Refused.
    Refused {
        /// Why.
        reason: SignInRefusal,
        /// Seconds to wait before the next try (rate-limited), else 0.
        #[serde(default)]
        retry_after_secs: u64,
    },
    /// Signed out (after [`crate::AgentMsg::StudentSignOut`]).
    SignedOut,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_checked_for_shape() {
        let pic = |p: &[u8]| StudentSecret::Picture {
            picture: p.to_vec(),
        };
        assert_eq!(pic(&[1, 2]).check(), Err(SecretError::PictureLength));
        assert_eq!(
            pic(&[1, 2, 3, 4, 5]).check(),
            Err(SecretError::PictureLength)
        );
        assert_eq!(pic(&[1, 2, 16]).check(), Err(SecretError::NoSuchPicture));
        assert!(pic(&[15, 15, 15, 15]).check().is_ok());
        let text = |t: &str| StudentSecret::Text { password: t.into() };
        assert_eq!(text("short").check(), Err(SecretError::TextLength));
        assert!(text("ünïcødé").check().is_ok());
        assert_ne!(text("0,5,9").canonical(), pic(&[0, 5, 9]).canonical());
    }

    #[test]
    fn the_wire_form_is_tagged() {
        let s: StudentSecret =
            serde_json::from_str(r#"{"kind":"picture","picture":[3,1,4]}"#).unwrap();
        assert_eq!(
            s,
            StudentSecret::Picture {
                picture: vec![3, 1, 4]
            }
        );
        assert!(
            serde_json::from_str::<StudentSecret>(r#"{"kind":"text","password":"x","y":1}"#)
                .is_err()
        );
        let o = SignInOutcome::Refused {
            reason: SignInRefusal::RateLimited,
            retry_after_secs: 30,
        };
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"outcome":"refused","reason":"rate_limited","retry_after_secs":30}"#
        );
    }

    #[test]
    fn the_grid_has_sixteen_distinct_pictures() {
        let mut seen: Vec<&str> = PICTURES.iter().map(|p| p.0).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 16);
    }
}
