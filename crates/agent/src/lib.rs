//! The Lectern agent: enrolls a device with a server, keeps one authenticated TLS
//! WebSocket session open (reconnecting with backoff), runs teachers' commands
//! through a [`Desktop`] backend and streams thumbnails while someone watches.
//!
//! Platform work sits behind the [`Desktop`] trait; [`HeadlessDesktop`] keeps a
//! synthetic desktop for tests, the demo and the simulator.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use lectern_agent::{enroll, AgentConfig, HeadlessDesktop, run_agent};
//! let info = lectern_agent::local_device_info(Some("LAB1-PC01".into()));
//! let cred = enroll("127.0.0.1:30016", "ab12…", "token", &info).await?;
//! let desktop = HeadlessDesktop::new("LAB1-PC01", Some("amy".into()));
//! let (_stop, stop_rx) = tokio::sync::watch::channel(false);
//! run_agent(AgentConfig { credential: cred, info, policy_file: None, evidence_frames: 0, scan_keywords: false, school_choice: Default::default() }, std::sync::Arc::new(std::sync::Mutex::new(desktop)), stop_rx, None).await;
//! # Ok(()) }
//! ```

mod backoff;
pub mod config;
mod connection;
mod credential;
pub mod discovery;
pub mod evidence;
pub mod files;
mod headless;
pub mod helper;
pub mod idle_memory;
pub mod inventory;
pub mod ipc;
pub mod lock_timer;
pub mod look;
pub mod native_host;
pub mod platform;
pub mod power_timer;
pub mod queue;
pub mod safety;
pub mod schools;
pub mod service;
mod session;
pub mod student_signin;
pub mod tls;
pub mod video;

/// The Linux service, session helpers and their Unix-socket transport.
#[cfg(target_os = "linux")]
pub mod linux;

/// The Windows service, session helpers and their named-pipe transport.
#[cfg(windows)]
pub mod windows;

/// The Windows service's platform-free rules (pipe names, access lists,
/// session filters), compiled everywhere so every test run checks them.
#[path = "windows/rules.rs"]
pub mod windows_rules;

pub use backoff::Backoff;
pub use connection::{
    connect, enroll, register, server_addresses, server_host, AgentStream, HandshakeError,
    Registration,
};
pub use credential::StoredCredential;
pub use discovery::{discover, Discovered, DiscoveryOptions, Method};
pub use headless::HeadlessDesktop;
pub use lectern_desktop::{
    apply_command, encode_jpeg, Changes, Desktop, DesktopError, Frame, SignInScreen, StudentNotice,
    StudentRequest, TypedText,
};
pub use session::{
    load_policy, run_agent, AgentConfig, ConnStatus, SchoolChoice, SharedDesktop, Switch,
};

/// Logs to stderr; `RUST_LOG` filters (default `info`). The Linux service
/// logs to journald instead ([`linux::init_logging`]).
pub fn init_stderr_logging() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// This agent's facts: hostname (or the given override), OS and version.
pub fn local_device_info(hostname: Option<String>) -> lectern_proto::DeviceInfo {
    let hostname = hostname
        .or_else(platform::hostname)
        .unwrap_or_else(|| "unknown".into());
    lectern_proto::DeviceInfo {
        hostname,
        os: std::env::consts::OS.to_string(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}
