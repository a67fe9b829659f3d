//! The server's TOML configuration, `server.toml` in the data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the configuration inside the data directory.
pub const CONFIG_FILE: &str = "server.toml";
/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "lectern.db";

/// Everything `serve` reads at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address for HTTPS (console, API, agents).
    pub listen: SocketAddr,
    /// PEM certificate chain; relative paths are inside the data directory.
    pub cert: PathBuf,
    /// PEM private key; relative paths are inside the data directory.
    pub key: PathBuf,
    /// Seconds between agent heartbeats; a silent agent is dropped after three.
    pub heartbeat_secs: u32,
    /// Console session lifetime, hours.
    pub session_hours: u32,
    /// Thumbnail width requested from agents, pixels.
    pub thumbnail_width: u32,
    /// Milliseconds between thumbnails.
    pub thumbnail_interval_ms: u32,
    /// Answer agents' UDP discovery broadcasts on the listener's port.
    pub discovery: bool,
    /// Local time of the nightly settings backup, `HH:MM` (empty: no backups).
    pub backup_time: String,
    /// Nightly backups kept in `backups/`.
    pub backup_keep: usize,
    /// Days to keep activity events.
    pub activity_days: u32,
    /// Days to keep violations and their screenshots.
    pub violation_days: u32,
    /// Days to keep the console audit log.
    pub audit_days: u32,
    /// What a keyword match of severity 1..=5 does: `log`, `screenshot`
    /// (log with evidence), `alert` (evidence and a live alert) or `lock`
    /// (alert and lock the device).
    pub keyword_actions: Vec<String>,
    /// Listener limits and timeouts (`[connections]`).
    pub connections: crate::connections::ConnectionLimits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], lectern_proto::DEFAULT_PORT)),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
            heartbeat_secs: 15,
            session_hours: 12,
            thumbnail_width: 320,
            thumbnail_interval_ms: 1000,
            discovery: true,
            backup_time: "00:05".into(),
            backup_keep: 14,
            activity_days: 90,
            violation_days: 365,
            audit_days: 30,
            keyword_actions: ["log", "screenshot", "alert", "alert", "lock"]
                .map(String::from)
                .to_vec(),
            connections: Default::default(),
        }
    }
}

impl ServerConfig {
    /// Reads `server.toml` from `data_dir`.
    pub fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e} (run `lectern-server init` first)",
                path.display()
            )
        })?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Writes `server.toml` into `data_dir`.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        std::fs::write(data_dir.join(CONFIG_FILE), toml::to_string_pretty(self)?)?;
        Ok(())
    }

    /// `path` resolved against the data directory.
    pub fn resolve(data_dir: &Path, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            data_dir.join(path)
        }
    }
}
