//! The server's certificate: made with rcgen at `init` unless one is given,
//! loaded into a rustls configuration at `serve`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// SHA-256 of a DER certificate as lowercase hex: what agents pin.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Formats a fingerprint for people: `AB:CD:…`.
pub fn pretty_fingerprint(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// A self-signed certificate for `names` (DNS names or IP addresses); returns
/// (certificate PEM, private key PEM).
pub fn generate(names: &[String]) -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Lectern server");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Lectern");
    // Agents pin this certificate, so it outlives any sensible rotation cycle.
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Loads a PEM chain and key; returns the rustls configuration and the leaf's fingerprint.
pub fn load(cert: &Path, key: &Path) -> anyhow::Result<(Arc<rustls::ServerConfig>, String)> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))
    };
    let chain: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut read(cert)?.as_slice()).collect::<Result<_, _>>()?;
    let leaf = chain
        .first()
        .ok_or_else(|| anyhow::anyhow!("{} holds no certificate", cert.display()))?;
    let fp = fingerprint(leaf);
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut read(key)?.as_slice())?
        .ok_or_else(|| anyhow::anyhow!("{} holds no private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), fp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_loads_and_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = generate(&["localhost".into(), "127.0.0.1".into()]).unwrap();
        std::fs::write(dir.path().join("c.pem"), c).unwrap();
        std::fs::write(dir.path().join("k.pem"), k).unwrap();
        let (_, fp) = load(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
        assert_eq!(fp.len(), 64);
        assert_eq!(pretty_fingerprint("abcd"), "AB:CD");
        assert!(load(&dir.path().join("k.pem"), &dir.path().join("k.pem")).is_err());
    }
}
