//! The school's look on student screens (issue 13 point 1): the name and an
//! optional logo, addressed by the SHA-256 of its PNG so an agent downloads
//! the bytes only when they changed.
//!
//! The server sends [`crate::ServerMsg::SchoolLook`] to every agent with a
//! lock screen when it connects and whenever an administrator changes the
//! look. An agent that does not hold the named logo asks with
//! [`crate::AgentMsg::WantLogo`]; the server answers
//! [`crate::ServerMsg::SchoolLogo`] once per logo and connection (a repeated
//! or stale request is ignored), and the agent checks the bytes against the
//! hash before showing them.

/// Largest logo PNG, in bytes (the server's stored, re-encoded PNG; the
/// agent refuses more). Base64 makes it 683 KiB, inside
/// [`crate::MAX_SERVER_TEXT_FRAME`].
pub const MAX_LOGO_PNG: usize = 512 * 1024;

/// Longest school display name, in characters.
pub const MAX_SCHOOL_NAME: usize = 100;

/// Whether `s` looks like a SHA-256 in lower-case hex (64 characters).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_64_lower_case_hex_digits() {
        assert!(is_sha256_hex(&"ab".repeat(32)));
        assert!(!is_sha256_hex(&"AB".repeat(32)));
        assert!(!is_sha256_hex("abc"));
        assert!(!is_sha256_hex(&"zz".repeat(32)));
    }
}
