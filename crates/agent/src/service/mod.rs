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

use tokio::sync::{mpsc, watch};

pub use desktop::{ServiceDesktop, SystemWebBlock};
pub use device_policy::{DevicePaths, DevicePolicy, DEVICE_SETTINGS};

pub use enroll::{
    ensure_enrolled, register_more, registration, server_and_pin, write_school_code, NothingGiven,
};
pub use extension::Extensions;
pub use listener::{admit, query_status, LiveStatus, NativeHostCheck};
pub use registry::{Desired, Expected, HelperConn, Registry, SessionInfo, CALL_TIMEOUT};

use crate::config::ServiceConfig;
pub use crate::ipc::ServiceStatus;
use crate::schools::{Registration, Schools};
use crate::{
    local_device_info, run_agent, AgentConfig, ConnStatus, SchoolChoice, SharedDesktop,
    StoredCredential, Switch,
};

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
    // The stored policy of the school in use (see `crate::schools`).
    let school_dir = Schools::new(&cfg.state_dir)
        .active()
        .map_or_else(|| cfg.state_dir.clone(), |r| r.dir);
    if let Some(p) = crate::load_policy(&school_dir.join("policy.json")) {
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
/// `system` makes, if any), until `shutdown` turns true. A device
/// registered with several schools connects to the one in use and, when the
/// student chooses another on the sign-in screen, leaves it for that one
/// (see [`crate::schools`]).
pub async fn serve_server<S: SessionInfo>(
    cfg: &ServiceConfig,
    registry: Arc<Registry<S>>,
    live: Arc<Mutex<LiveStatus>>,
    mut shutdown: watch::Receiver<bool>,
    system: Option<SystemWebBlockFactory>,
) {
    let Some(first) = enroll(cfg, &registry, &live, &mut shutdown).await else {
        return;
    };
    register_more(cfg, &first).await;
    let schools = Schools::new(&cfg.state_dir);
    let mut active = schools.active().unwrap_or(Registration {
        dir: cfg.state_dir.clone(),
        credential: first,
    });
    let desktop = service_desktop(cfg, &registry, system, &active.credential);
    let status = watch_status(live.clone());
    loop {
        point_at(&registry, &live, &active.credential);
        let (chosen_tx, chosen_rx) = mpsc::unbounded_channel();
        let config = AgentConfig {
            credential: active.credential.clone(),
            info: local_device_info(cfg.hostname.clone()),
            policy_file: Some(active.dir.join("policy.json")),
            evidence_frames: 30,
            scan_keywords: true,
            school_choice: SchoolChoice {
                others: schools.others(&active),
                chosen: Some(chosen_tx),
            },
        };
        let run = |stop| run_agent(config, desktop.clone(), stop, Some(status.clone()));
        let Some(switch) = run_until_chosen(run, &mut shutdown, chosen_rx).await else {
            break;
        };
        let (name, why) = match switch {
            Switch::Chosen(name) => (name, "the student switched this computer"),
            Switch::Refused => {
                if let Err(e) = schools.drop_registration(&active) {
                    // Not noted, it would be chosen again at once: wait as
                    // a refused agent does, then try again.
                    tracing::error!("cannot note the refusal: {e:#}");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                match schools.others(&active).into_iter().next() {
                    Some(name) => (name, "the school refused this computer; switched it"),
                    None => continue,
                }
            }
        };
        match schools.activate(&name) {
            Ok(Some(next)) => {
                tracing::info!(from = %active.credential.school, "{why} to {name}");
                leave_school(&desktop, &next.dir);
                active = next;
            }
            Ok(None) => tracing::warn!("no registration with {name} to switch to"),
            Err(e) => tracing::error!("cannot switch to {name}: {e:#}"),
        }
    }
}

/// The credential to start with: the one stored, or a new one from
/// enrolling (asking for the school code on the screen when nothing says
/// how); `None` if the service stops first.
async fn enroll<S: SessionInfo>(
    cfg: &ServiceConfig,
    registry: &Arc<Registry<S>>,
    live: &Arc<Mutex<LiveStatus>>,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<StoredCredential> {
    let set_conn = |text: String| live.lock().unwrap_or_else(|p| p.into_inner()).connection = text;
    let mut backoff = crate::Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    // The school code file was written from the registration form (so a
    // refusal asks again, and the file goes).
    let mut typed = false;
    let mut refused: Option<String> = None;
    loop {
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
                    prompt::ask_for_code(cfg, registry, refused.take(), shutdown).await
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
    }
}

/// The desktop the server session drives: the helpers through `registry`,
/// the system-wide web block, power and inventory.
fn service_desktop<S: SessionInfo>(
    cfg: &ServiceConfig,
    registry: &Arc<Registry<S>>,
    system: Option<SystemWebBlockFactory>,
    credential: &StoredCredential,
) -> SharedDesktop {
    // Every registration is on the server of the first (see
    // `register_more`), so one system web block serves them all.
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
    Arc::new(Mutex::new(desktop))
}

/// A connection status sender whose changes `status` shows.
fn watch_status(live: Arc<Mutex<LiveStatus>>) -> watch::Sender<ConnStatus> {
    let (status_tx, mut status_rx) = watch::channel(ConnStatus::Connecting);
    tokio::spawn(async move {
        loop {
            let text = match &*status_rx.borrow_and_update() {
                ConnStatus::Connecting => "connecting".to_string(),
                ConnStatus::Connected => "connected".to_string(),
                ConnStatus::Refused(why) => format!("refused: {why}"),
                ConnStatus::Stopped => "stopped".to_string(),
            };
            live.lock().unwrap_or_else(|p| p.into_inner()).connection = text;
            if status_rx.changed().await.is_err() {
                break;
            }
        }
    });
    status_tx
}

/// Tells `status`, the helpers and the extensions which school and server
/// the device is with now.
fn point_at<S: SessionInfo>(
    registry: &Arc<Registry<S>>,
    live: &Arc<Mutex<LiveStatus>>,
    credential: &StoredCredential,
) {
    {
        let mut l = live.lock().unwrap_or_else(|p| p.into_inner());
        l.server = Some(credential.server.clone());
        l.school = Some(credential.school.clone());
        l.device_id = Some(credential.device_id);
    }
    // Every gateway a cluster's agent may reach stays reachable under a
    // web block.
    *registry
        .server_host
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = crate::server_addresses(&credential.server)
        .into_iter()
        .map(|a| crate::server_host(a).to_string())
        .collect();
    registry.extensions.set_policy(registry.web_policy());
    registry.set_school(&credential.school);
}

/// Runs the agent until the service stops (`None`) or the student chooses
/// another school (its name, once the session has ended).
async fn run_until_chosen<F: std::future::Future<Output = ()>>(
    run: impl FnOnce(watch::Receiver<bool>) -> F,
    shutdown: &mut watch::Receiver<bool>,
    mut chosen: mpsc::UnboundedReceiver<Switch>,
) -> Option<Switch> {
    // The agent stops on its own receiver: the service's shutdown, or a choice.
    let (stop_tx, stop_rx) = watch::channel(*shutdown.borrow());
    let run = run(stop_rx);
    tokio::pin!(run);
    let mut choice = None;
    let mut stopping = false;
    loop {
        tokio::select! {
            () = &mut run => return choice.filter(|_| !*shutdown.borrow()),
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
                choice = None;
                stop_tx.send_replace(true);
            }
            c = chosen.recv(), if !stopping => {
                stopping = true;
                choice = c;
                stop_tx.send_replace(true);
            }
        }
    }
}

/// Takes the last school's state off the desktop before another school's
/// session starts: its teachers' lock, web block, lists, broadcast and
/// screens were theirs; the next school's stored policy (or none) applies
/// until its server says otherwise.
fn leave_school(desktop: &SharedDesktop, next_dir: &std::path::Path) {
    let policy = crate::load_policy(&next_dir.join("policy.json")).unwrap_or_default();
    let mut d = desktop.lock().unwrap_or_else(|p| p.into_inner());
    // Clicks and keys meant for the last school's screens.
    let _ = d.take_requests();
    let _ = d.unlock();
    let _ = d.set_internet_blocked(false);
    let _ = d.set_web_filter(lectern_proto::WebFilterMode::Off, &[], &[]);
    let _ = d.stop_broadcast();
    let _ = d.clear_message();
    let _ = d.show_acceptable_use(None);
    let _ = d.show_student_sign_in(None);
    d.show_signed_in(false);
    d.set_school_logo(None);
    d.apply_policy(&policy);
}
