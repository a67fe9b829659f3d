//! Many headless Lectern agents in one process: the classroom behind the demo and
//! the load behind the benchmarks. Each simulated device is a real agent (own
//! TLS connection, own credential, own [`HeadlessDesktop`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let sim = lectern_sim::Simulator::start(lectern_sim::SimConfig {
//!     server: "127.0.0.1:30016".into(),
//!     fingerprint: "…".into(),
//!     token: "…".into(),
//!     agents: 30,
//!     prefix: "LAB1-PC".into(),
//!     credentials: None,
//!     activity_burst: 0,
//! }).await?;
//! sim.wait_connected(30, std::time::Duration::from_secs(30)).await;
//! sim.stop().await;
//! # Ok(()) }
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_agent::{
    enroll, run_agent, AgentConfig, ConnStatus, Desktop, HeadlessDesktop, StoredCredential,
};
use lectern_proto::DeviceInfo;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Server `host:port`.
    pub server: String,
    /// Server certificate fingerprint.
    pub fingerprint: String,
    /// Enrollment token with at least `agents` uses (unused when every
    /// credential is already in `credentials`).
    pub token: String,
    /// Number of devices.
    pub agents: usize,
    /// Hostname prefix; devices are `{prefix}01`, `{prefix}02`, …
    pub prefix: String,
    /// File that keeps credentials between runs, so a restarted simulator
    /// reconnects as the same devices instead of enrolling new ones.
    pub credentials: Option<PathBuf>,
    /// Synthetic website visits each device records at start (ingest benchmarks).
    pub activity_burst: usize,
}

/// A running simulation.
pub struct Simulator {
    stop: watch::Sender<bool>,
    statuses: Vec<watch::Receiver<ConnStatus>>,
    desktops: Vec<Arc<Mutex<HeadlessDesktop>>>,
    tasks: JoinSet<()>,
}

/// Student names the simulated desktops are logged in with.
const NAMES: &[&str] = &[
    "amara", "ben", "chloe", "dev", "ella", "finn", "grace", "hugo", "isla", "jack", "kai", "lena",
    "milo", "nia", "oscar", "priya", "quinn", "ruby", "sam", "tara", "umar", "vera", "will",
    "xena", "yusuf", "zoe",
];

impl Simulator {
    /// Enrolls any devices not yet enrolled (up to 64 at a time) and starts them all.
    pub async fn start(cfg: SimConfig) -> anyhow::Result<Self> {
        let mut creds: Vec<StoredCredential> = match &cfg.credentials {
            Some(p) if p.exists() => serde_json::from_str(&std::fs::read_to_string(p)?)?,
            _ => Vec::new(),
        };
        creds.retain(|c| c.server == cfg.server);
        let width = cfg.agents.to_string().len().max(2);
        let name = |i: usize| format!("{}{:0width$}", cfg.prefix, i + 1);
        let mut missing: JoinSet<anyhow::Result<(usize, StoredCredential)>> = JoinSet::new();
        let mut next = creds.len();
        let mut fresh = vec![None; cfg.agents];
        while next < cfg.agents || !missing.is_empty() {
            while next < cfg.agents && missing.len() < 64 {
                let (server, pin, token, i) = (
                    cfg.server.clone(),
                    cfg.fingerprint.clone(),
                    cfg.token.clone(),
                    next,
                );
                let info = info(name(i));
                missing.spawn(async move { Ok((i, enroll(&server, &pin, &token, &info).await?)) });
                next += 1;
            }
            if let Some(done) = missing.join_next().await {
                let (i, c) = done??;
                fresh[i] = Some(c);
            }
        }
        creds.extend(fresh.into_iter().flatten());
        creds.truncate(cfg.agents);
        if let Some(p) = &cfg.credentials {
            std::fs::write(p, serde_json::to_string(&creds)?)?;
        }

        let (stop, stop_rx) = watch::channel(false);
        let mut sim = Simulator {
            stop,
            statuses: Vec::new(),
            desktops: Vec::new(),
            tasks: JoinSet::new(),
        };
        for (i, credential) in creds.into_iter().enumerate() {
            let host = name(i);
            let mut desktop = HeadlessDesktop::new(&host, Some(NAMES[i % NAMES.len()].to_string()));
            desktop.set_school(&credential.school);
            desktop.synthesize_activity(cfg.activity_burst);
            desktop.set_inventory(lectern_agent::inventory::StaticInventory::demo(i));
            let desktop = Arc::new(Mutex::new(desktop));
            let (tx, rx) = watch::channel(ConnStatus::Connecting);
            let config = AgentConfig {
                credential,
                info: info(host),
                policy_file: None,
                // Evidence is captured on request only: no per-second capture
                // across thousands of simulated desktops.
                evidence_frames: 0,
                scan_keywords: false,
                school_choice: Default::default(),
            };
            sim.tasks.spawn(run_agent(
                config,
                desktop.clone(),
                stop_rx.clone(),
                Some(tx),
            ));
            sim.statuses.push(rx);
            sim.desktops.push(desktop);
        }
        Ok(sim)
    }

    /// How many agents are in a session right now.
    pub fn connected(&self) -> usize {
        self.statuses
            .iter()
            .filter(|s| *s.borrow() == ConnStatus::Connected)
            .count()
    }

    /// Waits until at least `n` agents are connected or `timeout` passes; returns the count.
    pub async fn wait_connected(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let c = self.connected();
            if c >= n || tokio::time::Instant::now() >= deadline {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The simulated desktops, in hostname order, for scripted student actions.
    pub fn desktops(&self) -> &[Arc<Mutex<HeadlessDesktop>>] {
        &self.desktops
    }

    /// Disconnects every agent and waits for them to stop.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

fn info(hostname: String) -> DeviceInfo {
    DeviceInfo {
        hostname,
        os: "linux".into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
    }
}
