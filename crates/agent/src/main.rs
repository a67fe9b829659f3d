//! `lectern-agent`: the program that runs on every student computer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};
use lectern_agent::config::{BackendKind as Backend, ServiceConfig, DEFAULT_CONFIG};
use lectern_agent::discovery::{survey, DEFAULT_RESOLV_CONF, DEFAULT_SERVER_FILE};
use lectern_agent::service::{query_status, run_service, server_and_pin};
use lectern_agent::{
    enroll, local_device_info, run_agent, AgentConfig, Desktop, HeadlessDesktop, SharedDesktop,
    StoredCredential, X11Desktop,
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
        #[arg(long, env = "LECTERN_ENROLL_TOKEN", allow_hyphen_values = true)]
        token: String,
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
        #[arg(long, default_value = "/var/lib/lectern-agent")]
        state_dir: PathBuf,
        /// Name to enroll under instead of the machine's hostname.
        #[arg(long)]
        hostname: Option<String>,
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
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show the running service's server, connection, school, policy version
    /// and session helpers (root only).
    Status {
        /// The service's configuration, for the socket path.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Chrome native-messaging host for the Lectern browser extension; browsers
    /// start it (registered in /etc/chromium/native-messaging-hosts/ and
    /// /etc/opt/chrome/native-messaging-hosts/), not people.
    NativeHost {
        /// The service's configuration, for the socket path.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The calling extension's origin and anything else the browser passes.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        browser_args: Vec<String>,
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
        #[arg(long, default_value = "/var/lib/lectern-agent")]
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    lectern_agent::init_logging("lectern-agent");
    match Cli::parse().cmd {
        Cmd::Service { config } => {
            let cfg = ServiceConfig::load(&config)?;
            run_service(cfg, stop_on_signal()).await?;
        }
        Cmd::Status { config, json } => {
            let cfg = ServiceConfig::load(&config)?;
            let st = query_status(&cfg.socket)?;
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
            let cfg = ServiceConfig::load(&config)?;
            let origin = lectern_agent::native_host::caller(&browser_args);
            tokio::task::spawn_blocking(move || {
                lectern_agent::native_host::run(&cfg.socket, &origin)
            })
            .await??;
        }
        Cmd::SessionHelper {
            socket,
            session,
            backend,
        } => {
            let desktop: Box<dyn Desktop> = match backend {
                Backend::X11 => Box::new(X11Desktop::connect(None)?),
                Backend::Headless => {
                    let host = std::env::var("LECTERN_HOSTNAME").ok();
                    let info = local_device_info(host);
                    Box::new(HeadlessDesktop::new(
                        &info.hostname,
                        std::env::var("USER").ok(),
                    ))
                }
            };
            tokio::task::spawn_blocking(move || {
                lectern_agent::helper::run_helper(&socket, &session, desktop)
            })
            .await??;
        }
        Cmd::Enroll {
            server,
            token,
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
            let cred = enroll(&server, &fingerprint, &token, &info).await?;
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
                Backend::X11 => {
                    let mut d = X11Desktop::connect(None)?;
                    d.set_school(&credential.school);
                    Arc::new(Mutex::new(d))
                }
            };
            let stop_rx = stop_on_signal();
            run_agent(
                AgentConfig {
                    credential,
                    info,
                    policy_file: Some(state_dir.join("policy.json")),
                    evidence_frames: 30,
                    scan_keywords: true,
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

/// Where discovery looks (`enroll` without `--server`, and `discover`).
#[derive(clap::Args)]
struct DiscoveryArgs {
    /// File holding the server's address, one line HOST[:PORT] (discovery step 1).
    #[arg(long, default_value = DEFAULT_SERVER_FILE)]
    server_file: PathBuf,
    /// resolv.conf whose search domains and name servers DNS-SD asks (step 3).
    #[arg(long, default_value = DEFAULT_RESOLV_CONF)]
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

/// A flag that turns true on SIGINT or SIGTERM (systemd stops with SIGTERM).
fn stop_on_signal() -> tokio::sync::watch::Receiver<bool> {
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
