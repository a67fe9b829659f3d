//! Logging to journald: under systemd (`JOURNAL_STREAM` set) the agent sends
//! native journal records with its syslog identifier. This machine runs no
//! journald, so the test binds the journal's socket itself and reads what the
//! agent sends; it leaves a real journald's socket alone.
//! (Linux only: journald is the Linux service's log.)
#![cfg(target_os = "linux")]

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SOCKET: &str = "/run/systemd/journal/socket";

#[test]
fn service_logs_to_the_journal_with_its_identifier() {
    if Path::new(SOCKET).exists() {
        eprintln!("SKIP: a journald is running here; not taking over its socket");
        return;
    }
    if std::fs::create_dir_all("/run/systemd/journal").is_err() {
        eprintln!("SKIP: cannot create /run/systemd/journal (not root)");
        return;
    }
    let sock = UnixDatagram::bind(SOCKET).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "token_file = {:?}\nstate_dir = {:?}\nsocket = {:?}\nbackend = \"headless\"\nsessions = \"static\"\n",
            dir.path().join("missing-token"),
            dir.path().join("state"),
            dir.path().join("agent.sock"),
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lectern-agent"))
        .args(["service", "--config"])
        .arg(&cfg)
        .env("JOURNAL_STREAM", "8:1234")
        .env_remove("LECTERN_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut records = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = sock.recv(&mut buf) {
        let rec = fields(&buf[..n]);
        let done = field(&rec, "MESSAGE").contains("enrollment token");
        records.push(rec);
        if done {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(sock);
    let _ = std::fs::remove_file(SOCKET);
    let records: Vec<_> = records.into_iter().filter(|r| !r.is_empty()).collect();
    assert!(!records.is_empty(), "no journal records");
    for r in &records {
        assert_eq!(field(r, "SYSLOG_IDENTIFIER"), "lectern-agent", "{r:?}");
    }
    assert!(
        records
            .iter()
            .any(|r| field(r, "MESSAGE") == "agent service started" && field(r, "PRIORITY") == "5"),
        "{records:?}"
    );
    assert!(
        records.iter().any(
            |r| field(r, "MESSAGE").contains("enrollment token") && field(r, "PRIORITY") == "3"
        ),
        "the enrollment failure is logged as an error: {records:?}"
    );
}

/// The fields of one record in journald's native protocol: `KEY=value\n`, or
/// `KEY\n` + little-endian u64 length + value + `\n` for values that may hold
/// newlines.
fn fields(mut b: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while let Some(nl) = b.iter().position(|&c| c == b'\n') {
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|&c| c == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            b = &b[nl + 1..];
        } else {
            let rest = &b[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.push((
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            ));
            b = &rest[8 + len + 1..];
        }
    }
    out
}

fn field<'a>(rec: &'a [(String, String)], key: &str) -> &'a str {
    rec.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}
