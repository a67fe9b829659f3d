//! `lectern-agent`: the program that runs on every student computer. This file
//! picks the platform's pieces (the Linux service and the X11 backend today);
//! everything it drives is platform-free, in the `lectern_agent` library.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};
use lectern_agent::config::BackendKind as Backend;
use lectern_agent::discovery::survey;
use lectern_agent::platform;
use lectern_agent::service::server_and_pin;
use lectern_agent::{
    local_device_info, register, run_agent, AgentConfig, Desktop, HeadlessDesktop, Registration,
    SharedDesktop, StoredCredential,
};

/// The Lectern agent: connects a student computer to the school's Lectern server.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Enroll this device with a server once, storing its credential (mode 0600).
    Enroll {
        /// Server address as HOST:PORT (the server listens on 30016 by default);
        /// when omitted, the server is discovered (see `lectern-agent discover`).
        #[arg(long)]
        server: Option<String>,
        /// Enrollment token created by an admin (`lectern-server token create`).
        /// Older tokens may begin with `-`; they are accepted as values.
        #[arg(
            long,
            env = "LECTERN_ENROLL_TOKEN",
            allow_hyphen_values = true,
            required_unless_present = "school_code",
            conflicts_with = "school_code"
        )]
        token: Option<String>,
        /// The school's code instead of a token (shown to admins on the
        /// console's School page, e.g. 7KQ2M-XH4PD; case and dashes do not
        /// matter).
        #[arg(long, env = "LECTERN_SCHOOL_CODE")]
        school_code: Option<String>,
        /// SHA-256 fingerprint of the server's certificate, as `lectern-server init` printed it;
        /// discovery ignores servers that present another.
        #[arg(long, required_unless_present = "trust_on_first_use")]
        fingerprint: Option<String>,
        /// Instead of --fingerprint, trust the fingerprint a discovered server advertises
        /// (broadcast answer or DNS-SD TXT record). Anyone on the network can answer a
        /// broadcast: use this only on a network you trust.
        #[arg(long, conflicts_with_all = ["fingerprint", "server"])]
        trust_on_first_use: bool,
        #[command(flatten)]
        discovery: DiscoveryArgs,
        /// Directory for the credential and agent state.
        #[arg(long, default_value_os_t = platform::state_dir())]
        state_dir: PathBuf,
        /// Name to enroll under instead of the machine's hostname.
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Register this computer with the school's code (console, Enrollment
    /// page): asks for the code when none is given, checks its form and
    /// saves it where the service reads it (`school_code_file`,
    /// /etc/lectern/schoolcode); the service registers with it at its next
    /// try. Root only.
    SchoolCode {
        /// The code, e.g. 7KQ2M-XH4PD (case, spaces and dashes do not
        /// matter); without it, it is asked for on the terminal.
        code: Option<String>,
        /// The service's configuration, for `school_code_file`.
        #[arg(long, default_value_os_t = platform::config_file())]
        config: PathBuf,
        /// Register this computer with one more school (a computer shared
        /// by schools): adds the code as a further line of the file (the
        /// first is its own school's) instead of replacing it; the service
        /// registers with it at its next start.
        #[arg(long)]
        add: bool,
    },
    /// Show what each discovery step finds and which server enrollment would use.
    Discover {
        /// Certificate fingerprint to pin: servers presenting another are ignored.
        #[arg(long)]
        fingerprint: Option<String>,
        #[command(flatten)]
        discovery: DiscoveryArgs,
    },
    /// Run as the system service (root): enroll from the config's token file if
    /// needed, stay connected, and start a session helper for every graphical
    /// session. This is what the systemd unit runs.
    Service {
        /// The service's configuration (see `docs/deployment.md`).
        #[arg(long, default_value_os_t = platform::config_file())]
        config: PathBuf,
        /// Windows: register or remove the `LecternAgent` service instead
        /// of running it (the MSI does this too).
        #[command(subcommand)]
        action: Option<ServiceAction>,
    },
    /// Show the running service's server, connection, school, policy version
    /// and session helpers (root only; on Windows SYSTEM or an elevated
    /// administrator, over `\\.\pipe\lectern-agent`).
    Status {
        /// The service's configuration, for the socket path.
        #[arg(long, default_value_os_t = platform::config_file())]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Chrome native-messaging host for the Lectern browser extension; browsers
    /// start it (registered in /etc/chromium/native-messaging-hosts/ and
    /// /etc/opt/chrome/native-messaging-hosts/, or by the MSI in the Windows
    /// registry for Chrome and Edge), not people.
    NativeHost {
        /// The service's configuration, for the socket path.
        #[arg(long, default_value_os_t = platform::config_file())]
        config: PathBuf,
        /// The calling extension's origin and anything else the browser passes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        browser_args: Vec<String>,
    },
    /// Windows: serve this interactive session for the service (started by
    /// the service as the session's user; not for use by hand).
    #[command(hide = true)]
    Helper {
        /// The session the service started it for (checked).
        #[arg(long)]
        session: Option<u32>,
    },
    /// Serve one graphical session for the service (started by the service as
    /// the session's user; not for use by hand).
    #[command(hide = true)]
    SessionHelper {
        /// The service's Unix socket.
        #[arg(long)]
        socket: PathBuf,
        /// Session key the service gave this helper.
        #[arg(long)]
        session: String,
        /// Desktop backend.
        #[arg(long, value_enum, default_value_t = Backend::X11)]
        backend: Backend,
    },
    /// Run the agent in the foreground for one desktop (development, kiosks,
    /// tests): stay connected to the server and carry out teachers' commands.
    Run {
        /// Directory holding the credential written by `enroll`.
        #[arg(long, default_value_os_t = platform::state_dir())]
        state_dir: PathBuf,
        /// Desktop backend: how the agent sees and controls the screen.
        #[arg(long, value_enum, default_value_t = Backend::Headless)]
        backend: Backend,
        /// Hostname to report instead of the machine's.
        #[arg(long)]
        hostname: Option<String>,
        /// User logged in on the headless desktop (none: the sign-in screen).
        #[arg(long)]
        user: Option<String>,
        /// Headless only: visit this many synthetic websites at start, to
        /// exercise the activity queue (tests and benchmarks).
        #[arg(long, default_value_t = 0)]
        activity_burst: usize,
    },
}

