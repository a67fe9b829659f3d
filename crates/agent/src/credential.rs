use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What enrollment leaves in the agent's state directory: where the server is,
/// the certificate fingerprint to pin, and this device's credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCredential {
    /// Server address, `host:port`, or several separated by commas (a
    /// cluster's gateways, see [`crate::connect`]).
    pub server: String,
    /// SHA-256 fingerprint of the server certificate, hex.
    pub fingerprint: String,
    /// School name as the server reported it.
    pub school: String,
    /// Device id.
    pub device_id: i64,
    /// Device secret.
    pub secret: String,
}

impl StoredCredential {
    /// File name inside the state directory.
    pub const FILE: &'static str = "credential.json";

    /// Path of the credential in `state_dir`.
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join(Self::FILE)
    }

    /// Reads the credential from `state_dir`.
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        let path = Self::path(state_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e} (enroll this device first)",
                path.display()
            )
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Writes the credential to `state_dir`, readable by the agent only (mode 0600 on Unix), atomically (temp file + rename).
    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let tmp = state_dir.join(format!("{}.tmp", Self::FILE));
        let mut f = crate::platform::create_private_file(&tmp)?;
        f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, Self::path(state_dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let c = StoredCredential {
            server: "s:1".into(),
            fingerprint: "ab".into(),
            school: "x".into(),
            device_id: 3,
            secret: "z".into(),
        };
        c.save(dir.path()).unwrap();
        assert_eq!(StoredCredential::load(dir.path()).unwrap(), c);
        assert!(StoredCredential::load(&dir.path().join("nope")).is_err());
    }
}
