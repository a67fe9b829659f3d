//! The system service's platform-free core: it enrolls the machine by itself
//! when `agent.toml` and a token file say how, keeps the server session, and
//! drives a [session helper](crate::helper) in every graphical session through
//! the [`Registry`], whose [`ServiceDesktop`] fans teachers' commands out to
//! them. A platform module finds the sessions, starts the helpers as their
//! users and carries the local connections (Linux: [`crate::linux`], logind
//! and a Unix socket checked with peer credentials).
//!
//! ```text
//!  server ──TLS/WSS── service (root) ──/run/lectern-agent/agent.sock── helper (amy, :0)
//!                                                                  └── helper (ben, :1)
//! ```

mod desktop;
mod device_policy;
mod enroll;
mod extension;
pub mod listener;
pub mod power;
mod prompt;
mod registry;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

pub use desktop::{ServiceDesktop, SystemWebBlock};
pub use device_policy::{DevicePaths, DevicePolicy, DEVICE_SETTINGS};

pub use enroll::{ensure_enrolled, registration, server_and_pin, write_school_code, NothingGiven};
pub use extension::Extensions;
pub use listener::{admit, query_status, LiveStatus, NativeHostCheck};
pub use registry::{Desired, Expected, HelperConn, Registry, SessionInfo, CALL_TIMEOUT};

use crate::config::ServiceConfig;
pub use crate::ipc::ServiceStatus;
use crate::{local_device_info, run_agent, AgentConfig, ConnStatus, SharedDesktop};

/// A runtime of its own for local connections (helpers, native hosts,
/// `status`): the server session calls helpers synchronously and waits for
/// their answers, which these threads read, so the two must not share threads.
pub fn local_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lectern-local")
        .enable_all()
        .build()
}

/// The registry of a starting service: its desired state from
/// `desired.json`, the stored policy, and (given this boot's id and start
/// time) the power events since the last run; keeps the "still on" mark fresh.
pub fn open_registry<S: SessionInfo>(
    cfg: &ServiceConfig,
    boot: Option<(String, i64)>,
) -> Arc<Registry<S>> {
    let registry = Registry::new(Some(cfg.state_dir.join("desired.json")));
    if let Some(p) = crate::load_policy(&cfg.state_dir.join("policy.json")) {
        registry.desired().policy = Some(p);
    }
    if let Some((boot_id, boot_ms)) = boot {
        for e in power::boot_events(&cfg.state_dir, &boot_id, boot_ms) {
            registry.record(e);
        }
    }
    let dir = cfg.state_dir.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(power::ALIVE_EVERY);
        loop {
            tick.tick().await;
            power::mark_alive(&dir);
        }
    });
    registry
}

/// Makes the platform's [`SystemWebBlock`] once the server's address
/// (`host:port`) is known.
pub type SystemWebBlockFactory = Box<dyn FnOnce(&str) -> Box<dyn SystemWebBlock> + Send>;

/// Enrolls (retrying with backoff) and then keeps the server session with a
/// [`ServiceDesktop`] over `registry` (with the system-wide web block
/// `system` makes, if any), until `shutdown` turns true.
pub async fn serve_server<S: SessionInfo>(
    cfg: &ServiceConfig,
    registry: Arc<Registry<S>>,
    live: Arc<Mutex<LiveStatus>>,
    mut shutdown: watch::Receiver<bool>,
    system: Option<SystemWebBlockFactory>,
) {
    let set_conn = |text: String| live.lock().unwrap_or_else(|p| p.into_inner()).connection = text;
    let mut backoff = crate::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    // The school code file was written from the registration form (so a
    // refusal asks again, and the file goes).
    let mut typed = false;
    let mut refused: Option<String> = None;
    let credential = loop {
        match ensure_enrolled(cfg).await {
            Ok(c) => break Some(c),
            Err(e) if e.is::<NothingGiven>() => {
                tracing::error!(
                    "not enrolled yet: {e:#}; the school code is asked for on the screen"
                );
                set_conn(format!(
                    "enrolling: {e:#}; the school code is asked for on the screen"
                ));
                let Some(code) =
                    prompt::ask_for_code(cfg, &registry, refused.take(), &mut shutdown).await
                else {
                    if *shutdown.borrow() {
                        break None;
                    }
                    continue;
                };
                match write_school_code(&cfg.school_code_file, &code, "typed on this computer") {
                    Ok(()) => typed = true,
                    Err(e) => tracing::error!("{e:#}"),
                }
            }
            Err(e) => {
                tracing::error!("not enrolled yet: {e:#}");
                set_conn(format!("enrolling: {e:#}"));
                if typed {
                    if let Some(why) = prompt::refusal(&e) {
                        // A typed code the server refused: ask again, saying why.
                        let _ = std::fs::remove_file(&cfg.school_code_file);
                        typed = false;
                        refused = Some(why);
                        continue;
                    }
                }
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
        registry.set_school(&credential.school);
        let desktop = match system {
            Some(make) => {
                ServiceDesktop::with_system_web_block(registry.clone(), make(&credential.server))
            }
            None => ServiceDesktop::new(registry.clone()),
        };
        let desktop = desktop.with_power(cfg.power.clone());
        let desktop = if cfg.inventory.enabled {
            desktop.with_inventory(crate::inventory::FileInventory::new(
                cfg.inventory.clone(),
                true,
            ))
        } else {
            desktop
        };
        let desktop: SharedDesktop = Arc::new(Mutex::new(desktop));
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
}