/// Runtime worker threads: the agent waits on a few sockets and pushes heavy
/// work (captures, encoding) to blocking threads, so two are plenty, and each
/// one more costs a stack and a malloc arena on a many-core machine.
const WORKERS: usize = 2;

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .enable_all()
        .build()?
        .block_on(run())
}

/// glibc gives each thread that allocates an arena of its own (up to 8 per
/// core), which an idle agent keeps; two are enough for its few threads.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run() -> anyhow::Result<()> {
    os::init_logging("lectern-agent");
    match Cli::parse().cmd {
        Cmd::Service { config, action } => os::service(&config, action).await?,
        Cmd::Helper { session } => os::helper(session).await?,
        Cmd::Status { config, json } => {
            let st = os::status(&config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print_status(&st);
            }
        }
        Cmd::NativeHost {
            config,
            browser_args,
        } => {
            let origin = lectern_agent::native_host::caller(&browser_args);
            os::native_host(&config, &origin).await?;
        }
        Cmd::SessionHelper {
            socket,
            session,
            backend,
        } => {
            let desktop: Box<dyn Desktop> = match backend {
                Backend::X11 => os::x11_desktop()?,
                Backend::Headless => {
                    let host = std::env::var("LECTERN_HOSTNAME").ok();
                    let info = local_device_info(host);
                    Box::new(HeadlessDesktop::new(
                        &info.hostname,
                        std::env::var("USER").ok(),
                    ))
                }
            };
            os::run_helper(&socket, &session, desktop).await?;
        }
        Cmd::Enroll {
            server,
            token,
            school_code,
            fingerprint,
            trust_on_first_use,
            discovery,
            state_dir,
            hostname,
        } => {
            let (server, fingerprint) = server_and_pin(
                server,
                fingerprint.clone(),
                trust_on_first_use,
                discovery.options(fingerprint),
            )
            .await?;
            let info = local_device_info(hostname);
            let how = match (token, school_code) {
                (Some(t), _) => Registration::Token(t),
                (None, Some(c)) => Registration::SchoolCode(c),
                (None, None) => anyhow::bail!("give --token or --school-code"),
            };
            let cred = register(&server, &fingerprint, &how, &info).await?;
            cred.save(&state_dir)?;
            println!(
                "enrolled {} as device {} with {} ({}); credential in {}",
                info.hostname,
                cred.device_id,
                cred.school,
                cred.server,
                StoredCredential::path(&state_dir).display()
            );
        }
        Cmd::Discover {
            fingerprint,
            discovery,
        } => print_discovery(&discovery.options(fingerprint)).await?,
        Cmd::SchoolCode { code, config, add } => save_school_code(code, &config, add)?,
        Cmd::Run {
            state_dir,
            backend,
            hostname,
            user,
            activity_burst,
        } => {
            let credential = StoredCredential::load(&state_dir)?;
            let info = local_device_info(hostname);
            let desktop: SharedDesktop = match backend {
                Backend::Headless => {
                    let mut d = HeadlessDesktop::new(&info.hostname, user);
                    d.set_school(&credential.school);
                    d.synthesize_activity(activity_burst);
                    Arc::new(Mutex::new(d))
                }
                Backend::X11 => os::x11_shared(&credential.school)?,
            };
            let stop_rx = os::stop_on_signal();
            run_agent(
                AgentConfig {
                    credential,
                    info,
                    policy_file: Some(state_dir.join("policy.json")),
                    evidence_frames: 30,
                    scan_keywords: true,
                    school_choice: Default::default(),
                },
                desktop,
                stop_rx,
                None,
            )
            .await;
        }
    }
    Ok(())
}

