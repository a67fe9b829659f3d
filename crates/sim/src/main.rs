//! `lectern-sim`: run many simulated student computers against a server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use lectern_sim::{SimConfig, Simulator};

/// Runs N headless Lectern agents in one process against a real server, for
/// demos and load tests. Prints one JSON line when all are connected.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Server address, HOST:PORT.
    #[arg(long)]
    server: String,
    /// Server certificate fingerprint (SHA-256 hex).
    #[arg(long)]
    fingerprint: String,
    /// Enrollment token with enough uses for the devices not yet enrolled.
    #[arg(long, default_value = "")]
    token: String,
    /// Number of simulated devices.
    #[arg(long, default_value_t = 30)]
    agents: usize,
    /// Hostname prefix.
    #[arg(long, default_value = "SIM-PC")]
    prefix: String,
    /// File to keep credentials in between runs.
    #[arg(long)]
    credentials: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Synthetic website visits each device records at start, sent through
    /// the activity pipeline (ingest benchmark).
    #[arg(long, default_value_t = 0)]
    activity_burst: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = cli.threads {
        rt.worker_threads(t);
    }
    rt.enable_all().build()?.block_on(async move {
        let started = Instant::now();
        let sim = Simulator::start(SimConfig {
            server: cli.server,
            fingerprint: cli.fingerprint,
            token: cli.token,
            agents: cli.agents,
            prefix: cli.prefix,
            credentials: cli.credentials,
            activity_burst: cli.activity_burst,
        })
        .await?;
        let enrolled = started.elapsed();
        let n = sim
            .wait_connected(cli.agents, Duration::from_secs(600))
            .await;
        println!(
            "{{\"event\":\"connected\",\"agents\":{n},\"enroll_ms\":{},\"connect_ms\":{}}}",
            enrolled.as_millis(),
            started.elapsed().as_millis()
        );
        tokio::signal::ctrl_c().await?;
        sim.stop().await;
        anyhow::Ok(())
    })
}
