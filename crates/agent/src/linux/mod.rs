//! The Linux side of the agent: the root system service (systemd unit
//! `lectern-agent.service`), which finds graphical sessions through
//! systemd-logind (or `agent.toml`'s static seats), starts a helper as each
//! session's user, and carries the local protocol over a Unix socket whose
//! peers the kernel names (`SO_PEERCRED`). Everything it shares with other
//! platforms (registry, service desktop, framing, helper loop) lives in
//! [`crate::service`], [`crate::ipc`] and [`crate::helper`].

pub mod devices;
mod login_monitor;
pub mod logind;
pub mod sessions;
pub mod socket;
mod supervisor;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::ServiceConfig;
use crate::service::{self, LiveStatus, ServiceStatus};
use crate::Desktop;

pub use sessions::Session;

/// Logs to journald when systemd connected stderr to the journal (or
/// `LECTERN_LOG=journald`), otherwise to stderr; `RUST_LOG` filters.
pub fn init_logging(identifier: &str) {
    use tracing_subscriber::prelude::*;
    let want_journal = match std::env::var("LECTERN_LOG").as_deref() {
        Ok("journald") => true,
        Ok("stderr") => false,
        _ => std::env::var_os("JOURNAL_STREAM").is_some(),
    };
    if want_journal {
        if let Ok(layer) = tracing_journald::layer() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info".into());
            let layer = layer.with_syslog_identifier(identifier.to_string());
            tracing_subscriber::registry()
                .with(filter)
                .with(layer)
                .init();
            return;
        }
    }
    crate::init_stderr_logging();
}

/// This boot's id and start time (ms), from the kernel.
pub fn this_boot() -> Option<(String, i64)> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()?
        .trim()
        .to_string();
    let btime: i64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some((id, btime * 1000))
}

/// Runs the service until `shutdown` turns true.
pub async fn run_service(
    cfg: ServiceConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    crate::platform::create_private_dir(&cfg.state_dir)?;
    let registry = service::open_registry::<Session>(&cfg, this_boot());
    start_devices(&cfg, &registry);
    let live = Arc::new(Mutex::new(LiveStatus {
        connection: "starting".into(),
        ..Default::default()
    }));
    let listener = socket::bind(&cfg.socket)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.socket.display()))?;
    let local = service::local_runtime()?;
    local.spawn(socket::serve(listener, registry.clone(), live.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let supervisor = {
        let (c, r, s) = (cfg.clone(), registry.clone(), stop.clone());
        let rt = tokio::runtime::Handle::current();
        // Named, so its wakes can be counted (tests, `top -H`).
        std::thread::Builder::new()
            .name("supervisor".into())
            .spawn(move || supervisor::supervise(c, r, s, rt))?
    };
    // The supervisor sleeps until a helper dies or the service stops.
    let wake = supervisor.thread().clone();
    let mut children = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())?;
    let on_child = tokio::spawn({
        let wake = wake.clone();
        async move {
            while children.recv().await.is_some() {
                wake.unpark();
            }
        }
    });
    tracing::info!(socket = %cfg.socket.display(), "agent service started");
    // No system-wide web block on Linux: the browser extension enforces it.
    service::serve_server(&cfg, registry, live, shutdown, None).await;
    stop.store(true, Ordering::Relaxed);
    wake.unpark();
    on_child.abort();
    let _ = tokio::task::spawn_blocking(move || supervisor.join()).await;
    local.shutdown_background();
    let _ = std::fs::remove_file(&cfg.socket);
    tracing::info!("agent service stopped");
    Ok(())
}

/// Enforces printing and removable media for the session users (restoring
/// what a previous run left if the stored policy no longer asks for it), and
/// tells every session when CUPS refused a job.
fn start_devices(cfg: &ServiceConfig, registry: &Arc<service::Registry<Session>>) {
    let devices = devices::LinuxDevices::new(cfg.devices.clone(), &cfg.state_dir);
    let r = registry.clone();
    devices.watch_refusals(move || {
        for h in r.connected() {
            let text = devices::PRINT_REFUSED.to_string();
            if let Err(e) = r.call(&h, crate::ipc::Request::Message { text }, &[]) {
                tracing::warn!("cannot tell {} printing is off: {e}", h.session);
            }
        }
    });
    registry.set_device_policy(Box::new(devices));
}

/// `lectern-agent session-helper`: serves `session` for the service at
/// `socket` until it hangs up.
pub async fn run_helper(
    socket: &Path,
    session: &str,
    desktop: Box<dyn Desktop>,
) -> anyhow::Result<()> {
    let stream = socket::connect_to_service(socket).await?;
    crate::helper::run_helper(stream, session, desktop).await
}

/// `lectern-agent native-host`: relays the browser extension to the service
/// at `socket`.
pub async fn run_native_host(socket: &Path, origin: &str) -> anyhow::Result<()> {
    let stream = socket::connect_to_service(socket).await?;
    crate::native_host::relay(stream, origin).await
}

/// `lectern-agent status`: asks the service at `socket` (as root).
pub async fn query_status(socket: &Path) -> anyhow::Result<ServiceStatus> {
    let stream = socket::connect_to_service(socket).await?;
    service::query_status(stream).await
}
