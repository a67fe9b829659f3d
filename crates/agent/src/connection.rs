use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lectern_proto::{
    AgentMsg, Auth, DeviceInfo, Hello, ServerMsg, AGENT_PATH, MAX_BINARY_FRAME, PROTOCOL_VERSION,
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

/// Opens a WebSocket to `server` (`host:port`) at the agent path, trusting only
/// the certificate with fingerprint `pin`.
pub async fn connect(server: &str, pin: &str) -> anyhow::Result<AgentStream> {
    let config = pinned_client_config(pin)?;
    let host = server.rsplit_once(':').map(|(h, _)| h).unwrap_or(server);
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let name = rustls::pki_types::ServerName::try_from(host)?;
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

/// Sends `hello` and waits for the server's answer: `Welcome` or an error.
pub(crate) async fn handshake(ws: &mut AgentStream, hello: Hello) -> anyhow::Result<ServerMsg> {
    ws.send(Message::text(AgentMsg::Hello(hello).encode()))
        .await?;
    let reply = tokio::time::timeout(CONNECT_TIMEOUT, ws.next())
        .await
        .map_err(|_| anyhow::anyhow!("server did not answer the hello"))?;
    match reply {
        Some(Ok(Message::Text(t))) => match ServerMsg::decode(&t)? {
            ServerMsg::Error { code, message } => {
                anyhow::bail!("server refused: {code:?}: {message}")
            }
            m @ ServerMsg::Welcome { .. } => Ok(m),
            other => anyhow::bail!("expected welcome, got {other:?}"),
        },
        Some(Ok(other)) => anyhow::bail!("expected welcome, got {other:?}"),
        Some(Err(e)) => Err(e.into()),
        None => anyhow::bail!("server closed the connection during the hello"),
    }
}

/// Enrolls this device with an enrollment token and returns the credential to
/// store. Fails if the certificate does not match `pin` or the token is refused.
pub async fn enroll(
    server: &str,
    pin: &str,
    token: &str,
    info: &DeviceInfo,
) -> anyhow::Result<StoredCredential> {
    let pin = crate::tls::normalize_fingerprint(pin)?;
    let mut ws = connect(server, &pin).await?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        auth: Auth::Enroll {
            token: token.to_string(),
        },
        info: info.clone(),
        capabilities: Vec::new(),
        state: Default::default(),
    };
    let welcome = handshake(&mut ws, hello).await?;
    let _ = ws.close(None).await;
    match welcome {
        ServerMsg::Welcome {
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