/// What `service` does besides running.
#[derive(Subcommand, Clone, Copy)]
enum ServiceAction {
    /// Register the service with the service control manager (Windows).
    Install,
    /// Stop and remove the registered service (Windows).
    Uninstall,
}

/// Where discovery looks (`enroll` without `--server`, and `discover`).
#[derive(clap::Args)]
struct DiscoveryArgs {
    /// File holding the server's address, one line HOST[:PORT] (discovery step 1).
    #[arg(long, default_value_os_t = platform::server_file())]
    server_file: PathBuf,
    /// resolv.conf whose search domains and name servers DNS-SD asks (step 3).
    #[arg(long, default_value_os_t = platform::resolv_conf())]
    resolv_conf: PathBuf,
    /// Discovery steps to try; they always run in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "file,dns,dns-sd,broadcast"
    )]
    methods: Vec<lectern_agent::Method>,
    /// Milliseconds each step may take.
    #[arg(long, default_value_t = 3000)]
    step_timeout_ms: u64,
}

impl DiscoveryArgs {
    fn options(&self, pin: Option<String>) -> lectern_agent::DiscoveryOptions {
        lectern_agent::DiscoveryOptions {
            pin,
            methods: self.methods.clone(),
            server_file: self.server_file.clone(),
            resolv_conf: self.resolv_conf.clone(),
            step_timeout: std::time::Duration::from_millis(self.step_timeout_ms),
            ..Default::default()
        }
    }
}

/// `discover`: one line per finding, then the server enrollment would use.
async fn print_discovery(opts: &lectern_agent::DiscoveryOptions) -> anyhow::Result<()> {
    let survey = survey(opts).await?;
    for step in &survey.steps {
        if step.notes.is_empty() && step.candidates.is_empty() {
            println!("{}: nothing found", step.method);
        }
        for note in &step.notes {
            println!("{}: {note}", step.method);
        }
        for c in &step.candidates {
            let school = c
                .candidate
                .school
                .as_deref()
                .map(|s| format!(" (school {s:?})"));
            let school = school.unwrap_or_default();
            match &c.result {
                Ok(fp) => println!(
                    "{}: {}{school}: TLS verified, certificate {fp}",
                    step.method, c.candidate.addr
                ),
                Err(e) => println!(
                    "{}: {}{school}: not verified: {e}",
                    step.method, c.candidate.addr
                ),
            }
        }
    }
    match survey.found {
        Some(found) => {
            println!(
                "found {} via {} fingerprint {}",
                found.addr,
                found.method,
                found.fingerprint.as_deref().unwrap_or("none")
            );
            Ok(())
        }
        None => anyhow::bail!("no Lectern server found"),
    }
}

/// `status` as text.
fn print_status(st: &lectern_agent::ipc::ServiceStatus) {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not enrolled)".into());
    println!("server:         {}", or_none(&st.server));
    println!("school:         {}", or_none(&st.school));
    match st.device_id {
        Some(id) => println!("device id:      {id}"),
        None => println!("device id:      (not enrolled)"),
    }
    println!("connection:     {}", st.connection);
    println!("policy version: {}", st.policy_version);
    if st.sessions.is_empty() {
        println!("sessions:       none");
    }
    for s in &st.sessions {
        let helper = s
            .helper_pid
            .map_or("not connected".to_string(), |p| format!("helper pid {p}"));
        println!(
            "session {}: user {} on {}, {helper}, started {} time(s)",
            s.session, s.user, s.display, s.starts
        );
    }
}

