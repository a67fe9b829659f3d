//! Discovery on Windows, run under Wine (`cargo test --target
//! x86_64-pc-windows-gnu -p lectern-agent --test windows_discovery`):
//!
//! - DNS-SD's name servers come from the system (`GetAdaptersAddresses`, which
//!   Wine fills from the host's resolv.conf) when no
//!   `%ProgramData%\Lectern\resolv.conf` exists;
//! - the broadcast finds a real `lectern-server`, both sent to it on loopback
//!   and through this machine's own interfaces' directed broadcast addresses;
//! - `lectern-agent discover` reads the fixed-address file from
//!   `%ProgramData%\Lectern\server`.
//!
//! The server is the Linux `lectern-server` binary (build it first with
//! `cargo build -p lectern-server`; `LECTERN_SERVER_BIN` names another):
//! Wine starts Unix programs through `CreateProcess`, so a Windows test can run
//! it through `Z:\bin\sh`. Its output goes to files, which the test reads.
#![cfg(windows)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lectern_agent::discovery::default_broadcast_targets;
use lectern_agent::platform::{self, SYSTEM_DNS_SOURCE};
use lectern_agent::{discover, DiscoveryOptions, Method};

const PASSWORD: &str = "correct horse battery";

/// `C:\…` or `Z:\…` as the Linux side sees it: only Z: (the host's root) maps.
fn unix_path(p: &Path) -> String {
    let s = p.to_str().unwrap();
    let rest = s
        .strip_prefix("Z:")
        .or_else(|| s.strip_prefix("z:"))
        .unwrap_or_else(|| panic!("{s} is not on Wine's Z: drive"));
    rest.replace('\\', "/")
}

/// The Linux server binary, as a Linux path.
fn server_bin() -> String {
    std::env::var("LECTERN_SERVER_BIN").unwrap_or_else(|_| {
        let manifest = env!("CARGO_MANIFEST_DIR").replace('\\', "/");
        format!("{manifest}/../../target/debug/lectern-server")
    })
}

/// A scratch directory the Linux side can reach (under Z:\tmp).
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("lectern-windisc-")
        .tempdir_in(r"Z:\tmp")
        .expect("Z:\\tmp (the host's /tmp) must be reachable: run under Wine")
}

/// A free TCP port on loopback (the server takes the same UDP port).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real `lectern-server serve` (the Linux binary), stopped on drop.
struct RealServer {
    dir: tempfile::TempDir,
    port: u16,
    fingerprint: String,
}

impl RealServer {
    /// Initializes a data directory and serves it on `ip:port`; returns once
    /// HTTPS and the discovery responder are both listening.
    fn start(ip: &str) -> RealServer {
        let bin = server_bin();
        assert!(
            Path::new(&format!("Z:{}", bin.replace('/', "\\"))).exists(),
            "{bin} not found: build it with `cargo build -p lectern-server` \
             (or set LECTERN_SERVER_BIN)"
        );
        let dir = scratch();
        let port = free_port();
        let d = unix_path(dir.path());
        // One script, so that no argument needs Windows-to-Unix quoting.
        let script = format!(
            "set -e\n\
             '{bin}' init --school 'Wine School' --password '{PASSWORD}' --data-dir '{d}/data' >'{d}/init.out' 2>&1\n\
             echo $$ >'{d}/pid'\n\
             exec '{bin}' serve --listen {ip}:{port} --data-dir '{d}/data' >'{d}/serve.out' 2>&1\n"
        );
        std::fs::write(dir.path().join("run.sh"), script).unwrap();
        // Wine hands back no waitable handle for a Unix process (waiting
        // fails with "invalid handle"): the script's pid file and the Unix
        // `kill` stop it instead (Drop).
        #[allow(clippy::zombie_processes)]
        Command::new(r"Z:\bin\sh")
            .arg(format!("{d}/run.sh"))
            .spawn()
            .expect("Wine runs Unix programs through CreateProcess");
        let listening = format!("https://{ip}:{port}/");
        wait_for(dir.path(), "serve.out", |t| t.contains(&listening));
        let init = wait_for(dir.path(), "init.out", |t| t.contains("fingerprint"));
        let fingerprint = init
            .lines()
            .find_map(|l| l.strip_prefix("Certificate SHA-256 fingerprint (agents pin this): "))
            .unwrap_or_else(|| panic!("no fingerprint in {init}"))
            .trim()
            .to_string();
        RealServer {
            dir,
            port,
            fingerprint,
        }
    }
}

