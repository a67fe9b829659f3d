//! Enrolling without anyone at the keyboard: the server and its certificate
//! from `agent.toml` (or discovery), and an enrollment token or the school
//! code from the installer's settings or their files.

use crate::config::{read_token, ServiceConfig};
use crate::{
    discover, local_device_info, register, DiscoveryOptions, Registration, StoredCredential,
};

/// Neither a token nor a school code is given: the service asks for the
/// code on the screen (a typed error, so the caller need not read text).
#[derive(Debug, thiserror::Error)]
#[error(
    "not enrolled, and neither an enrollment token ({token}) nor a school code ({code}) is given"
)]
pub struct NothingGiven {
    token: String,
    code: String,
}

/// Writes `code` (canonical) where the service reads the school code, with
/// a comment saying where it came from.
pub fn write_school_code(path: &std::path::Path, code: &str, from: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = format!(
        "# The school code ({from}); read when this computer is not registered.\n{}\n",
        lectern_proto::schoolcode::display(code)
    );
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// How to register, and where that came from: a token (installer, then
/// token file) before a school code (installer, then school code file).
pub fn registration(cfg: &ServiceConfig) -> anyhow::Result<(Registration, String)> {
    let installer = "the installer's settings".to_string();
    if let Some(t) = cfg.token.clone() {
        return Ok((Registration::Token(t), installer));
    }
    if cfg.token_file.exists() {
        let from = cfg.token_file.display().to_string();
        return Ok((Registration::Token(read_token(&cfg.token_file)?), from));
    }
    if let Some(c) = cfg.school_code.clone() {
        return Ok((Registration::SchoolCode(c), installer));
    }
    if cfg.school_code_file.exists() {
        let from = cfg.school_code_file.display().to_string();
        return Ok((
            Registration::SchoolCode(read_token(&cfg.school_code_file)?),
            from,
        ));
    }
    Err(NothingGiven {
        token: cfg.token_file.display().to_string(),
        code: cfg.school_code_file.display().to_string(),
    }
    .into())
}

/// The stored credential, or a new one from enrolling with the configured
/// server and token or school code.
pub async fn ensure_enrolled(cfg: &ServiceConfig) -> anyhow::Result<StoredCredential> {
    if let Some(r) = crate::schools::Schools::new(&cfg.state_dir).active() {
        return Ok(r.credential);
    }
    if StoredCredential::path(&cfg.state_dir).exists() {
        return StoredCredential::load(&cfg.state_dir);
    }
    let (how, from) = registration(cfg)?;
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
    let cred = register(&server, &pin, &how, &info).await?;
    cred.save(&cfg.state_dir)?;
    tracing::info!(
        device = cred.device_id,
        school = %cred.school,
        server = %cred.server,
        "enrolled {} with the {} from {from}",
        info.hostname,
        how.what(),
    );
    Ok(cred)
}

/// Registers with the school of each further line of the school code file
/// (line 1 is the computer's own school, which registered it unless a token
/// did) whose school it is not registered with yet, on the server of
/// `first`. A line registers once: a new code on it (the school made a new
/// one) changes nothing. An unreachable server is tried again at the next
/// start; a code refused for good is not, until the line changes. The
/// device works with what it has meanwhile.
pub async fn register_more(cfg: &ServiceConfig, first: &StoredCredential) {
    let Ok(text) = std::fs::read_to_string(&cfg.school_code_file) else {
        return;
    };
    let schools = crate::schools::Schools::new(&cfg.state_dir);
    let max = crate::schools::MAX_SCHOOLS;
    for (i, code) in crate::schools::codes_in(&text).iter().enumerate().skip(1) {
        let line = i + 1;
        let Some(code) = code else { continue };
        let shown = lectern_proto::schoolcode::display(code);
        if line > max {
            tracing::error!("{shown} is line {line} of the school code file: a computer takes {max} schools at most");
            break;
        }
        if schools.has_line(line) || schools.refused(line, code) {
            continue;
        }
        let info = local_device_info(cfg.hostname.clone());
        let how = Registration::SchoolCode(code.clone());
        let added = match register(&first.server, &first.fingerprint, &how, &info).await {
            Ok(c) => schools.add_line(line, &c),
            Err(e) => Err(e),
        };
        match added {
            Ok(r) => tracing::info!(
                device = r.credential.device_id,
                "registered with {} too, with the school code {shown}",
                r.credential.school
            ),
            Err(e) => {
                tracing::error!("cannot register with the school code {shown}: {e:#}");
                // A code the server will never take is not tried at every
                // start: wrong codes count against the school's address,
                // which its other computers register from.
                let permanent = matches!(
                    e.downcast_ref::<crate::HandshakeError>(),
                    Some(crate::HandshakeError::Refused { code, .. }) if code.is_permanent()
                );
                if permanent {
                    let _ = schools.refuse(line, code);
                }
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_comes_before_the_school_code_and_files_after_the_installer() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = ServiceConfig {
            token_file: dir.path().join("enrollment-token"),
            school_code_file: dir.path().join("schoolcode"),
            ..Default::default()
        };
        let err = registration(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("schoolcode") && err.contains("enrollment-token"),
            "{err}"
        );

        std::fs::write(
            &cfg.school_code_file,
            "# placed by the IT team\n7kq2m-xh4pd\n",
        )
        .unwrap();
        let (how, from) = registration(&cfg).unwrap();
        assert_eq!(how, Registration::SchoolCode("7kq2m-xh4pd".into()));
        assert!(from.ends_with("schoolcode"));

        cfg.school_code = Some("FROM-MSI".into());
        assert_eq!(
            registration(&cfg).unwrap().0,
            Registration::SchoolCode("FROM-MSI".into())
        );

        std::fs::write(&cfg.token_file, "lct_abc\n").unwrap();
        assert_eq!(
            registration(&cfg).unwrap().0,
            Registration::Token("lct_abc".into())
        );
        cfg.token = Some("lct_msi".into());
        let (how, from) = registration(&cfg).unwrap();
        assert_eq!(how, Registration::Token("lct_msi".into()));
        assert_eq!(from, "the installer's settings");
    }
}
