use lectern_proto::Command;

/// Longest message a teacher may send, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// Longest lock-screen text, in characters.
pub const MAX_LOCK_TEXT_CHARS: usize = 500;
/// Longest URL accepted for `launch_url`, in bytes.
pub const MAX_URL_LEN: usize = 2048;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The message or lock text is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// Text longer than allowed.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// Text with control characters that could spoof the UI.
    #[error("{0} contains control characters")]
    ControlChars(&'static str),
    /// A URL that is not an absolute http(s) URL with a host.
    #[error("url is not allowed: {0}")]
    BadUrl(String),
    /// A web list that is too long or holds a malformed pattern.
    #[error("{0}")]
    Invalid(String),
}

fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), PolicyError> {
    if text.trim().is_empty() {
        return Err(PolicyError::Empty(field));
    }
    if text.chars().count() > max {
        return Err(PolicyError::TooLong { field, max });
    }
    // Newlines and tabs are fine in a message; other control and bidi-override
    // characters are how a message would impersonate the system.
    if text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t') || ('\u{202A}'..='\u{202E}').contains(&c)
    }) {
        return Err(PolicyError::ControlChars(field));
    }
    Ok(())
}

/// Checks that `url` is safe to open on a student's machine: an absolute `http`
/// or `https` URL with a host, no credentials, no whitespace, at most
/// [`MAX_URL_LEN`] bytes. Returns the normalized URL.
pub fn check_url(url: &str) -> Result<String, PolicyError> {
    if url.len() > MAX_URL_LEN {
        return Err(PolicyError::BadUrl(format!(
            "longer than {MAX_URL_LEN} bytes"
        )));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(PolicyError::BadUrl(
            "contains whitespace or control characters".into(),
        ));
    }
    let parsed = url::Url::parse(url).map_err(|e| PolicyError::BadUrl(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(PolicyError::BadUrl(format!(
            "scheme {:?} is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(PolicyError::BadUrl("no host".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(PolicyError::BadUrl(
            "credentials in URLs are not allowed".into(),
        ));
    }
    Ok(parsed.into())
}

/// A meeting link: an allowed URL (see [`check_url`]) that is `https`, so
/// that the meeting's address and its joining code are not sent in clear.
pub fn check_meeting_url(url: &str) -> Result<String, PolicyError> {
    let checked = check_url(url)?;
    if !checked.starts_with("https://") {
        return Err(PolicyError::BadUrl(
            "a meeting link must start with https://".into(),
        ));
    }
    Ok(checked)
}

/// A timed lock lasts 1 to [`lectern_proto::MAX_LOCK_MINUTES`] minutes.
fn check_lock_minutes(minutes: u32) -> Result<(), PolicyError> {
    if (1..=lectern_proto::MAX_LOCK_MINUTES).contains(&minutes) {
        return Ok(());
    }
    Err(PolicyError::Invalid(format!(
        "a timed lock lasts 1 to {} minutes, not {minutes}",
        lectern_proto::MAX_LOCK_MINUTES
    )))
}

/// Validates a command before it is sent (server) or run (agent).
pub fn validate_command(cmd: &Command) -> Result<(), PolicyError> {
    match cmd {
        Command::Message { text } => check_text("message text", text, MAX_MESSAGE_CHARS),
        Command::LaunchUrl { url } => check_url(url).map(drop),
        Command::Meeting { url } => check_meeting_url(url).map(drop),
        Command::Lock { text, minutes } => {
            if let Some(m) = minutes {
                check_lock_minutes(*m)?;
            }
            match text {
                Some(text) => check_text("lock text", text, MAX_LOCK_TEXT_CHARS),
                None => Ok(()),
            }
        }
        Command::Unlock
        | Command::ClearMessage
        | Command::BlockInternet
        | Command::UnblockInternet
        | Command::Logout
        | Command::CloseTab { .. }
        | Command::CloseAllTabs => Ok(()),
        Command::SetWebFilter { allow, block, .. } => {
            for (name, list) in [("allow", allow), ("block", block)] {
                if list.len() > crate::settings::MAX_DOMAINS {
                    return Err(PolicyError::Invalid(format!(
                        "the {name} list has more than {} patterns",
                        crate::settings::MAX_DOMAINS
                    )));
                }
                crate::settings::check_domain_list(list)
                    .map_err(|e| PolicyError::Invalid(format!("the {name} list's {e}")))?;
            }
            Ok(())
        }
        Command::Power { countdown_secs, .. } => {
            let max = lectern_proto::power::MAX_COUNTDOWN_SECS;
            if *countdown_secs > max {
                return Err(PolicyError::Invalid(format!(
                    "the countdown must be 0 to {max} seconds"
                )));
            }
            Ok(())
        }
        Command::CancelPower => Ok(()),
    }
}

/// Matches a hostname against a pattern where `*` stands for any run of
/// characters (including none), anywhere in the pattern. Case-insensitive, as
/// hostnames are.
pub fn hostname_matches(pattern: &str, hostname: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let h: Vec<char> = hostname.to_lowercase().chars().collect();
    // Classic greedy wildcard match with backtracking to the last star: linear
    // in practice and never exponential.
    let (mut pi, mut hi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while hi < h.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, hi));
            pi += 1;
        } else if pi < p.len() && p[pi] == h[hi] {
            pi += 1;
            hi += 1;
        } else if let Some((sp, sh)) = star {
            pi = sp + 1;
            hi = sh + 1;
            star = Some((sp, sh + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls() {
        for ok in [
            "https://example.org",
            "http://intranet.school/page?q=1#x",
            "https://10.0.0.1:8443/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,hi",
            "example.org",
            "https://user:pw@example.org/",
            "https://exa mple.org",
            "https://example.org/\u{0}",
            "http://",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
        assert!(check_url(&format!("https://e.org/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn texts() {
        assert!(validate_command(&Command::Message {
            text: "Eyes to the front\nplease".into()
        })
        .is_ok());
        assert_eq!(
            validate_command(&Command::Message { text: "  ".into() }),
            Err(PolicyError::Empty("message text"))
        );
        assert!(validate_command(&Command::Message {
            text: "x".repeat(MAX_MESSAGE_CHARS + 1)
        })
        .is_err());
        assert!(validate_command(&Command::Message {
            text: "a\u{202E}b".into()
        })
        .is_err());
        assert!(validate_command(&Command::Lock {
            text: Some("\u{7}".into()),
            minutes: None
        })
        .is_err());
        assert!(validate_command(&Command::Lock {
            text: None,
            minutes: None
        })
        .is_ok());
        for bad in [0, lectern_proto::MAX_LOCK_MINUTES + 1] {
            assert!(validate_command(&Command::Lock {
                text: None,
                minutes: Some(bad)
            })
            .is_err());
        }
        assert!(validate_command(&Command::Lock {
            text: None,
            minutes: Some(5)
        })
        .is_ok());
    }

    #[test]
    fn wildcards() {
        assert!(hostname_matches("IT01*", "IT01-PC05"));
        assert!(hostname_matches("*pc*", "LAB-PC-3"));
        assert!(hostname_matches("lab?", "lab?"));
        assert!(hostname_matches("*", ""));
        assert!(!hostname_matches("IT01*", "IT02-PC01"));
        assert!(!hostname_matches("lab", "lab1"));
        assert!(hostname_matches("a*b*c", "aXXbYYc"));
        assert!(!hostname_matches("a*b*c", "aXXbYY"));
    }

    proptest! {
        #[test]
        fn exact_pattern_matches_itself(h in "[a-zA-Z0-9-]{0,20}") {
            prop_assert!(hostname_matches(&h, &h));
            let pattern = format!("{}*", h);
            let host = format!("{}tail", h);
            prop_assert!(hostname_matches(&pattern, &host));
        }

        #[test]
        fn never_panics(p in ".{0,12}", h in ".{0,24}") {
            let _ = hostname_matches(&p, &h);
            let _ = check_url(&h);
        }
    }
}
