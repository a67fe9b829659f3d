use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lectern_proto::{
    AgentMsg, Auth, Credential, DeviceInfo, ErrorCode, EvidenceAllowance, Hello, ServerMsg,
    AGENT_PATH, MAX_BINARY_FRAME, PROTOCOL_VERSION,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::tls::pinned_client_config;
use crate::StoredCredential;

/// An agent's WebSocket over pinned TLS.
pub type AgentStream = WebSocketStream<TlsStream<TcpStream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a WebSocket to `server` at the agent path, trusting only the
/// certificate with fingerprint `pin`. `server` is `host:port`, or several
/// separated by commas: a cluster's gateways, tried in turn from a random
/// one (so that a fleet spreads over them, and finds the others when one
/// dies), each for at most ten seconds, until one answers. (A host name
/// with several addresses has each of them tried too.)
pub async fn connect(server: &str, pin: &str) -> anyhow::Result<AgentStream> {
    let all = server_addresses(server);
    anyhow::ensure!(!all.is_empty(), "no server address in {server:?}");
    let start = rand::random_range(0..all.len());
    let mut failed = Vec::new();
    for i in 0..all.len() {
        let one = all[(start + i) % all.len()];
        match connect_one(one, pin).await {
            Ok(ws) => return Ok(ws),
            Err(e) => failed.push(format!("{one}: {e:#}")),
        }
    }
    Err(anyhow::anyhow!("{}", failed.join("; ")))
}

/// The `host:port` addresses of a server setting: one, or a cluster's
/// gateways separated by commas.
pub fn server_addresses(server: &str) -> Vec<&str> {
    server
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The host of a `host:port` address (an IPv6 address without its
/// brackets).
pub fn server_host(address: &str) -> &str {
    address
        .rsplit_once(':')
        .map_or(address, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']')
}

/// [`connect`] to one `host:port`.
async fn connect_one(server: &str, pin: &str) -> anyhow::Result<AgentStream> {
    let config = pinned_client_config(pin)?;
    let name = rustls::pki_types::ServerName::try_from(server_host(server).to_string())?;
    let fut = async {
        let tcp = TcpStream::connect(server).await?;
        tcp.set_nodelay(true)?;
        let tls = TlsConnector::from(config).connect(name, tcp).await?;
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(8 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_BINARY_FRAME))
            .max_frame_size(Some(MAX_BINARY_FRAME));
        let url = format!("wss://{server}{AGENT_PATH}");
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, tls, Some(ws_config)).await?;
        anyhow::Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, fut)
        .await
        .map_err(|_| anyhow::anyhow!("timed out connecting to {server}"))?
}

/// Why a hello did not open a session.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The server answered with [`ServerMsg::Error`]: it refuses this device
    /// (or token) for a reason the agent acts on by its code.
    #[error("server refused: {code:?}: {message}")]
    Refused {
        /// Machine-readable reason.
        code: ErrorCode,
        /// What the server said.
        message: String,
    },
    /// Anything else: network, TLS, timeout, an unexpected frame.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// The server's welcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// School name.
    pub school: String,
    /// Present only right after enrollment.
    pub credential: Option<Credential>,
    /// Seconds between heartbeats.
    pub heartbeat_secs: u32,
    /// Evidence the server accepts for a violation the agent reports itself.
    pub evidence: Option<EvidenceAllowance>,
}

/// Reads the server's answer to a hello: a welcome, or a typed refusal.
pub(crate) fn welcome_of(reply: ServerMsg) -> Result<Welcome, HandshakeError> {
    match reply {
        ServerMsg::Error { code, message } => Err(HandshakeError::Refused { code, message }),
        ServerMsg::Welcome {
            school,
            credential,
            heartbeat_secs,
            evidence,
            ..
        } => Ok(Welcome {
            school,
            credential,
            heartbeat_secs,
            evidence,
        }),
        other => Err(anyhow::anyhow!("expected welcome, got {other:?}").into()),
    }
}

