//! `lectern-server demo`: a server plus a simulated classroom in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use lectern_sim::{SimConfig, Simulator};
use lectern_store::now_ms;

use crate::init::{init, InitOptions};
use crate::Server;

/// Demo settings.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Data directory; a fresh temporary one when `None`.
    pub data_dir: Option<PathBuf>,
    /// Listen address.
    pub listen: SocketAddr,
    /// Simulated devices.
    pub agents: usize,
    /// Admin password; generated when `None` on first run.
    pub password: Option<String>,
}

/// Runs the demo until Ctrl-C.
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    let tmp = match opts.data_dir {
        Some(_) => None,
        None => Some(tempfile::Builder::new().prefix("lectern-demo-").tempdir()?),
    };
    let data_dir = opts.data_dir.clone().unwrap_or_else(|| {
        tmp.as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default()
    });
    let fresh = !data_dir.join(crate::config::CONFIG_FILE).exists();
    let mut password = opts.password.clone();
    if fresh {
        let report = init(&InitOptions {
            data_dir: data_dir.clone(),
            school: "Hillside Demo School".into(),
            admin: "admin".into(),
            password: opts.password.clone(),
            cert: None,
            names: Vec::new(),
            listen: Some(opts.listen),
            postgres: None,
        })?;
        password = password.or(report.generated_password);
    }
    let server = Server::start(&data_dir, Some(opts.listen)).await?;
    let connect_to = if server.addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], server.addr.port()))
    } else {
        server.addr
    };
    // The demo's data directory holds the one school `init` made.
    let school = server
        .state
        .db(|s| s.first_school())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?
        .ok_or_else(|| anyhow::anyhow!("{} holds no school", data_dir.display()))?;
    let n = opts.agents as i64;
    let token = if n > 0 {
        server
            .state
            .db(move |s| {
                s.create_enrollment_token(
                    school.id,
                    "demo classroom",
                    n,
                    now_ms() + 3_600_000,
                    "demo",
                )
            })
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?
            .0
    } else {
        String::new()
    };
    let sim = Simulator::start(SimConfig {
        server: connect_to.to_string(),
        fingerprint: server.fingerprint.clone(),
        token,
        agents: opts.agents,
        prefix: "LAB1-PC".into(),
        credentials: Some(data_dir.join("demo-agents.json")),
        activity_burst: 0,
    })
    .await?;
    let online = sim
        .wait_connected(opts.agents, Duration::from_secs(60))
        .await;
    println!(
        "Lectern demo: {} with {online} simulated student computers online",
        school.name
    );
    println!("Console: https://{connect_to}/");
    println!("User: admin");
    match &password {
        Some(p) => println!("Password: {p}"),
        None => println!(
            "Password: (the one set when {} was first initialized)",
            data_dir.display()
        ),
    }
    println!(
        "Certificate SHA-256: {}",
        crate::tls::pretty_fingerprint(&server.fingerprint)
    );
    println!("Data directory: {}", data_dir.display());
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    server.stop().await;
    drop(tmp);
    Ok(())
}
