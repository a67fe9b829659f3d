//! `lectern-agent native-host`: the Chrome native-messaging host. The browser
//! starts it for the Lectern extension and talks JSON over stdio (each message
//! a little-endian u32 length and UTF-8 JSON); it relays to the agent service
//! over the service's local stream (Unix socket, named pipe). Both directions are size-limited and validated:
//! only messages the extension may send go to the service, and only messages
//! the service may send go to the extension.

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::ipc::{self, ExtMsg, Hello, MAX_EXTENSION_MESSAGE};

/// Reads one native-messaging frame's bytes; `None` at end of input.
fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_EXTENSION_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes is over the {MAX_EXTENSION_MESSAGE}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Reads one native-messaging message; `None` at end of input.
pub fn read_message(r: &mut impl Read) -> io::Result<Option<ExtMsg>> {
    let Some(buf) = read_frame(r)? else {
        return Ok(None);
    };
    serde_json::from_slice(&buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad message: {e}")))
}

/// Reads the next message the relay understands, skipping (and logging)
/// well-framed ones it does not, so a newer extension does not cut the link;
/// oversized or unframed input still ends it.
fn next_known(r: &mut impl Read) -> io::Result<Option<ExtMsg>> {
    while let Some(buf) = read_frame(r)? {
        match serde_json::from_slice(&buf) {
            Ok(msg) => return Ok(Some(msg)),
            Err(e) => tracing::warn!("skipping a message from the extension: {e}"),
        }
    }
    Ok(None)
}

/// Writes one native-messaging message.
pub fn write_message(w: &mut impl Write, msg: &ExtMsg) -> io::Result<()> {
    let json = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if json.len() > MAX_EXTENSION_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "message too large",
        ));
    }
    w.write_all(&(json.len() as u32).to_le_bytes())?;
    w.write_all(&json)?;
    w.flush()
}

/// Which extension started the host, from the browser's arguments (logged by
/// the service): Chrome and Edge pass its origin (`chrome-extension://<id>/`,
/// on Windows followed by `--parent-window=<n>`), Firefox the manifest's path
/// and then the extension's gecko id.
pub fn caller(args: &[String]) -> String {
    let chrome = args.iter().find(|a| a.starts_with("chrome-extension://"));
    let firefox = || args.get(1).or(args.first());
    chrome.or_else(firefox).cloned().unwrap_or_default()
}

/// Relays between the browser (stdin/stdout) and the service on `service`
/// (already checked by the platform to be the real service) until either
/// side hangs up. Stdin is read on a thread of its own: a blocking read of
/// it cannot be cancelled, and must not keep the process from ending when
/// the service goes away.
pub async fn relay<T>(service: T, origin: &str) -> anyhow::Result<()>
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut from_service, mut to_service) = tokio::io::split(service);
    let hello = Hello::Extension {
        origin: origin.to_string(),
    };
    ipc::write_frame(&mut to_service, &hello, &[]).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ExtMsg>(ipc::OUTBOX);
    // Browser → service; the host ends when the browser closes stdin.
    let reading = std::thread::spawn(move || -> io::Result<()> {
        let mut stdin = io::stdin().lock();
        while let Some(msg) = next_known(&mut stdin)? {
            if !msg.from_extension() {
                tracing::warn!("dropping a message the extension may not send: {msg:?}");
                continue;
            }
            if tx.blocking_send(msg).is_err() {
                break;
            }
        }
        Ok(())
    });
    let upstream = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            ipc::write_frame(&mut to_service, &msg, &[]).await?;
        }
        to_service.shutdown().await
    });
    let stdout = io::stdout();
    while let Ok((msg, _)) = ipc::read_frame::<ExtMsg, _>(&mut from_service).await {
        if msg.from_extension() {
            tracing::warn!("dropping a message only the extension sends");
            continue;
        }
        if write_message(&mut stdout.lock(), &msg).is_err() {
            break;
        }
    }
    if reading.is_finished() {
        reading
            .join()
            .map_err(|_| anyhow::anyhow!("relay thread panicked"))??;
    }
    upstream.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_is_the_extension_in_every_browser() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let chrome = "chrome-extension://fjidkjddendcfbjfghhdjlahgpcbiaek/";
        assert_eq!(caller(&args(&[chrome])), chrome);
        assert_eq!(caller(&args(&[chrome, "--parent-window=0"])), chrome);
        let manifest = "/usr/lib/mozilla/native-messaging-hosts/org.lectern.agent.json";
        assert_eq!(
            caller(&args(&[manifest, "lectern@lectern-classroom.org"])),
            "lectern@lectern-classroom.org"
        );
        assert_eq!(caller(&[]), "");
    }

    #[test]
    fn messages_round_trip_in_chrome_framing() {
        let mut buf = Vec::new();
        write_message(&mut buf, &ExtMsg::CloseTab { tab_id: 4 }).unwrap();
        assert_eq!(&buf[..4], &(buf.len() as u32 - 4).to_le_bytes());
        let got = read_message(&mut &buf[..]).unwrap();
        assert_eq!(got, Some(ExtMsg::CloseTab { tab_id: 4 }));
        assert_eq!(read_message(&mut &[][..]).unwrap(), None);
    }

    #[test]
    fn oversized_and_malformed_messages_are_errors() {
        let big = (MAX_EXTENSION_MESSAGE as u32 + 1).to_le_bytes();
        let e = read_message(&mut &big[..]).unwrap_err();
        assert!(e.to_string().contains("limit"), "{e}");
        let mut bad = 5u32.to_le_bytes().to_vec();
        bad.extend_from_slice(b"{nope");
        assert!(read_message(&mut &bad[..]).is_err());
        let mut unknown = Vec::new();
        let j = br#"{"type":"format_disk"}"#;
        unknown.extend_from_slice(&(j.len() as u32).to_le_bytes());
        unknown.extend_from_slice(j);
        assert!(read_message(&mut &unknown[..]).is_err());
    }

    #[test]
    fn unknown_messages_are_skipped_not_fatal() {
        let mut input = Vec::new();
        for j in [
            &br#"{"type":"from_the_future","x":1}"#[..],
            br#"{"type":"heartbeat"}"#,
        ] {
            input.extend_from_slice(&(j.len() as u32).to_le_bytes());
            input.extend_from_slice(j);
        }
        assert_eq!(
            next_known(&mut &input[..]).unwrap(),
            Some(ExtMsg::Heartbeat)
        );
    }

    #[test]
    fn only_the_extension_sends_tabs_and_only_the_agent_sends_policy() {
        assert!(ExtMsg::Heartbeat.from_extension());
        assert!(ExtMsg::Tabs { tabs: vec![] }.from_extension());
        let typed = ExtMsg::Typed {
            text: "hi".into(),
            url: None,
            at: 1,
        };
        assert!(typed.from_extension(), "typed text goes to the agent");
        assert!(!ExtMsg::GetTabs.from_extension());
        assert!(!ExtMsg::CloseTab { tab_id: 1 }.from_extension());
    }
}
