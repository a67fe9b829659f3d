//! Sending one message over SMTP with lettre (tokio, rustls with ring):
//! STARTTLS (required) or implicit TLS, the server's certificate checked
//! against the pinned CA or else the system's store, and failures sorted
//! into kinds the caller acts on (retry or not, and what to tell people).

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{MailConfig, Security};

/// How long one SMTP conversation may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Why a message was not sent. [`SendError::retry`] says whether trying
/// again later may help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The settings cannot make a message or connection (an address, the CA).
    #[error("the mail settings are not usable: {0}")]
    Settings(String),
    /// The server's certificate was not trusted (pinned CA or system store).
    #[error("the mail server's certificate was refused: {0}")]
    Certificate(String),
    /// The server refused the user name or password.
    #[error("the mail server refused the user name or password: {0}")]
    Credentials(String),
    /// The server refused the message for good (5xx).
    #[error("the mail server refused the message: {0}")]
    Refused(String),
    /// A temporary refusal (4xx).
    #[error("the mail server deferred the message: {0}")]
    Deferred(String),
    /// No connection, a TLS failure other than the certificate, or a timeout.
    #[error("the mail server could not be reached: {0}")]
    Unreachable(String),
    /// The stored password no longer decrypts here; it must be entered again.
    #[error("the SMTP password must be entered again (it cannot be decrypted on this server)")]
    PasswordLost,
}

impl SendError {
    /// Whether a later attempt may succeed without anyone changing anything.
    pub fn retry(&self) -> bool {
        matches!(self, SendError::Deferred(_) | SendError::Unreachable(_))
    }

    /// A short stable name for audit outcomes.
    pub fn kind(&self) -> &'static str {
        match self {
            SendError::Settings(_) => "settings",
            SendError::Certificate(_) => "certificate",
            SendError::Credentials(_) => "credentials",
            SendError::Refused(_) => "refused",
            SendError::Deferred(_) => "deferred",
            SendError::Unreachable(_) => "unreachable",
            SendError::PasswordLost => "password_lost",
        }
    }
}

/// One message to send: plain text, no attachments.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Body (plain text).
    pub body: String,
}

fn tls_parameters(cfg: &MailConfig) -> Result<TlsParameters, SendError> {
    let mut b = TlsParameters::builder(cfg.host.clone());
    if let Some(pem) = &cfg.ca_pem {
        // A pinned CA replaces the system's store: only it is trusted.
        let cert = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| SendError::Settings(format!("ca_pem: {e}")))?;
        b = b
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    b.build_rustls()
        .map_err(|e| SendError::Settings(format!("TLS: {e}")))
}

fn transport(
    cfg: &MailConfig,
    password: &str,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let tls = match cfg.security {
        Security::None => Tls::None,
        Security::Starttls => Tls::Required(tls_parameters(cfg)?),
        Security::Tls => Tls::Wrapper(tls_parameters(cfg)?),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
        .port(cfg.port)
        .tls(tls)
        .timeout(Some(TIMEOUT))
        .hello_name(ClientId::Domain(hello_name(cfg)));
    if let Some(user) = &cfg.username {
        b = b.credentials(Credentials::new(user.clone(), password.to_string()));
    }
    Ok(b.build())
}

/// The name the server greets with: the console's host.
fn hello_name(cfg: &MailConfig) -> String {
    url::Url::parse(&cfg.console_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into())
}

fn message(cfg: &MailConfig, m: &Outgoing) -> Result<Message, SendError> {
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|e| SendError::Settings(format!("from: {e}")))?;
    let to: Mailbox =
        m.to.parse()
            .map_err(|e| SendError::Settings(format!("to: {e}")))?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(m.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(m.body.clone())
        .map_err(|e| SendError::Settings(e.to_string()))
}

/// Sends `m` with the school's settings and password.
pub async fn send(cfg: &MailConfig, password: &str, m: &Outgoing) -> Result<(), SendError> {
    let msg = message(cfg, m)?;
    let t = transport(cfg, password)?;
    t.send(msg).await.map(|_| ()).map_err(classify)
}

/// Sorts a lettre error into a [`SendError`], by its kind and SMTP code,
/// and by the rustls error inside a failed handshake.
fn classify(e: lettre::transport::smtp::Error) -> SendError {
    let text = e.to_string();
    if let Some(code) = e.status() {
        let n = u16::from(code);
        return match n {
            // 535: authentication credentials invalid; 534/538: mechanism or
            // encryption needed for it.
            530 | 534 | 535 | 538 => SendError::Credentials(text),
            n if n >= 500 => SendError::Refused(text),
            _ => SendError::Deferred(text),
        };
    }
    if let Some(r) = rustls_error(&e) {
        if matches!(
            r,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        ) {
            return SendError::Certificate(r.to_string());
        }
    }
    if e.is_client() && text.contains("authentication") {
        // The server offers no mechanism we can use: a settings problem.
        return SendError::Settings(text);
    }
    SendError::Unreachable(text)
}

/// The rustls error somewhere in `e`'s chain of sources, if any.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}