/// Sends `hello` and waits for the server's answer: `Welcome` or an error.
pub(crate) async fn handshake(
    ws: &mut AgentStream,
    hello: Hello,
) -> Result<Welcome, HandshakeError> {
    ws.send(Message::text(AgentMsg::Hello(hello).encode()))
        .await
        .map_err(anyhow::Error::from)?;
    let reply = tokio::time::timeout(CONNECT_TIMEOUT, ws.next())
        .await
        .map_err(|_| anyhow::anyhow!("server did not answer the hello"))?;
    match reply {
        Some(Ok(Message::Text(t))) => {
            welcome_of(ServerMsg::decode(&t).map_err(anyhow::Error::from)?)
        }
        Some(Ok(other)) => Err(anyhow::anyhow!("expected welcome, got {other:?}").into()),
        Some(Err(e)) => Err(anyhow::Error::from(e).into()),
        None => Err(anyhow::anyhow!("server closed the connection during the hello").into()),
    }
}

/// What a new device registers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// An enrollment token made by an admin (counted uses, an expiry).
    Token(String),
    /// The school's code (see `lectern_proto::schoolcode`).
    SchoolCode(String),
}

impl Registration {
    /// What it is, for log lines.
    pub fn what(&self) -> &'static str {
        match self {
            Registration::Token(_) => "enrollment token",
            Registration::SchoolCode(_) => "school code",
        }
    }

    fn auth(&self) -> Auth {
        match self {
            Registration::Token(token) => Auth::Enroll {
                token: token.clone(),
            },
            Registration::SchoolCode(code) => Auth::SchoolCode { code: code.clone() },
        }
    }
}

/// Enrolls this device with an enrollment token and returns the credential
/// to store ([`register`] with [`Registration::Token`]).
pub async fn enroll(
    server: &str,
    pin: &str,
    token: &str,
    info: &DeviceInfo,
) -> anyhow::Result<StoredCredential> {
    register(server, pin, &Registration::Token(token.to_string()), info).await
}

/// Enrolls this device with an enrollment token or school code and returns
/// the credential to store. Fails if the certificate does not match `pin` or
/// the server refuses.
pub async fn register(
    server: &str,
    pin: &str,
    how: &Registration,
    info: &DeviceInfo,
) -> anyhow::Result<StoredCredential> {
    let pin = crate::tls::normalize_fingerprint(pin)?;
    let mut ws = connect(server, &pin).await?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        auth: how.auth(),
        info: info.clone(),
        capabilities: Vec::new(),
        state: Default::default(),
    };
    let welcome = handshake(&mut ws, hello).await?;
    let _ = ws.close(None).await;
    match welcome {
        Welcome {
            school,
            credential: Some(c),
            ..
        } => Ok(StoredCredential {
            server: server.to_string(),
            fingerprint: pin,
            school,
            device_id: c.device_id,
            secret: c.secret,
        }),
        _ => anyhow::bail!("server accepted enrollment but sent no credential"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_server_setting_lists_its_gateways_and_their_hosts() {
        let all = super::server_addresses(" gw1.school:30016, [fd00::2]:30016 ,,10.0.0.3:1 ");
        assert_eq!(all, ["gw1.school:30016", "[fd00::2]:30016", "10.0.0.3:1"]);
        let hosts: Vec<&str> = all.iter().map(|a| super::server_host(a)).collect();
        assert_eq!(hosts, ["gw1.school", "fd00::2", "10.0.0.3"]);
        assert!(super::server_addresses(" , ").is_empty());
    }

    use super::*;

    #[test]
    fn a_refusal_keeps_its_code_whatever_the_text_says() {
        // The message mentions another code; only the typed code counts.
        let reply = ServerMsg::Error {
            code: ErrorCode::Internal,
            message: "Revoked Unauthorized: the store failed".into(),
        };
        match welcome_of(reply) {
            Err(HandshakeError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Internal),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let reply = ServerMsg::Error {
            code: ErrorCode::Revoked,
            message: String::new(),
        };
        assert!(matches!(
            welcome_of(reply),
            Err(HandshakeError::Refused {
                code: ErrorCode::Revoked,
                ..
            })
        ));
    }

    #[test]
    fn a_welcome_carries_the_evidence_allowance() {
        let allowance = EvidenceAllowance {
            max_frames: 5,
            max_frame_bytes: 1000,
        };
        let w = welcome_of(ServerMsg::Welcome {
            device_id: 1,
            school: "Hill".into(),
            credential: None,
            heartbeat_secs: 15,
            evidence: Some(allowance),
        })
        .unwrap();
        assert_eq!(w.evidence, Some(allowance));
        assert!(matches!(
            welcome_of(ServerMsg::StopThumbnails),
            Err(HandshakeError::Failed(_))
        ));
    }
}
