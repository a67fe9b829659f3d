//! The binaries as an admin uses them: `lectern-server init/token/serve` and
//! `lectern-agent enroll/run`, as real processes.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = env!("CARGO_BIN_EXE_lectern-server");

/// The agent binary, rebuilt if stale (`cargo test -p lectern-server` alone
/// does not build it, and an older binary would be tested instead).
fn agent_bin() -> PathBuf {
    common::agent_bin()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn init_serve_enroll_and_run_with_the_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");

    let out = run(Command::new(SERVER)
        .args(["init", "--school", "CLI School", "--listen", &addr])
        .arg("--data-dir")
        .arg(&data));
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("Admin password: "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("Certificate SHA-256 fingerprint (agents pin this): "))
        .unwrap()
        .to_string();
    assert_eq!(fingerprint.len(), 64);
    assert_eq!(
        std::fs::metadata(data.join("key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // A second init must not clobber the school.
    let again = Command::new(SERVER)
        .args(["init", "--school", "Other"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialized"));
    assert_eq!(
        run(Command::new(SERVER)
            .arg("fingerprint")
            .arg("--data-dir")
            .arg(&data))
        .trim(),
        fingerprint
    );

    let token = run(Command::new(SERVER)
        .args(["token", "create", "--uses", "1"])
        .arg("--data-dir")
        .arg(&data))
    .trim()
    .to_string();
    assert!(
        token.starts_with("lct_"),
        "printed tokens never begin with '-': {token}"
    );
    assert!(password.starts_with("lcp_"), "{password}");
    let mut server = Kill(
        Command::new(SERVER)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains(&format!("https://{addr}/")), "{line}");

    let state = tmp.path().join("agent");
    let enrolled = run(Command::new(agent_bin())
        .args([
            "enroll",
            "--server",
            &addr,
            "--token",
            &token,
            "--hostname",
            "CLI-PC01",
            "--fingerprint",
        ])
        .arg(&fingerprint)
        .arg("--state-dir")
        .arg(&state));
    assert!(enrolled.contains("enrolled CLI-PC01"), "{enrolled}");
    let cred = state.join("credential.json");
    assert_eq!(
        std::fs::metadata(&cred).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The token had one use.
    let reuse = Command::new(agent_bin())
        .args([
            "enroll",
            "--server",
            &addr,
            "--token",
            &token,
            "--fingerprint",
            &fingerprint,
        ])
        .arg("--state-dir")
        .arg(tmp.path().join("other"))
        .output()
        .unwrap();
    assert!(!reuse.status.success());
    assert!(String::from_utf8_lossy(&reuse.stderr).contains("BadToken"));

    let _agent = Kill(
        Command::new(agent_bin())
            .args(["run", "--user", "amy", "--hostname", "CLI-PC01"])
            .arg("--state-dir")
            .arg(&state)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let tls = lectern_agent::tls::pinned_client_config(&fingerprint).unwrap();
        let c = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .build()
            .unwrap();
        let login: serde_json::Value = c
            .post(format!("https://{addr}/api/v1/session"))
            .json(&serde_json::json!({"username": "admin", "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let bearer = login["token"].as_str().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let devices: serde_json::Value = c
                .get(format!("https://{addr}/api/v1/devices"))
                .bearer_auth(&bearer)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let d = &devices[0];
            if d["online"] == true {
                assert_eq!(d["hostname"], "CLI-PC01");
                assert_eq!(d["state"]["user"], "amy");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "agent never came online: {devices}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    // SIGTERM stops the server cleanly.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
}

/// Tokens issued before the `lct_` prefix are URL-safe base64 and may begin
/// with `-`; such a token still enrolls when pasted after `--token`, and a
/// hyphen-leading password is accepted by `init --password`.
#[test]
fn enrolls_with_a_token_beginning_with_a_hyphen() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let addr = format!("127.0.0.1:{}", free_port());
    let out = run(Command::new(SERVER)
        .args(["init", "--school", "Hyphen School", "--listen", &addr])
        .args(["--password", "-starts-with-a-hyphen"])
        .arg("--data-dir")
        .arg(&data));
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("Certificate SHA-256 fingerprint (agents pin this): "))
        .unwrap()
        .to_string();
    let old_token = "-E-PyXk3v9Qw2Lr7Zt0Hn5Bc8Md1Fa4Gs6Jy3Ue0Wq";
    {
        let store = lectern_store::SqliteStore::open(&data.join("lectern.db")).unwrap();
        use lectern_store::Store;
        let school = store.first_school().unwrap().unwrap();
        store
            .import_enrollment_token(
                school.id,
                old_token,
                "old",
                1,
                lectern_store::now_ms() + 3_600_000,
                "test",
            )
            .unwrap();
    }
    let mut server = Kill(
        Command::new(SERVER)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let enrolled = run(Command::new(agent_bin())
        .args(["enroll", "--server", &addr, "--token", old_token])
        .args(["--hostname", "HYPHEN-PC", "--fingerprint", &fingerprint])
        .arg("--state-dir")
        .arg(tmp.path().join("agent")));
    assert!(enrolled.contains("enrolled HYPHEN-PC"), "{enrolled}");
}