/// The platform's pieces: the only part of the agent that names a platform.
#[cfg(target_os = "linux")]
mod os {
    use std::sync::{Arc, Mutex};

    use std::path::Path;

    use lectern_agent::config::ServiceConfig;
    use lectern_agent::ipc::ServiceStatus;
    use lectern_agent::{Desktop, SharedDesktop};
    use lectern_x11::X11Desktop;

    pub use lectern_agent::linux::{init_logging, run_helper};

    /// `service`: runs until SIGTERM; the package installs the systemd unit.
    pub async fn service(
        config: &Path,
        action: Option<super::ServiceAction>,
    ) -> anyhow::Result<()> {
        if action.is_some() {
            anyhow::bail!("on Linux the package installs and removes the systemd unit");
        }
        let cfg = ServiceConfig::load(config)?;
        lectern_agent::linux::run_service(cfg, stop_on_signal()).await
    }

    /// `helper` is the Windows session helper (Linux has `session-helper`).
    pub async fn helper(_session: Option<u32>) -> anyhow::Result<()> {
        anyhow::bail!(
            "`helper` is the Windows session helper; the Linux service starts `session-helper`"
        )
    }

    /// `status`, over the configured socket.
    pub async fn status(config: &Path) -> anyhow::Result<ServiceStatus> {
        let cfg = ServiceConfig::load(config)?;
        lectern_agent::linux::query_status(&cfg.socket).await
    }

    /// `native-host`, to the configured socket.
    pub async fn native_host(config: &Path, origin: &str) -> anyhow::Result<()> {
        let cfg = ServiceConfig::load(config)?;
        lectern_agent::linux::run_native_host(&cfg.socket, origin).await
    }

    /// The X11 desktop of `$DISPLAY`, for a session helper.
    pub fn x11_desktop() -> anyhow::Result<Box<dyn Desktop>> {
        Ok(Box::new(X11Desktop::connect(None)?))
    }

    /// The X11 desktop of `$DISPLAY`, showing `school` on its lock screen.
    pub fn x11_shared(school: &str) -> anyhow::Result<SharedDesktop> {
        let mut d = X11Desktop::connect(None)?;
        d.set_school(school);
        Ok(Arc::new(Mutex::new(d)))
    }

    /// A flag that turns true on SIGINT or SIGTERM (systemd stops with SIGTERM).
    pub fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
        use tokio::signal::unix::{signal, SignalKind};
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term = match signal(SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    let _ = tx.send(true);
                    return;
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            let _ = tx.send(true);
        });
        rx
    }
}

/// The Windows service, its session helpers and native host; the helper's
/// desktop is made in [`os::session_desktop`] (one place).
#[cfg(windows)]
mod os {
    use std::path::Path;

    use lectern_agent::ipc::ServiceStatus;
    use lectern_agent::windows as win;
    use lectern_agent::Desktop;

    pub use win::init_logging;

    /// The desktop a session helper drives: the Windows backend, drawing its
    /// lock screen and messages with lectern-student-ui.
    pub fn session_desktop() -> anyhow::Result<Box<dyn Desktop>> {
        Ok(Box::new(lectern_windows::WindowsDesktop::new()?))
    }

    /// `service` (run by the service control manager, or in the
    /// foreground from a console), `service install`, `service uninstall`.
    pub async fn service(
        config: &Path,
        action: Option<super::ServiceAction>,
    ) -> anyhow::Result<()> {
        match action {
            Some(super::ServiceAction::Install) => win::install(),
            Some(super::ServiceAction::Uninstall) => win::uninstall(),
            None => win::run_service(win::load_config(config)?, stop_on_signal()).await,
        }
    }

    /// `helper`: serves this session with [`session_desktop`].
    pub async fn helper(session: Option<u32>) -> anyhow::Result<()> {
        win::run_helper(session, session_desktop()?).await
    }

    /// `status`, over the control pipe.
    pub async fn status(_config: &Path) -> anyhow::Result<ServiceStatus> {
        win::query_status().await
    }

    /// `native-host`, over this session's pipe.
    pub async fn native_host(_config: &Path, origin: &str) -> anyhow::Result<()> {
        win::run_native_host(origin).await
    }

