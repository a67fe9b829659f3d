use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A fresh random token: 32 bytes from the OS generator, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Prefix of enrollment tokens: a secret printed for people to paste must not
/// begin with `-` (an argument parser reads it as a flag) and is easy to spot
/// in logs and secret scanners. Tokens are checked by hash, so older tokens
/// without it keep working.
pub const ENROLLMENT_TOKEN_PREFIX: &str = "lct_";
/// Prefix of generated console passwords, for the same reasons.
pub const PASSWORD_PREFIX: &str = "lcp_";

/// A secret for people to copy: `prefix` and a random token, so it never
/// begins with `-`.
pub fn printable_secret(prefix: &str) -> String {
    format!("{prefix}{}", random_token())
}

/// A generated console password: [`PASSWORD_PREFIX`] and 20 random characters
/// (120 bits).
pub fn generated_password() -> String {
    format!("{PASSWORD_PREFIX}{}", &random_token()[..20])
}

/// SHA-256 of a high-entropy secret (tokens, device secrets), hex. Such secrets
/// need no slow hash: they cannot be guessed, and a fast hash keeps 10,000
/// reconnecting agents cheap. Passwords use Argon2 instead.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_secrets_never_start_with_a_hyphen() {
        for _ in 0..1000 {
            let t = printable_secret(ENROLLMENT_TOKEN_PREFIX);
            assert!(t.starts_with("lct_") && t.len() == 4 + 43, "{t}");
            let p = generated_password();
            assert!(p.starts_with("lcp_") && p.len() == 24, "{p}");
        }
    }
}
