//! Which store a server runs on: the SQLite file in its data directory (the
//! default: nothing else to run), or PostgreSQL when `server.toml` has a
//! `[cluster]` section, so that several nodes share one store (issue 16).

use std::path::Path;
use std::sync::Arc;

use lectern_store::{PgStore, SqliteStore, Store};
use serde::{Deserialize, Serialize};

use crate::config::{ServerConfig, DB_FILE};

/// `[cluster]` in `server.toml`.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// PostgreSQL connection parameters, as libpq takes them
    /// (`host=db1 port=5432 user=lectern dbname=lectern password=…`, or a
    /// `postgresql://` URL). A database without the store's tables gets
    /// them at the first start.
    pub postgres: String,
    /// NATS servers (`nats://host:4222`, or `tls://`) that the nodes talk
    /// over: which node holds which device, and commands to devices held
    /// by another node. None: nodes share the store only (each sends
    /// commands to its own devices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nats: Vec<String>,
    /// The user name and password the NATS servers ask for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_user: Option<String>,
    /// See `nats_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats_password: Option<String>,
    /// This node's name on the bus (letters, digits, `-` and `_`); the
    /// machine's host name when none. Two nodes must not share one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Seconds a node's claim on its devices lasts without a beat: how soon
    /// the others notice it died, and fail the commands it was carrying
    /// (3 to 300, 15 by default).
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

fn default_lease_secs() -> u64 {
    15
}

impl std::fmt::Debug for ClusterConfig {
    // The parameters may hold a password: logs and errors print the config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("postgres", &"(hidden)")
            .field("nats", &self.nats)
            .field("nats_user", &self.nats_user)
            .field("node", &self.node)
            .field("lease_secs", &self.lease_secs)
            .finish_non_exhaustive()
    }
}

/// Opens the store `config` names: blocking (PostgreSQL's client runs its
/// own runtime), so async callers run it on a blocking thread.
pub fn open(data_dir: &Path, config: &ServerConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &config.cluster {
        None => Arc::new(SqliteStore::open(&data_dir.join(DB_FILE))?),
        Some(cluster) => Arc::new(PgStore::connect(&cluster.postgres).map_err(|e| {
            anyhow::anyhow!("cannot open the cluster's PostgreSQL store ([cluster] postgres): {e}")
        })?),
    })
}

/// The store of a data directory made by `init`: [`open`] with its
/// `server.toml`, or its SQLite file where it has none.
pub fn open_dir(data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    if data_dir.join(crate::config::CONFIG_FILE).exists() {
        open(data_dir, &ServerConfig::load(data_dir)?)
    } else {
        Ok(Arc::new(SqliteStore::open(&data_dir.join(DB_FILE))?))
    }
}