/// Waits (generously: Wine on a busy machine) until `file` in `dir`
/// satisfies `done`, and returns its text.
fn wait_for(dir: &Path, file: &str, done: impl Fn(&str) -> bool) -> String {
    let path = dir.join(file);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not get ready; {file}: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        // Errors are ignored: a drop must not panic.
        let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) else {
            return;
        };
        let pid = pid.trim();
        let _ = Command::new(r"Z:\bin\kill").args(["-TERM", pid]).status();
        // Gone from the host's /proc once it has exited.
        let proc = PathBuf::from(format!(r"Z:\proc\{pid}\cmdline"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&proc).is_ok_and(|c| !c.is_empty()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Options that look nowhere but where the test says.
fn options(methods: &[Method]) -> DiscoveryOptions {
    DiscoveryOptions {
        methods: methods.to_vec(),
        server_file: r"C:\nonexistent\server".into(),
        resolv_conf: r"C:\nonexistent\resolv.conf".into(),
        system_dns: false,
        step_timeout: Duration::from_secs(3),
        verify_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

#[test]
fn dns_settings_come_from_the_system_without_a_resolv_conf() {
    let default = platform::resolv_conf();
    assert!(
        default.ends_with(r"Lectern\resolv.conf"),
        "{}",
        default.display()
    );
    let missing = Path::new(r"C:\nonexistent\resolv.conf");
    let got = platform::resolver_config(missing, true).unwrap();
    println!("system DNS settings: {got:?}");
    assert_eq!(got.source, SYSTEM_DNS_SOURCE);
    assert!(
        !got.conf.nameservers.is_empty(),
        "no name server from GetAdaptersAddresses: {got:?}"
    );
    // Wine reports the host's resolv.conf name servers: each usable one is there.
    if let Ok(host) = std::fs::read_to_string(r"Z:\etc\resolv.conf") {
        let host = lectern_agent::discovery::ResolvConf::parse(&host);
        for ip in host.nameservers.iter().filter(|ip| !ip.is_unspecified()) {
            assert!(
                got.conf.nameservers.contains(ip),
                "{ip} (host) missing from {got:?}"
            );
        }
    }
    // The search list comes from the registry (set here through reg.exe,
    // then removed again; a machine that has one of its own is left alone).
    const KEY: &str = r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters";
    let reg = |args: &[&str]| {
        let mut cmd = Command::new("reg");
        cmd.args(args);
        run_to_file(cmd)
    };
    assert!(
        !reg(&["query", KEY, "/v", "SearchList"]).0.success(),
        "this machine has a SearchList of its own: not touching it"
    );
    let set = reg(&[
        "add",
        KEY,
        "/v",
        "SearchList",
        "/t",
        "REG_SZ",
        "/d",
        "school.example,lab.school.example",
        "/f",
    ]);
    assert!(set.0.success(), "{set:?}");
    let with_list = platform::resolver_config(missing, true);
    reg(&["delete", KEY, "/v", "SearchList", "/f"]);
    let with_list = with_list.unwrap();
    assert_eq!(
        with_list.conf.search,
        ["school.example", "lab.school.example"]
    );
    assert_eq!(with_list.conf.nameservers, got.conf.nameservers);

    // Without the system, a missing file stays an error, as on Linux.
    assert!(platform::resolver_config(missing, false).is_err());
    // An administrator's file wins over the system.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resolv.conf");
    std::fs::write(&file, "nameserver 10.0.0.53\r\nsearch school.example\r\n").unwrap();
    let got = platform::resolver_config(&file, true).unwrap();
    assert_eq!(got.conf.nameservers, vec![IpAddr::from([10, 0, 0, 53])]);
    assert_eq!(got.conf.search, ["school.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_finds_a_real_server_on_loopback() {
    let server = tokio::task::spawn_blocking(|| RealServer::start("127.0.0.1"))
        .await
        .unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port));
    let mut o = options(&[Method::Broadcast]);
    o.broadcast_targets = vec![addr];
    let found = discover(&o).await.unwrap();
    assert_eq!(found.method, Method::Broadcast);
    assert_eq!(found.addr, addr.to_string());
    assert_eq!(
        found.fingerprint.as_deref(),
        Some(server.fingerprint.as_str())
    );

    // Pinned to it: the same; pinned to another: its answer is ignored.
    o.pin = Some(server.fingerprint.clone());
    assert_eq!(discover(&o).await.unwrap().addr, addr.to_string());
    o.pin = Some("ab".repeat(32));
    let e = discover(&o).await.unwrap_err().to_string();
    assert!(e.contains("does not match the pinned"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_a_real_server_through_the_interfaces() {
    // The directed broadcast of every IPv4 interface if-addrs sees on
    // Windows, then 255.255.255.255.
    let targets = default_broadcast_targets(30016);
    println!("broadcast targets: {targets:?}");
    assert_eq!(
        targets.last(),
        Some(&SocketAddr::from((Ipv4Addr::BROADCAST, 30016)))
    );
    let directed: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) if !v4.ip.is_loopback() && v4.prefixlen < 31 => Some(v4),
            _ => None,
        })
        .map(|v4| Ipv4Addr::from(u32::from(v4.ip) | !u32::from(v4.netmask)))
        .collect();
    assert!(
        !directed.is_empty(),
        "this machine has no broadcast-capable IPv4 interface: the test needs one"
    );
    for b in &directed {
        assert!(
            targets.contains(&SocketAddr::from((*b, 30016))),
            "{b} missing"
        );
    }

    // A server on every interface hears the real broadcast (SO_BROADCAST set
    // through Winsock) and answers from its interface address.
    let server = tokio::task::spawn_blocking(|| RealServer::start("0.0.0.0"))
        .await
        .unwrap();
    let mut o = options(&[Method::Broadcast]);
    o.port = server.port;
    let found = discover(&o).await.unwrap();
    println!("found through the interfaces: {found:?}");
    assert_eq!(found.method, Method::Broadcast);
    assert!(
        found.addr.ends_with(&format!(":{}", server.port)),
        "{found:?}"
    );
    assert_eq!(
        found.fingerprint.as_deref(),
        Some(server.fingerprint.as_str())
    );
}

/// Runs `cmd` with its output in a file and returns its status and output.
///
/// Not `Command::output()`: under Wine, the first program that needs the
/// desktop starts `explorer.exe /desktop`, which inherits that program's Unix
/// descriptors and keeps running. Started from a program whose stdout is a
/// pipe, it holds the pipe open, so `output()` never sees its end (this hung
/// CI for 45 minutes). A file has no end to wait for; the process handle is
/// waited on, with a deadline.
fn run_to_file(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(out.reopen().unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{cmd:?} did not end within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = String::from_utf8_lossy(&std::fs::read(out.path()).unwrap()).into_owned();
    (status, text)
}

/// `lectern-agent discover ARGS` with `%ProgramData%` at `program_data`.
fn agent_discover(program_data: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern-agent"));
    cmd.arg("discover")
        .args(args)
        .env("ProgramData", program_data);
    let (_, text) = run_to_file(cmd);
    println!("{text}");
    text
}

#[test]
fn the_agent_reads_the_server_file_under_program_data() {
    let server = RealServer::start("127.0.0.1");
    let program_data = tempfile::tempdir().unwrap();
    let lectern: PathBuf = program_data.path().join("Lectern");
    let file = lectern.join("server");

    let out = agent_discover(program_data.path(), &["--methods", "file"]);
    assert!(
        out.contains(&format!("file: {}: no such file", file.display())),
        "{out}"
    );

    std::fs::create_dir_all(&lectern).unwrap();
    std::fs::write(
        &file,
        format!("# the school's server\r\n127.0.0.1:{}\r\n", server.port),
    )
    .unwrap();
    let out = agent_discover(program_data.path(), &["--methods", "file"]);
    let addr = format!("127.0.0.1:{}", server.port);
    assert!(
        out.contains(&format!(
            "file: {addr}: TLS verified, certificate {}",
            server.fingerprint
        )),
        "{out}"
    );
    assert!(out.contains(&format!("found {addr} via file")), "{out}");
}

/// DNS-SD against a name server address where nothing listens must end with
/// a note within its step timeout. Under Wine a connected UDP socket to a
/// closed port left the multi-threaded runtime spinning for good, so the
/// step runs on its own runtime in its own thread, watched from outside.
#[test]
fn dns_sd_with_a_closed_name_server_port_ends() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resolv.conf");
    std::fs::write(&file, "nameserver 127.0.0.1\nsearch admin.example\n").unwrap();
    let mut o = options(&[Method::DnsSd]);
    o.resolv_conf = file;
    o.dns_port = free_port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let _ = tx.send(rt.block_on(discover(&o)).map_err(|e| e.to_string()));
    });
    let e = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("DNS-SD did not end: the runtime is stuck")
        .unwrap_err();
    assert!(
        e.contains("dns-sd: _lectern._tcp.admin.example.: 127.0.0.1:"),
        "{e}"
    );
    assert!(e.contains("no answer") || e.contains("refused"), "{e}");
}