    pub async fn run_helper(
        _socket: &Path,
        _session: &str,
        _desktop: Box<dyn Desktop>,
    ) -> anyhow::Result<()> {
        anyhow::bail!("`session-helper` is the Linux session helper; Windows starts `helper`")
    }

    pub fn x11_desktop() -> anyhow::Result<Box<dyn Desktop>> {
        anyhow::bail!("the X11 backend is not available on Windows")
    }

    pub fn x11_shared(_school: &str) -> anyhow::Result<lectern_agent::SharedDesktop> {
        anyhow::bail!("the X11 backend is not available on Windows")
    }

    /// A flag that turns true on Ctrl+C (the service control manager stops
    /// the service through its own handler).
    pub fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        rx
    }
}

/// Elsewhere only the platform-free commands run (`enroll`, `discover`,
/// `run --backend headless`); each platform's service and backend come with
/// its own module here.
#[cfg(not(any(target_os = "linux", windows)))]
mod os {
    use std::path::Path;

    use lectern_agent::ipc::ServiceStatus;
    use lectern_agent::Desktop;

    fn missing<T>(what: &str) -> anyhow::Result<T> {
        anyhow::bail!("{what} is not available on {} yet", std::env::consts::OS)
    }

    pub fn init_logging(_identifier: &str) {
        lectern_agent::init_stderr_logging();
    }

    pub async fn service(
        _config: &Path,
        _action: Option<super::ServiceAction>,
    ) -> anyhow::Result<()> {
        missing("the system service")
    }

    pub async fn helper(_session: Option<u32>) -> anyhow::Result<()> {
        missing("the session helper")
    }

    pub async fn status(_config: &Path) -> anyhow::Result<ServiceStatus> {
        missing("the system service")
    }

    pub async fn native_host(_config: &Path, _origin: &str) -> anyhow::Result<()> {
        missing("the native-messaging host")
    }

    pub async fn run_helper(
        _socket: &Path,
        _session: &str,
        _desktop: Box<dyn Desktop>,
    ) -> anyhow::Result<()> {
        missing("the session helper")
    }

    pub fn x11_desktop() -> anyhow::Result<Box<dyn Desktop>> {
        missing("the X11 backend")
    }

    pub fn x11_shared(_school: &str) -> anyhow::Result<lectern_agent::SharedDesktop> {
        missing("the X11 backend")
    }

    /// A flag that turns true on Ctrl+C.
    pub fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        rx
    }
}

/// `school-code`: the code given or typed, checked and saved for the
/// service.
fn save_school_code(
    code: Option<String>,
    config: &std::path::Path,
    add: bool,
) -> anyhow::Result<()> {
    use std::io::{BufRead, Write};
    let cfg = lectern_agent::config::ServiceConfig::load(config)?;
    if StoredCredential::path(&cfg.state_dir).exists() && !add {
        println!(
            "note: this computer is already registered ({}); the code is used only if that \
             credential is removed",
            StoredCredential::path(&cfg.state_dir).display()
        );
    }
    let typed = match code {
        Some(c) => c,
        None => {
            print!("School code: ");
            std::io::stdout().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line
        }
    };
    let code = lectern_proto::schoolcode::normalize(typed.trim())
        .map_err(|e| anyhow::anyhow!("{e} (like 7KQ2M-XH4PD)"))?;
    let path = &cfg.school_code_file;
    if add {
        let mut text = std::fs::read_to_string(path).unwrap_or_default();
        let codes = lectern_agent::schools::codes_in(&text);
        // Line 1 is the computer's own school: a further school needs it.
        if codes.is_empty() {
            anyhow::bail!(
                "{} has no code for this computer's own school yet: save that first \
                 (lectern-agent school-code CODE), then add the others",
                path.display()
            );
        }
        if codes.contains(&Some(code.clone())) {
            println!(
                "{} is in {} already",
                lectern_proto::schoolcode::display(&code),
                path.display()
            );
            return Ok(());
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&lectern_proto::schoolcode::display(&code));
        text.push('\n');
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        println!(
            "added {} to {}; the service registers with that school too at its next start",
            lectern_proto::schoolcode::display(&code),
            path.display()
        );
        return Ok(());
    }
    lectern_agent::service::write_school_code(path, &code, "lectern-agent school-code")?;
    println!(
        "saved {} in {}; the service registers with it at its next try (within a minute)",
        lectern_proto::schoolcode::display(&code),
        path.display()
    );
    Ok(())
}
