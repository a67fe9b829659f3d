//! Secrets the server must read back (the directory's bind password), kept
//! encrypted at rest: AES-256-GCM (`ring::aead`) under a random 256-bit key
//! in `<data>/secrets.key`. The key file is never in the database, so a
//! backup of the database holds only ciphertext; a database restored on
//! another server (or after the key file is lost) cannot be decrypted there,
//! and the secret must be entered again.
//!
//! Stored form: `v1:` and base64 of the 12-byte random nonce followed by the
//! ciphertext and its tag. The associated data names the school and the
//! purpose, so a value copied into another school's row or another column
//! does not decrypt.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};

/// The key file's name in the data directory (mode 0600).
pub const KEY_FILE: &str = "secrets.key";
/// The prefix of the current stored form.
const V1: &str = "v1:";
const KEY_LEN: usize = 32;

/// Why a secret could not be sealed or opened. Callers act on the kind: an
/// undecryptable value asks for the secret again, a key file problem is ours.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file could not be read or created, or is not 32 bytes.
    #[error("the secrets key file {0}")]
    KeyFile(String),
    /// The value is not ours to open: another key, another school or
    /// purpose, tampered with, or malformed.
    #[error("the stored secret could not be decrypted")]
    Undecryptable,
}

/// A stored value, opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// It was sealed; the secret.
    Sealed(String),
    /// It predates sealing (plain text): the secret, to be sealed now.
    Plain(String),
}

/// The associated data binding a sealed value to its school and purpose.
pub fn context(school: i64, purpose: &str) -> String {
    format!("lectern:{purpose}:school={school}")
}

/// Reads `<data_dir>/secrets.key`, creating it (random, 0600) on first need.
fn key(data_dir: &Path) -> Result<LessSafeKey, SealError> {
    let path = data_dir.join(KEY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(&path)?,
        Err(e) => return Err(SealError::KeyFile(format!("{}: {e}", path.display()))),
    };
    if bytes.len() != KEY_LEN {
        return Err(SealError::KeyFile(format!(
            "{} is not {KEY_LEN} bytes",
            path.display()
        )));
    }
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
        .map_err(|_| SealError::KeyFile(format!("{}: unusable key", path.display())))?;
    Ok(LessSafeKey::new(unbound))
}

/// Creates the key file with a fresh key; if another task created it first,
/// reads theirs.
fn create_key(path: &Path) -> Result<Vec<u8>, SealError> {
    let mut bytes = vec![0u8; KEY_LEN];
    rand::rng().fill_bytes(&mut bytes);
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(&bytes).and_then(|_| f.sync_all()));
    match made {
        Ok(()) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(|e| SealError::KeyFile(format!("{}: {e}", path.display())))
        }
        Err(e) => Err(SealError::KeyFile(format!("{}: {e}", path.display()))),
    }
}

/// Encrypts `secret` for storage, bound to `context`.
pub fn seal(data_dir: &Path, context: &str, secret: &str) -> Result<String, SealError> {
    let key = key(data_dir)?;
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut buf = secret.as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(context.as_bytes()),
        &mut buf,
    )
    .map_err(|_| SealError::Undecryptable)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(format!(
        "{V1}{}",
        base64::engine::general_purpose::STANDARD.encode(out)
    ))
}

/// Decrypts a stored value bound to `context`. A value without the `v1:`
/// prefix is plain text from before sealing and is returned as such (the
/// caller seals it); a plain-text secret that itself began with `v1:` is
/// taken as sealed and must be entered again.
pub fn open(data_dir: &Path, context: &str, stored: &str) -> Result<Opened, SealError> {
    let Some(b64) = stored.strip_prefix(V1) else {
        return Ok(Opened::Plain(stored.to_string()));
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| SealError::Undecryptable)?;
    if raw.len() < NONCE_LEN {
        return Err(SealError::Undecryptable);
    }
    let key = key(data_dir)?;
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Undecryptable)?;
    let mut buf = sealed.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
        .map_err(|_| SealError::Undecryptable)?;
    String::from_utf8(plain.to_vec())
        .map(Opened::Sealed)
        .map_err(|_| SealError::Undecryptable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(1, "directory.bind_password");
        let s = seal(dir.path(), &ctx, "pw-123").unwrap();
        assert!(s.starts_with("v1:") && !s.contains("pw-123"), "{s}");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            open(dir.path(), &ctx, &s).unwrap(),
            Opened::Sealed("pw-123".into())
        );
        // Two seals of one secret differ (fresh nonces).
        assert_ne!(seal(dir.path(), &ctx, "pw-123").unwrap(), s);
        // Another school's context does not open it.
        let other = context(2, "directory.bind_password");
        assert!(matches!(
            open(dir.path(), &other, &s),
            Err(SealError::Undecryptable)
        ));
        // Nor another key.
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(matches!(
            open(elsewhere.path(), &ctx, &s),
            Err(SealError::Undecryptable)
        ));
    }

    #[test]
    fn tampered_or_malformed_values_are_refused_and_plain_text_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(1, "p");
        let s = seal(dir.path(), &ctx, "secret").unwrap();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&s[3..])
            .unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(&raw)
        );
        for bad in [tampered.as_str(), "v1:", "v1:!!", "v1:AAAA"] {
            assert!(
                matches!(open(dir.path(), &ctx, bad), Err(SealError::Undecryptable)),
                "{bad}"
            );
        }
        assert_eq!(
            open(dir.path(), &ctx, "old-plain").unwrap(),
            Opened::Plain("old-plain".into())
        );
    }

    #[test]
    fn a_short_key_file_is_a_key_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        assert!(matches!(
            seal(dir.path(), "c", "x"),
            Err(SealError::KeyFile(_))
        ));
    }
}
