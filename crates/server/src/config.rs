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
    /// Seconds between the server's WebSocket pings on a console stream, so a
    /// quiet one is never cut by `connections.idle_secs`.
    pub console_ping_secs: u32,
    /// Console session lifetime, hours.
    pub session_hours: u32,
    /// Thumbnail width requested from agents, pixels.
    pub thumbnail_width: u32,
    /// Milliseconds between thumbnails.
    pub thumbnail_interval_ms: u32,
    /// Width asked of the one device a console shows in its live view, pixels
    /// (agents cap it at 1920).
    pub live_width: u32,
    /// Milliseconds between live-view frames (agents go no faster than 100;
    /// the browser extension no faster than its capture budget, 2 a second).
    pub live_interval_ms: u32,
    /// Seconds a student has to answer a `remote_view = ask_then_*` question
    /// before the policy's default applies (5 to 120; sent to the device with
    /// each question).
    pub remote_view_ask_secs: AskSecs,
    /// Answer agents' UDP discovery broadcasts on the listener's port.
    pub discovery: bool,
    /// Local time of the nightly settings backup, `HH:MM` (empty: no backups).
    pub backup_time: String,
    /// Nightly backups kept in `backups/`.
    pub backup_keep: usize,
    /// Days to keep activity events, chat messages and closed help requests.
    pub activity_days: u32,
    /// Days to keep violations and their screenshots.
    pub violation_days: u32,
    /// Days to keep the console audit log.
    pub audit_days: u32,
    /// What a keyword match of severity 1, 2, 3, 4 and 5 does (exactly five).
    pub keyword_actions: [KeywordAction; 5],
    /// Bearer token that `GET /metrics` on the main listener requires
    /// (`Authorization: Bearer <token>`); empty: `/metrics` is refused there.
    /// `init` writes a random one.
    pub metrics_token: String,
    /// A separate plain-HTTP address serving only `/metrics`, without a token
    /// (for a scraper on loopback or a monitoring network); none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// Per-device limits and naming rules (`[devices]`), per school.
    pub devices: crate::device_rules::DeviceRules,
    /// Listener limits and timeouts (`[connections]`).
    pub connections: crate::connections::ConnectionLimits,
    /// Wake-on-LAN (`[power]`).
    pub power: crate::power::PowerConfig,
    /// OneRoster drop folders (`[roster]`).
    pub roster: crate::roster::RosterConfig,
    /// The shared store of a cluster (`[cluster]`); none: the SQLite file
    /// in the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::engine::ClusterConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], lectern_proto::DEFAULT_PORT)),
            cert: "cert.pem".into(),
            key: "key.pem".into(),
            heartbeat_secs: 15,
            console_ping_secs: 30,
            session_hours: 12,
            thumbnail_width: 320,
            thumbnail_interval_ms: 1000,
            live_width: crate::hub::LIVE_STREAM.0,
            live_interval_ms: crate::hub::LIVE_STREAM.1,
            remote_view_ask_secs: AskSecs::default(),
            discovery: true,
            backup_time: "00:05".into(),
            backup_keep: 14,
            activity_days: 90,
            violation_days: 365,
            audit_days: 30,
            keyword_actions: [
                KeywordAction::Log,
                KeywordAction::Screenshot,
                KeywordAction::Alert,
                KeywordAction::Alert,
                KeywordAction::Lock,
            ],
            metrics_token: String::new(),
            metrics_listen: None,
            devices: Default::default(),
            connections: Default::default(),
            power: Default::default(),
            roster: Default::default(),
            cluster: None,
        }
    }
}

/// Seconds a student has to answer a live-view question: 5 to 120, 10 by
/// default. A value outside that range is refused at load, naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct AskSecs(u32);

impl AskSecs {
    /// The shortest time a student is given: enough to read the question.
    pub const MIN: u32 = 5;
    /// The longest: what agents and the extension accept.
    pub const MAX: u32 = 120;

    /// The seconds.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for AskSecs {
    fn default() -> Self {
        AskSecs(crate::privacy::ASK_SECS)
    }
}

impl TryFrom<u32> for AskSecs {
    type Error = String;
    fn try_from(secs: u32) -> Result<Self, String> {
        if (Self::MIN..=Self::MAX).contains(&secs) {
            Ok(AskSecs(secs))
        } else {
            Err(format!(
                "{secs} is not between {} and {} seconds",
                Self::MIN,
                Self::MAX
            ))
        }
    }
}

impl From<AskSecs> for u32 {
    fn from(a: AskSecs) -> u32 {
        a.0
    }
}

/// What a keyword match does. A misspelt value in `server.toml` is refused at
/// load, naming the field, rather than read as some default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeywordAction {
    /// Record the violation.
    Log,
    /// Record it with evidence screenshots.
    Screenshot,
    /// Evidence and a live alert to consoles.
    Alert,
    /// Alert and lock the device.
    Lock,
}

