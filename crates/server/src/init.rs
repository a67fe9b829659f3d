//! `lectern-server init`: a data directory with a school, its first admin, a
//! certificate and `server.toml`.

use std::net::SocketAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use lectern_store::Role;

use crate::config::ServerConfig;
use crate::engine::ClusterConfig;

/// What to initialize.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Data directory to create.
    pub data_dir: PathBuf,
    /// School name.
    pub school: String,
    /// First admin's user name.
    pub admin: String,
    /// First admin's password; generated when `None`.
    pub password: Option<String>,
    /// Existing certificate and key (PEM) to use instead of making one.
    pub cert: Option<(PathBuf, PathBuf)>,
    /// Extra names (DNS or IP) for a generated certificate.
    pub names: Vec<String>,
    /// Listen address written to `server.toml`.
    pub listen: Option<SocketAddr>,
    /// PostgreSQL connection parameters: the school goes into that shared
    /// store and `server.toml` gets `[cluster]`; none: the SQLite file.
    pub postgres: Option<String>,
}

/// What `init` did.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// SHA-256 fingerprint of the certificate, hex.
    pub fingerprint: String,
    /// The generated password, shown once; `None` when it was given.
    pub generated_password: Option<String>,
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// Creates the data directory. Refuses to touch one that already holds a school.
pub fn init(opts: &InitOptions) -> anyhow::Result<InitReport> {
    let generated_password = opts
        .password
        .is_none()
        .then(lectern_store::generated_password);
    let password = opts
        .password
        .clone()
        .or_else(|| generated_password.clone())
        .unwrap_or_default();
    if password.chars().count() < 8 {
        anyhow::bail!("the admin password must be at least 8 characters");
    }
    // On PostgreSQL the store's check below says nothing of this folder: a
    // server's own files in it must not be overwritten or left behind.
    if opts.postgres.is_some()
        && [crate::config::CONFIG_FILE, crate::config::DB_FILE]
            .iter()
            .any(|f| opts.data_dir.join(f).exists())
    {
        anyhow::bail!(
            "{} already holds a server (server.toml or lectern.db); a cluster's further nodes \
             start from a copy of the first node's server.toml and certificate",
            opts.data_dir.display()
        );
    }
    std::fs::create_dir_all(&opts.data_dir)?;
    std::fs::set_permissions(&opts.data_dir, std::fs::Permissions::from_mode(0o700))?;
    let mut config = ServerConfig {
        cluster: opts.postgres.as_ref().map(|p| ClusterConfig {
            postgres: p.clone(),
            nats: Vec::new(),
            nats_user: None,
            nats_password: None,
            node: None,
            lease_secs: 15,
        }),
        ..ServerConfig::default()
    };
    let store = crate::engine::open(&opts.data_dir, &config)?;
    if let Some(s) = store.first_school()? {
        let place = match opts.postgres {
            Some(_) => "the PostgreSQL store".to_string(),
            None => opts.data_dir.display().to_string(),
        };
        anyhow::bail!("{place} is already initialized for {:?}", s.name);
    }
    if let Some(listen) = opts.listen {
        config.listen = listen;
    }
    match &opts.cert {
        Some((cert, key)) => {
            config.cert = std::fs::canonicalize(cert)?;
            config.key = std::fs::canonicalize(key)?;
        }
        None => {
            let mut names = vec![
                "localhost".to_string(),
                "lectern-server".into(),
                "127.0.0.1".into(),
                "::1".into(),
            ];
            if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
                names.push(h.trim().to_string());
            }
            names.extend(opts.names.iter().cloned());
            names.sort();
            names.dedup();
            let (cert, key) = crate::tls::generate(&names)?;
            std::fs::write(opts.data_dir.join(&config.cert), cert)?;
            write_private(&opts.data_dir.join(&config.key), &key)?;
        }
    }
    let (_, fingerprint) = crate::tls::load(
        &ServerConfig::resolve(&opts.data_dir, &config.cert),
        &ServerConfig::resolve(&opts.data_dir, &config.key),
    )?;
    config.metrics_token = lectern_store::printable_secret("lcm_");
    config.save(&opts.data_dir)?;
    let school = store.create_school(&opts.school)?;
    store.create_user(school, &opts.admin, &password, Role::Admin)?;
    Ok(InitReport {
        fingerprint,
        generated_password,
    })
}
