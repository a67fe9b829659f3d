//! The Windows side of the agent: the `LecternAgent` service (LocalSystem,
//! started by the service control manager), which finds interactive
//! sessions through Terminal Services, starts a helper in each as its user,
//! and carries the local protocol over named pipes whose peers the system
//! names. Everything it shares with Linux (registry, service desktop,
//! framing, helper loop) lives in [`crate::service`], [`crate::ipc`] and
//! [`crate::helper`]; the rules that need no Windows live in
//! [`crate::windows_rules`].
//!
//! Configuration: `%ProgramData%\Lectern\agent.toml` (optional), overlaid by
//! the MSI's values under `HKLM\SOFTWARE\Lectern\Agent` (`Server`,
//! `Fingerprint`, `Token`, `SchoolCode`); the state directory
//! `%ProgramData%\Lectern\state` gets an access list of SYSTEM and
//! Administrators only.

pub mod pipe;
pub mod sessions;
mod supervisor;
pub mod webblock;
pub mod win32;

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::watch;
use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus as ScmStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
use windows_service::{define_windows_service, service_dispatcher};

use crate::config::ServiceConfig;
use crate::service::{self, LiveStatus, ServiceStatus};
use crate::windows_rules::{self as rules, RegistryConfig, REGISTRY_KEY, SERVICE_NAME};
use crate::Desktop;

pub use sessions::WinSession;

/// Logs to a file when run as the service (`%ProgramData%\Lectern\logs\
/// service.log`: there is no console) or a helper (`%TEMP%\lectern-helper.log`),
/// else to stderr; `RUST_LOG` filters. `LECTERN_LOG_FILE` names another file.
pub fn init_logging(_identifier: &str) {
    let role = std::env::args().nth(1).unwrap_or_default();
    let file = std::env::var_os("LECTERN_LOG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| match role.as_str() {
            "service" => Some(
                crate::platform::config_dir()
                    .join("logs")
                    .join("service.log"),
            ),
            "helper" => Some(std::env::temp_dir().join("lectern-helper.log")),
            _ => None,
        });
    let opened = file.and_then(|f| {
        if let Some(dir) = f.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(f)
            .ok()
    });
    let Some(file) = opened else {
        return crate::init_stderr_logging();
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .init();
}

/// `agent.toml` with the MSI's registry values over it.
pub fn load_config(path: &Path) -> anyhow::Result<ServiceConfig> {
    let mut cfg = ServiceConfig::load(path)?;
    read_registry_config().apply(&mut cfg);
    Ok(cfg)
}

/// The MSI's values under `HKLM\SOFTWARE\Lectern\Agent`.
pub fn read_registry_config() -> RegistryConfig {
    let get = |v: &str| win32::read_hklm_string(REGISTRY_KEY, v);
    RegistryConfig {
        server: get("Server"),
        fingerprint: get("Fingerprint"),
        token: get("Token"),
        school_code: get("SchoolCode"),
    }
}

/// After enrolling, the token has done its job: take it out of the registry
/// (HKLM is readable by every user, and a token enrolls more devices).
fn forget_registry_token() {
    for v in ["Token", "SchoolCode"] {
        if let Err(e) = win32::delete_hklm_value(REGISTRY_KEY, v) {
            tracing::warn!("cannot remove {v} from HKLM\\{REGISTRY_KEY}: {e}");
        }
    }
}

static SERVICE_CONFIG: OnceLock<ServiceConfig> = OnceLock::new();

define_windows_service!(ffi_service_main, service_main);

/// `lectern-agent service`: hands the thread to the service control manager;
/// started from a console instead (error 1063), runs in the foreground until
/// Ctrl+C.
pub async fn run_service(cfg: ServiceConfig, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
    let _ = SERVICE_CONFIG.set(cfg.clone());
    let started =
        tokio::task::block_in_place(|| service_dispatcher::start(SERVICE_NAME, ffi_service_main));
    match started {
        Ok(()) => Ok(()),
        Err(windows_service::Error::Winapi(e))
            if e.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) =>
        {
            tracing::info!("not started by the service control manager: running in the foreground");
            let (_tx, notices) = mpsc::channel();
            run(cfg, stop, notices).await
        }
        Err(e) => Err(anyhow::anyhow!("service dispatcher: {e}")),
    }
}

/// The service control manager's entry point (on a thread of its own).
fn service_main(_args: Vec<OsString>) {
    if let Err(e) = scm_main() {
        tracing::error!("service failed: {e:#}");
    }
}

fn scm_main() -> anyhow::Result<()> {
    let cfg = SERVICE_CONFIG
        .get()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no configuration"))?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (notice_tx, notices) = mpsc::channel();
    let handler = move |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            let _ = stop_tx.send(true);
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::SessionChange(p) => {
            let _ = notice_tx.send((p.reason as u32, p.notification.session_id));
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    };
    let status = service_control_handler::register(SERVICE_NAME, handler)?;
    let report = |state, accept| {
        let _ = status.set_service_status(ScmStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code: ServiceExitCode::Win32(0),
            checkpoint: 0,
            wait_hint: Duration::from_secs(10),
            process_id: None,
        });
    };
    report(
        ServiceState::Running,
        ServiceControlAccept::STOP
            | ServiceControlAccept::SHUTDOWN
            | ServiceControlAccept::SESSION_CHANGE,
    );
    tracing::info!("started by the service control manager");
    let rt = tokio::runtime::Runtime::new()?;
    let result = rt.block_on(run(cfg, stop_rx, notices));
    rt.shutdown_timeout(Duration::from_secs(3));
    report(ServiceState::Stopped, ServiceControlAccept::empty());
    result
}

