//! A console watching one device, for scripts/test-windows-agent.sh: opens
//! the console stream (`/api/v1/stream`, TLS pinned to the server's
//! fingerprint), sends `{"watch":[DEVICE]}`, waits for that device's next
//! thumbnail (binary frame: `1`, the device id as u64 big-endian, a JPEG),
//! decodes it and prints `WIDTHxHEIGHT share=S`, where S is the share of its
//! pixels within 24 of RGB (each channel).
//!
//! `watch_thumbnail ADDR FINGERPRINT BEARER DEVICE R,G,B [SECONDS]`

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, fingerprint, bearer, device, rgb, rest @ ..] = &args[..] else {
        anyhow::bail!("usage: watch_thumbnail ADDR FINGERPRINT BEARER DEVICE R,G,B [SECONDS]");
    };
    let device: u64 = device.parse()?;
    let rgb: Vec<u8> = rgb.split(',').map(str::parse).collect::<Result<_, _>>()?;
    anyhow::ensure!(rgb.len() == 3, "R,G,B");
    let secs: u64 = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(60);

    let tls = lectern_agent::tls::pinned_client_config(fingerprint)?;
    let tcp = tokio::net::TcpStream::connect(addr.as_str()).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    let mut req = format!("wss://{addr}/api/v1/stream").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {bearer}").parse()?);
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await?;
    ws.send(Message::text(format!("{{\"watch\":[{device}]}}")))
        .await?;
    let jpeg = tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some(msg) = ws.next().await {
            if let Message::Binary(b) = msg? {
                if b.len() > 9 && b[0] == 1 && b[1..9] == device.to_be_bytes() {
                    return Ok(b[9..].to_vec());
                }
            }
        }
        anyhow::bail!("the stream ended")
    })
    .await
    .map_err(|_| anyhow::anyhow!("no thumbnail of device {device} within {secs} s"))??;
    let mut dec = jpeg_decoder::Decoder::new(&jpeg[..]);
    let px = dec.decode()?;
    let info = dec.info().ok_or_else(|| anyhow::anyhow!("no JPEG info"))?;
    let near = px
        .chunks_exact(3)
        .filter(|p| p.iter().zip(&rgb).all(|(a, b)| a.abs_diff(*b) <= 24))
        .count();
    let share = near as f64 / (px.len() / 3).max(1) as f64;
    println!("{}x{} share={share:.3}", info.width, info.height);
    Ok(())
}
