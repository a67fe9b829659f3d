//! A throwaway `nats-server` on a loopback port, with a password, that a
//! test starts, kills and restarts.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lectern_bus::{Bus, NatsConfig};

pub const USER: &str = "lectern-node";
pub const PASSWORD: &str = "a-long-cluster-password";

/// A throwaway `nats-server` on a loopback port.
pub struct Nats {
    child: Child,
    pub port: u16,
    conf: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Nats {
    pub fn start(max_payload: Option<usize>) -> Nats {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("nats.conf");
        let mut text = format!(
            "listen: 127.0.0.1:{port}\nauthorization {{\n  user: {USER}\n  password: {PASSWORD}\n}}\n"
        );
        if let Some(max) = max_payload {
            text.push_str(&format!("max_payload: {max}\n"));
        }
        std::fs::write(&conf, text).unwrap();
        let child = spawn(&conf);
        wait_listening(port);
        Nats {
            child,
            port,
            conf,
            _dir: dir,
        }
    }

    pub fn config(&self) -> NatsConfig {
        NatsConfig {
            servers: vec![format!("nats://127.0.0.1:{}", self.port)],
            user: Some((USER.into(), PASSWORD.into())),
            ca_file: None,
            name: Some("test".into()),
        }
    }

    pub async fn bus(&self) -> Bus {
        Bus::connect(&self.config()).await.unwrap()
    }

    /// Kills the server (as `kill -9` would) and starts it again on the
    /// same port after `down`.
    pub async fn restart(&mut self, down: Duration) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        tokio::time::sleep(down).await;
        self.child = spawn(&self.conf);
        wait_listening(self.port);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nats-server`: on the PATH, or where Debian puts it (`/usr/sbin`, which
/// a user's PATH may leave out).
fn nats_server() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| "nats-server".into())
}

fn spawn(conf: &Path) -> Child {
    Command::new(nats_server())
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server is not installed (scripts/test-all.sh installs it: apt-get install nats-server)")
}

fn wait_listening(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nats-server did not listen on {port}");
}

/// Waits (up to 10 s) until `f` holds; panics saying `what` did not.
pub async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} within 10 s");
}
