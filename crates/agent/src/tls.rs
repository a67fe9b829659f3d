//! TLS with a pinned server certificate. The agent trusts exactly the
//! certificate whose SHA-256 fingerprint it was enrolled with, not the web PKI:
//! school servers use self-made certificates, and a pin cannot be subverted by
//! any CA.

use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Accepts `AB:CD:…`, `abcd…` and spaced forms; returns 64 lowercase hex digits.
pub fn normalize_fingerprint(s: &str) -> anyhow::Result<String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect::<String>()
        .to_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        anyhow::bail!("a certificate fingerprint is 64 hex digits (SHA-256), got {s:?}");
    }
    Ok(hex)
}

/// Accepts the certificate with the expected fingerprint (any, when none is
/// expected, as discovery does to learn it) and remembers the fingerprint it
/// saw; handshake signatures are still checked, so the server must hold the
/// certificate's key.
#[derive(Debug)]
struct FingerprintVerifier {
    expected: Option<String>,
    seen: Option<Arc<Mutex<Option<String>>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        if let Some(seen) = &self.seen {
            *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(got.clone());
        }
        match &self.expected {
            Some(want) if *want != got => Err(rustls::Error::General(format!(
                "server certificate fingerprint {got} does not match the pinned {want}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn client_config(verifier: FingerprintVerifier) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = verifier.provider.clone();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A client configuration that trusts only the certificate with fingerprint `pin`.
pub fn pinned_client_config(pin: &str) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    client_config(FingerprintVerifier {
        expected: Some(normalize_fingerprint(pin)?),
        seen: None,
        provider: Arc::new(rustls::crypto::ring::default_provider()),
    })
}

/// A client configuration for probing a server: it accepts the certificate
/// with fingerprint `expected` (any, when `None`) and writes the fingerprint it
/// saw into `seen`.
pub fn observing_client_config(
    expected: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    client_config(FingerprintVerifier {
        expected,
        seen: Some(seen),
        provider: Arc::new(rustls::crypto::ring::default_provider()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_normalize() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(normalize_fingerprint(&colons).unwrap(), hex);
        assert!(normalize_fingerprint("abc").is_err());
        assert!(normalize_fingerprint(&"zz".repeat(32)).is_err());
    }
}
