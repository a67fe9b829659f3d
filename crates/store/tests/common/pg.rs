//! A throwaway PostgreSQL cluster for a test: `initdb` in a temporary
//! folder, the server on a free loopback port (and its socket in the same
//! folder), trust authentication (nothing but loopback reaches it), stopped
//! and removed when dropped. Run as the `postgres` account when the test
//! runs as root, as PostgreSQL refuses root.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

/// PostgreSQL's programs: `LECTERN_PG_BIN`, or the newest Debian install.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LECTERN_PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (scripts/test-all.sh installs it: apt-get install postgresql)")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().expect("no initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

impl Pg {
    pub fn start() -> Pg {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let st = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = Pg { dir, bin, port };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "--auth=trust",
                "-U",
                "lectern",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-k {} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off",
            pg.dir.path().display()
        );
        let log = pg.dir.path().join("log").display().to_string();
        pg.run(
            "pg_ctl",
            &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"],
        );
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let out = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        }
        .unwrap();
        assert!(
            out.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A new, empty database and a client connected to it.
    pub fn database(&self, name: &str) -> postgres::Client {
        let mut admin = self.connect("postgres");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        self.connect(name)
    }

    pub fn connect(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(
            &format!("host=127.0.0.1 port={} user=lectern dbname={db}", self.port),
            postgres::NoTls,
        )
        .unwrap()
    }

    /// Connection parameters for database `db`, as `PgStore::connect` takes them.
    #[allow(dead_code)]
    pub fn params(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} user=lectern dbname={db}", self.port)
    }

    /// A new, empty database "lectern", a `PgStore` on it (which makes its
    /// tables) and a raw client to it.
    #[allow(dead_code)]
    pub fn store(&self) -> (lectern_store::PgStore, postgres::Client) {
        drop(self.database("lectern"));
        let store = lectern_store::PgStore::connect(&self.params("lectern")).unwrap();
        (store, self.connect("lectern"))
    }

    /// Stops the server at once, as a crash would, and starts it again.
    #[allow(dead_code)]
    pub fn restart(&self) {
        let (data, log) = (
            self.data(),
            self.dir.path().join("log").display().to_string(),
        );
        self.run(
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-l", &log, "-w", "restart"],
        );
    }

    #[allow(dead_code)]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Moves `tables`' identity sequences past the rows put in with their ids,
/// as a restore into PostgreSQL would.
#[allow(dead_code)]
pub fn move_sequences_on(raw: &mut postgres::Client, tables: &[&str]) {
    for table in tables {
        raw.batch_execute(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        ))
        .unwrap();
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let data = self.data();
        let path = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            Command::new(&path).args(args).output()
        };
    }
}
