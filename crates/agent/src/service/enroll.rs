//! Enrolling without anyone at the keyboard: the server and its certificate
//! from `agent.toml` (or discovery), the token from the token file.

use crate::config::{read_token, ServiceConfig};
use crate::{discover, enroll, local_device_info, DiscoveryOptions, StoredCredential};

/// The stored credential, or a new one from enrolling with the configured
/// server and token.
pub async fn ensure_enrolled(cfg: &ServiceConfig) -> anyhow::Result<StoredCredential> {
    if StoredCredential::path(&cfg.state_dir).exists() {
        return StoredCredential::load(&cfg.state_dir);
    }
    let (token, from) = match &cfg.token {
        Some(t) => (t.clone(), "the installer's settings".to_string()),
        None => (
            read_token(&cfg.token_file)?,
            cfg.token_file.display().to_string(),
        ),
    };
    let opts = DiscoveryOptions {
        pin: cfg.fingerprint.clone(),
        ..Default::default()
    };
    let (server, pin) = server_and_pin(
        cfg.server.clone(),
        cfg.fingerprint.clone(),
        cfg.trust_on_first_use,
        opts,
    )
    .await?;
    let info = local_device_info(cfg.hostname.clone());
    let cred = enroll(&server, &pin, &token, &info).await?;
    cred.save(&cfg.state_dir)?;
    tracing::info!(
        device = cred.device_id,
        school = %cred.school,
        server = %cred.server,
        "enrolled {} with the token from {from}",
        info.hostname,
    );
    Ok(cred)
}

/// The server to enroll with and the fingerprint to pin: as given, or found
/// by discovery. A discovered server is only trusted through a configured pin,
/// or through its own advertisement when `trust_on_first_use` says so.
pub async fn server_and_pin(
    server: Option<String>,
    fingerprint: Option<String>,
    trust_on_first_use: bool,
    opts: DiscoveryOptions,
) -> anyhow::Result<(String, String)> {
    if let Some(server) = server {
        let pin = fingerprint
            .ok_or_else(|| anyhow::anyhow!("a server address needs its certificate fingerprint"))?;
        return Ok((server, pin));
    }
    let found = discover(&opts).await?;
    let pin = match (fingerprint, found.fingerprint) {
        (Some(pin), _) => pin,
        (None, Some(advertised)) if trust_on_first_use => {
            tracing::warn!(
                "trusting certificate {advertised} of {} on first use: only its {} answer vouches for it",
                found.addr,
                found.method
            );
            advertised
        }
        _ => anyhow::bail!(
            "found {} via {}, but nothing vouches for its certificate (only broadcast answers and \
             DNS-SD TXT records carry a fingerprint); give a fingerprint",
            found.addr,
            found.method
        ),
    };
    tracing::info!("found the server at {} via {}", found.addr, found.method);
    Ok((found.addr, pin))
}