impl KeywordAction {
    /// The name stored with a violation (`log`, `screenshot`, `alert`, `lock`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeywordAction::Log => "log",
            KeywordAction::Screenshot => "screenshot",
            KeywordAction::Alert => "alert",
            KeywordAction::Lock => "lock",
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
        Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses and checks `server.toml` text: unknown keys, values outside a
    /// field's set and malformed times are refused with the field's name.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        // The path names the field even where TOML's own message shows only
        // a line of a multi-line array.
        let c: ServerConfig = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| {
                let path = e.path().to_string();
                anyhow::anyhow!("{path}: {}", e.into_inner())
            })?;
        if !c.backup_time.is_empty()
            && chrono::NaiveTime::parse_from_str(&c.backup_time, "%H:%M").is_err()
        {
            anyhow::bail!(
                "backup_time {:?} is not a time like \"00:05\" (empty: no backups)",
                c.backup_time
            );
        }
        if c.heartbeat_secs == 0
            || c.console_ping_secs == 0
            || c.thumbnail_interval_ms == 0
            || c.session_hours == 0
        {
            anyhow::bail!(
                "heartbeat_secs, console_ping_secs, thumbnail_interval_ms and session_hours must be above 0"
            );
        }
        if c.live_interval_ms == 0 || c.live_width == 0 {
            anyhow::bail!("live_width and live_interval_ms must be above 0");
        }
        if let Some(cluster) = &c.cluster {
            if !(3..=300).contains(&cluster.lease_secs) {
                anyhow::bail!(
                    "cluster.lease_secs ({}) must be between 3 and 300",
                    cluster.lease_secs
                );
            }
            if cluster.nats_user.is_some() != cluster.nats_password.is_some() {
                anyhow::bail!("cluster.nats_user and cluster.nats_password go together");
            }
        }
        // Agents' heartbeats and consoles' pings are what keeps their quiet
        // connections from being cut as idle.
        for (name, secs) in [
            ("heartbeat_secs", c.heartbeat_secs),
            ("console_ping_secs", c.console_ping_secs),
        ] {
            if u64::from(secs) >= c.connections.idle_secs {
                anyhow::bail!(
                    "{name} ({secs}) must be below connections.idle_secs ({})",
                    c.connections.idle_secs
                );
            }
        }
        Ok(c)
    }

    /// Writes `server.toml` into `data_dir`.
    /// The file is private (mode 0600): it holds the metrics token.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let path = data_dir.join(CONFIG_FILE);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(toml::to_string_pretty(self)?.as_bytes())?;
        Ok(())
    }

    /// Whether `offered` is the metrics token. Both sides are hashed first, so
    /// the comparison's time says nothing about the token.
    pub fn metrics_token_matches(&self, offered: &str) -> bool {
        use sha2::{Digest, Sha256};
        !self.metrics_token.is_empty()
            && Sha256::digest(offered.as_bytes()) == Sha256::digest(self.metrics_token.as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", ServerConfig::parse(text).unwrap_err())
    }

    #[test]
    fn defaults_round_trip_and_older_files_load() {
        let text = toml::to_string_pretty(&ServerConfig::default()).unwrap();
        let back = ServerConfig::parse(&text).unwrap();
        assert_eq!(
            back.keyword_actions,
            ServerConfig::default().keyword_actions
        );
        // A file written before the newer keys existed.
        let old = "listen = \"0.0.0.0:30016\"\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\
                   keyword_actions = [\"log\", \"log\", \"alert\", \"lock\", \"lock\"]\n";
        let c = ServerConfig::parse(old).unwrap();
        assert_eq!(c.keyword_actions[3], KeywordAction::Lock);
        assert_eq!(c.remote_view_ask_secs.get(), 10);
        assert!(c.metrics_token.is_empty() && c.metrics_listen.is_none());
    }

    #[test]
    fn the_cluster_section_is_checked_and_keeps_its_password_out_of_logs() {
        let ok = "[cluster]\npostgres = \"host=db user=lectern password=s3cret\"\n\
                  nats = [\"nats://bus:4222\"]\nnode = \"gw-1\"\n";
        let c = ServerConfig::parse(ok).unwrap();
        let cluster = c.cluster.as_ref().unwrap();
        assert_eq!(
            (cluster.lease_secs, cluster.node.as_deref()),
            (15, Some("gw-1"))
        );
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the password is not printed"
        );
        let e = err("[cluster]\npostgres = \"x\"\nlease_secs = 1\n");
        assert!(e.contains("cluster.lease_secs (1)"), "{e}");
        let e = err("[cluster]\npostgres = \"x\"\nnats_user = \"u\"\n");
        assert!(e.contains("nats_password"), "{e}");
        let e = err("[cluster]\npostgres = \"x\"\nnat = [\"nats://bus\"]\n");
        assert!(e.contains("nat"), "{e}");
        // Written back as it was read.
        let back = ServerConfig::parse(&toml::to_string_pretty(&c).unwrap()).unwrap();
        assert_eq!(back.cluster, c.cluster);
    }

    #[test]
    fn typos_are_refused_with_the_field_name() {
        let e = err("keyword_actions = [\"log\", \"screenshot\", \"alret\", \"alert\", \"lock\"]");
        assert!(e.contains("keyword_actions") && e.contains("alret"), "{e}");
        let e = err("keyword_actions = [\"log\", \"alert\", \"lock\"]");
        assert!(
            e.contains("keyword_actions") && e.contains("length 5"),
            "{e}"
        );
        let e = err("keyword_action = [\"log\"]");
        assert!(e.contains("keyword_action"), "{e}");
        let e = err("backup_time = \"25:00\"");
        assert!(e.contains("backup_time"), "{e}");
        assert!(ServerConfig::parse("backup_time = \"\"").is_ok());
        let e = err("heartbeat_secs = 0");
        assert!(e.contains("heartbeat_secs"), "{e}");
        let e = err("console_ping_secs = 300");
        assert!(e.contains("console_ping_secs (300)"), "{e}");
        let e = err("remote_view_ask_secs = 4");
        assert!(
            e.contains("remote_view_ask_secs") && e.contains("between 5 and 120"),
            "{e}"
        );
        assert!(err("remote_view_ask_secs = 121").contains("remote_view_ask_secs"));
        assert_eq!(
            ServerConfig::parse("remote_view_ask_secs = 120")
                .unwrap()
                .remote_view_ask_secs
                .get(),
            120
        );
        let e = err("heartbeat_secs = 5\n[connections]\nidle_secs = 5");
        assert!(
            e.contains("heartbeat_secs (5) must be below connections.idle_secs"),
            "{e}"
        );
    }
}