/// The service proper, until `shutdown` turns true: the private state
/// directory, the control pipe, the session supervisor and the server session.
pub async fn run(
    cfg: ServiceConfig,
    shutdown: watch::Receiver<bool>,
    notices: mpsc::Receiver<supervisor::Notice>,
) -> anyhow::Result<()> {
    crate::platform::create_private_dir(&cfg.state_dir)
        .map_err(|e| anyhow::anyhow!("cannot make {} private: {e}", cfg.state_dir.display()))?;
    if win32::is_wine() {
        tracing::warn!("running under Wine: no session 0 isolation, one account for every process, access lists stored but not enforced");
    }
    let registry = service::open_registry::<WinSession>(&cfg, None);
    let live = Arc::new(Mutex::new(LiveStatus {
        connection: "starting".into(),
        ..Default::default()
    }));
    let local = service::local_runtime()?;
    let control = {
        let _guard = local.enter();
        pipe::bind_control()?
    };
    local.spawn(pipe::serve_control(control, registry.clone(), live.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let sup = supervisor::Supervisor {
        cfg: cfg.clone(),
        registry: registry.clone(),
        live: live.clone(),
        runtime: local.handle().clone(),
        stop: stop.clone(),
    };
    let supervising = std::thread::spawn(move || sup.run(notices));
    tracing::info!(pipe = rules::CONTROL_PIPE, "agent service started");
    let had_credential = crate::StoredCredential::path(&cfg.state_dir).exists();
    let watcher =
        (!had_credential && (cfg.token.is_some() || cfg.school_code.is_some())).then(|| {
            let dir = cfg.state_dir.clone();
            tokio::spawn(async move {
                while !crate::StoredCredential::path(&dir).exists() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                forget_registry_token();
            })
        });
    // The web settings for every program, through WFP (LocalSystem only).
    let wfp: service::SystemWebBlockFactory =
        Box::new(|server: &str| Box::new(webblock::WfpWebBlock::new(server)) as _);
    service::serve_server(&cfg, registry, live, shutdown, Some(wfp)).await;
    if let Some(w) = watcher {
        w.abort();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || supervising.join()).await;
    local.shutdown_background();
    tracing::info!("agent service stopped");
    Ok(())
}

/// `lectern-agent service install`: registers `LecternAgent` (LocalSystem,
/// automatic start) to run this program with `service`.
pub fn install() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )?;
    let info = ServiceInfo {
        name: SERVICE_NAME.into(),
        display_name: "Lectern Agent".into(),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: std::env::current_exe()?,
        launch_arguments: vec!["service".into()],
        dependencies: vec![],
        account_name: None,
        account_password: None,
    };
    let svc = manager.create_service(&info, ServiceAccess::CHANGE_CONFIG)?;
    let _ = svc.set_description("Connects this computer to the school's Lectern server.");
    println!("installed the {SERVICE_NAME} service");
    Ok(())
}

/// `lectern-agent service uninstall`: stops (if running) and deletes the service.
pub fn uninstall() -> anyhow::Result<()> {
    let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
    let svc = manager.open_service(
        SERVICE_NAME,
        ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE,
    )?;
    if svc.query_status()?.current_state != ServiceState::Stopped {
        let _ = svc.stop();
        for _ in 0..50 {
            if svc.query_status()?.current_state == ServiceState::Stopped {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    svc.delete()?;
    println!("removed the {SERVICE_NAME} service");
    Ok(())
}

/// `lectern-agent helper`: serves this process's session for the service.
/// `session`, when given, must be the session it runs in.
pub async fn run_helper(session: Option<u32>, desktop: Box<dyn Desktop>) -> anyhow::Result<()> {
    let own = win32::process_session(std::process::id())?;
    if session.is_some_and(|s| s != own) {
        anyhow::bail!("asked to serve session {session:?} but running in session {own}");
    }
    let stream = pipe::connect_to_service(&rules::session_pipe(own)).await?;
    crate::helper::run_helper(stream, &own.to_string(), desktop).await
}

/// `lectern-agent native-host`: relays the browser extension to the service
/// over this session's pipe.
pub async fn run_native_host(origin: &str) -> anyhow::Result<()> {
    let own = win32::process_session(std::process::id())?;
    let stream = pipe::connect_to_service(&rules::session_pipe(own)).await?;
    crate::native_host::relay(stream, origin).await
}

/// `lectern-agent status`: asks the service on the control pipe (SYSTEM and
/// Administrators).
pub async fn query_status() -> anyhow::Result<ServiceStatus> {
    let stream = pipe::connect_to_service(rules::CONTROL_PIPE).await?;
    service::query_status(stream).await
}

#[cfg(test)]
mod tests;
