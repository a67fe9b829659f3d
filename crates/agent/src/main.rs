//! `lectern-agent`: the program that runs on every student computer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand, ValueEnum};
use lectern_agent::{
    enroll, local_device_info, run_agent, AgentConfig, HeadlessDesktop, StoredCredential,
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
        /// Server address as HOST:PORT (the server listens on 30016 by default).
        #[arg(long)]
        server: String,
        /// Enrollment token created by an admin (`lectern-server token create`).
        #[arg(long, env = "LECTERN_ENROLL_TOKEN")]
        token: String,
        /// SHA-256 fingerprint of the server's certificate, as `lectern-server init` printed it.
        #[arg(long)]
        fingerprint: String,
        /// Directory for the credential and agent state.
        #[arg(long, default_value = "/var/lib/lectern-agent")]
        state_dir: PathBuf,
        /// Name to enroll under instead of the machine's hostname.
        #[arg(long)]
        hostname: Option<String>,
    },
    /// Run the agent: stay connected to the server and carry out teachers' commands.
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
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// A synthetic desktop drawn in memory: for tests, demos and the simulator.
    Headless,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Enroll {
            server,
            token,
            fingerprint,
            state_dir,
            hostname,
        } => {
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
        Cmd::Run {
            state_dir,
            backend: Backend::Headless,
            hostname,
            user,
        } => {
            let credential = StoredCredential::load(&state_dir)?;
            let info = local_device_info(hostname);
            let mut desktop = HeadlessDesktop::new(&info.hostname, user);
            desktop.set_school(&credential.school);
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                let _ = stop_tx.send(true);
            });
            run_agent(
                AgentConfig {
                    credential,
                    info,
                    policy_file: Some(state_dir.join("policy.json")),
                },
                Arc::new(Mutex::new(desktop)),
                stop_rx,
                None,
            )
            .await;
        }
    }
    Ok(())
}
