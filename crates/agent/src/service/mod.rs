//! `lectern-agent service`: the root system service. It enrolls the machine
//! by itself when `agent.toml` and a token file say how, keeps the server
//! session, and starts a [session helper](crate::helper) as the user of every
//! graphical session, over a Unix socket checked with peer credentials.
//!
//! ```text
//!  server ──TLS/WSS── service (root) ──/run/lectern-agent/agent.sock── helper (amy, :0)
//!                                                                  └── helper (ben, :1)
//! ```

mod desktop;
mod enroll;
mod extension;
pub mod listener;
mod power;
mod registry;
pub mod sessions;
mod supervisor;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

pub use desktop::ServiceDesktop;
pub use enroll::{ensure_enrolled, server_and_pin};
pub use listener::{query_status, LiveStatus};
pub use registry::Registry;

use crate::config::ServiceConfig;
use crate::{local_device_info, run_agent, AgentConfig, ConnStatus, SharedDesktop};

/// Runs the service until `shutdown` turns true.
pub async fn run_service(
    cfg: ServiceConfig,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(&cfg.state_dir)?;
    std::fs::set_permissions(&cfg.state_dir, std::fs::Permissions::from_mode(0o700))?;
    let registry = Registry::new(Some(cfg.state_dir.join("desired.json")));
    if let Some(p) = crate::load_policy(&cfg.state_dir.join("policy.json")) {
        registry.desired().policy = Some(p);
    }
    if let Some((boot_id, boot_ms)) = power::this_boot() {
        for e in power::boot_events(&cfg.state_dir, &boot_id, boot_ms) {
            registry.record(e);
        }
    }
    {
        let dir = cfg.state_dir.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(power::ALIVE_EVERY);
            loop {
                tick.tick().await;
                power::mark_alive(&dir);
            }
        });
    }
    let live = Arc::new(Mutex::new(LiveStatus {
        connection: "starting".into(),
        ..Default::default()
    }));
    let listener = listener::bind(&cfg.socket)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.socket.display()))?;
    {
        let (r, l) = (registry.clone(), live.clone());
        std::thread::spawn(move || listener::serve(listener, r, l));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let supervisor = {
        let (c, r, s) = (cfg.clone(), registry.clone(), stop.clone());
        std::thread::spawn(move || supervisor::supervise(c, r, s))
    };
    tracing::info!(socket = %cfg.socket.display(), "agent service started");

    let set_conn = |text: String| live.lock().unwrap_or_else(|p| p.into_inner()).connection = text;
    let mut backoff = crate::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let credential = loop {
        match ensure_enrolled(&cfg).await {
            Ok(c) => break Some(c),
            Err(e) => {
                tracing::error!("not enrolled yet: {e:#}");
                set_conn(format!("enrolling: {e:#}"));
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shutdown.changed() => break None,
                }
            }
        }
    };
    if let Some(credential) = credential {
        {
            let mut l = live.lock().unwrap_or_else(|p| p.into_inner());
            l.server = Some(credential.server.clone());
            l.school = Some(credential.school.clone());
            l.device_id = Some(credential.device_id);
        }
        let host = credential
            .server
            .rsplit_once(':')
            .map_or(credential.server.as_str(), |(h, _)| h);
        *registry
            .server_host
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
        registry.extensions.set_policy(registry.web_policy());
        let desktop: SharedDesktop = Arc::new(Mutex::new(ServiceDesktop::new(registry.clone())));
        let (status_tx, mut status_rx) = watch::channel(ConnStatus::Connecting);
        let l = live.clone();
        tokio::spawn(async move {
            loop {
                let text = match &*status_rx.borrow_and_update() {
                    ConnStatus::Connecting => "connecting".to_string(),
                    ConnStatus::Connected => "connected".to_string(),
                    ConnStatus::Refused(why) => format!("refused: {why}"),
                    ConnStatus::Stopped => "stopped".to_string(),
                };
                l.lock().unwrap_or_else(|p| p.into_inner()).connection = text;
                if status_rx.changed().await.is_err() {
                    break;
                }
            }
        });
        let info = local_device_info(cfg.hostname.clone());
        let config = AgentConfig {
            credential,
            info,
            policy_file: Some(cfg.state_dir.join("policy.json")),
            evidence_frames: 30,
            scan_keywords: true,
        };
        run_agent(config, desktop, shutdown, Some(status_tx)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || supervisor.join()).await;
    let _ = std::fs::remove_file(&cfg.socket);
    tracing::info!("agent service stopped");
    Ok(())
}
