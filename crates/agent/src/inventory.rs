//! The machine's inventory (issue 13.5), read from files: DMI and power
//! supplies under sysfs, CPU, memory, mounts, kernel and boot time under
//! proc, `os-release`, and dpkg's `status` (no subprocess). The roots are
//! configurable ([`InventoryRoots`]) so tests feed a fixture tree and the
//! service reads the real machine.
//!
//! Sent on change, not on a timer: the session sends the report's hash at
//! connect and again whenever [`FileInventory::changes`] is bumped, which
//! happens when dpkg rewrites its status file (inotify on its directory),
//! when the kernel reports an address change (netlink), and at most once an
//! hour otherwise (free disk space, rounded down to whole GiB, moves on its
//! own; it is only ever sent when the hash differs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lectern_proto::inventory::{
    Battery, Disk, Hardware, Interface, Inventory, OsInfo, Package, FREE_SPACE_STEP, MAX_ITEMS,
    MAX_PACKAGES,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::sync::watch;

/// Where the inventory is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryRoots {
    /// Collect and send an inventory at all.
    pub enabled: bool,
    /// sysfs (`/sys`).
    pub sys: PathBuf,
    /// procfs (`/proc`).
    pub proc: PathBuf,
    /// Where `os-release` is (`/etc`).
    pub etc: PathBuf,
    /// dpkg's database directory (`/var/lib/dpkg`).
    pub dpkg: PathBuf,
    /// Network addresses as `(interface, address/prefix)`; `None` reads
    /// the machine's own (tests give fixed ones).
    pub addresses: Option<Vec<(String, String)>>,
}

impl Default for InventoryRoots {
    fn default() -> Self {
        InventoryRoots {
            enabled: true,
            sys: "/sys".into(),
            proc: "/proc".into(),
            etc: "/etc".into(),
            dpkg: "/var/lib/dpkg".into(),
            addresses: None,
        }
    }
}

/// How long file and address changes must be quiet before a recheck (an
/// `apt upgrade` rewrites dpkg's status many times).
const SETTLE: Duration = Duration::from_secs(5);
/// Recheck at most this often without an event (free disk space).
const RECHECK: Duration = Duration::from_secs(3600);

/// Reads the inventory from [`InventoryRoots`] and says when it may have
/// changed.
#[derive(Debug)]
pub struct FileInventory {
    roots: InventoryRoots,
    tx: watch::Sender<u64>,
}

impl FileInventory {
    /// A source reading `roots`; with `watch`, threads watch dpkg's
    /// directory (inotify) and the addresses (netlink) for changes.
    pub fn new(roots: InventoryRoots, watch: bool) -> Arc<Self> {
        let (tx, _) = watch::channel(0);
        let me = Arc::new(FileInventory { roots, tx });
        if watch {
            me.spawn_watchers();
        }
        me
    }

    /// Says the inventory may have changed (tests; the watchers).
    pub fn poke(&self) {
        self.tx.send_modify(|n| *n += 1);
    }

    fn spawn_watchers(self: &Arc<Self>) {
        #[cfg(target_os = "linux")]
        {
            let weak = Arc::downgrade(self);
            let dir = self.roots.dpkg.clone();
            let _ = std::thread::Builder::new()
                .name("inventory-dpkg".into())
                .spawn(move || watch_dpkg(&dir, weak));
        }
        if self.roots.addresses.is_none() {
            let weak = Arc::downgrade(self);
            let _ = std::thread::Builder::new()
                .name("inventory-net".into())
                .spawn(move || watch_addresses(weak));
        }
    }
}

impl lectern_desktop::InventorySource for FileInventory {
    fn collect(&self) -> Inventory {
        collect(&self.roots)
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

/// Blocks on netlink address changes, poking `inv` after each burst.
fn watch_addresses(inv: std::sync::Weak<FileInventory>) {
    let Ok(mut notifier) = if_addrs::IfChangeNotifier::new() else {
        tracing::info!("no netlink: addresses are rechecked at reconnect and hourly");
        return;
    };
    loop {
        let changed = match notifier.wait(Some(RECHECK)) {
            Ok(c) => !c.is_empty(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => return,
        };
        let Some(inv) = inv.upgrade() else { return };
        if changed {
            std::thread::sleep(SETTLE);
            inv.poke();
        }
    }
}

/// Blocks on inotify events in dpkg's directory (dpkg writes `status-new`
/// and renames it over `status`), poking `inv` when `status` settles, and
/// once an hour without events.
#[cfg(target_os = "linux")]
fn watch_dpkg(dir: &Path, inv: std::sync::Weak<FileInventory>) {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: plain system calls on a descriptor this function owns.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    if fd < 0 {
        return;
    }
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return;
    };
    let mask = libc::IN_CLOSE_WRITE | libc::IN_MOVED_TO | libc::IN_CREATE;
    // SAFETY: fd is ours, path is a valid C string.
    if unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) } < 0 {
        tracing::info!(dir = %dir.display(), "cannot watch dpkg: packages are rechecked hourly");
    }
    let mut buf = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, RECHECK.as_millis() as i32) };
        let Some(me) = inv.upgrade() else { break };
        if ready > 0 {
            // SAFETY: reads into a buffer of its length.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            if !names_status(&buf[..n as usize]) {
                continue;
            }
            drop(me);
            std::thread::sleep(SETTLE);
            // Drain what came meanwhile: one recheck per burst.
            // SAFETY: as above, non-blocking by poll with zero timeout.
            while unsafe { libc::poll(&mut pfd, 1, 0) } > 0 {
                if unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } <= 0 {
                    break;
                }
            }
            let Some(me) = inv.upgrade() else { break };
            me.poke();
        } else if ready == 0 {
            me.poke();
        }
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(fd) };
}

/// Whether a buffer of inotify events names the file `status`.
#[cfg(target_os = "linux")]
fn names_status(mut buf: &[u8]) -> bool {
    const HEADER: usize = std::mem::size_of::<libc::inotify_event>();
    while buf.len() >= HEADER {
        let len = u32::from_ne_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
        let name = buf.get(HEADER..HEADER + len).unwrap_or_default();
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        if name == b"status" {
            return true;
        }
        buf = buf.get(HEADER + len..).unwrap_or_default();
    }
    false
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Reads everything under `roots`.
pub fn collect(roots: &InventoryRoots) -> Inventory {
    let mut packages = dpkg_packages(&read_raw(roots.dpkg.join("status")));
    packages.truncate(MAX_PACKAGES);
    Inventory {
        hardware: hardware(roots),
        disks: disks(&read_raw(roots.proc.join("mounts"))),
        network: interfaces(roots),
        batteries: batteries(&roots.sys),
        os: os_release(&read_raw(roots.etc.join("os-release"))),
        kernel: read(roots.proc.join("sys/kernel/osrelease")),
        boot_time_ms: boot_time(&read_raw(roots.proc.join("stat"))),
        packages,
    }
}

fn read_raw(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn hardware(roots: &InventoryRoots) -> Hardware {
    let dmi = roots.sys.join("class/dmi/id");
    let cpuinfo = read_raw(roots.proc.join("cpuinfo"));
    let field = |line: &str, key: &str| {
        let (k, v) = line.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    };
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| field(l, "model name"))
        .unwrap_or_default();
    let cpu_count = cpuinfo
        .lines()
        .filter(|l| field(l, "processor").is_some())
        .count() as u32;
    let memory_bytes = read_raw(roots.proc.join("meminfo"))
        .lines()
        .find_map(|l| field(l, "MemTotal"))
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    Hardware {
        vendor: read(dmi.join("sys_vendor")),
        model: read(dmi.join("product_name")),
        serial: read(dmi.join("product_serial")),
        asset_id: String::new(),
        cpu_model,
        cpu_count,
        memory_bytes,
    }
}

/// Mounted filesystems of block devices (`/dev/…`), each mount point once.
fn disks(mounts: &str) -> Vec<Disk> {
    let mut seen = BTreeMap::new();
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(dev), Some(mount), Some(fs)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if !dev.starts_with("/dev/") || dev.starts_with("/dev/loop") {
            continue;
        }
        let mount = mount.replace("\\040", " ");
        let (size_bytes, free) = space(&mount);
        seen.entry(mount.clone()).or_insert(Disk {
            device: dev.to_string(),
            mount,
            fs: fs.to_string(),
            size_bytes,
            free_bytes: free / FREE_SPACE_STEP * FREE_SPACE_STEP,
        });
    }
    seen.into_values().take(MAX_ITEMS).collect()
}

/// Size and free bytes of the filesystem at `mount`.
#[cfg(target_os = "linux")]
fn space(mount: &str) -> (u64, u64) {
    let Ok(path) = std::ffi::CString::new(mount) else {
        return (0, 0);
    };
    // SAFETY: statvfs fills the zeroed struct we own.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut s) } != 0 {
        return (0, 0);
    }
    let block = s.f_frsize as u64;
    (s.f_blocks as u64 * block, s.f_bavail as u64 * block)
}

#[cfg(not(target_os = "linux"))]
fn space(_mount: &str) -> (u64, u64) {
    (0, 0)
}

fn interfaces(roots: &InventoryRoots) -> Vec<Interface> {
    let mut addrs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, a) in roots.addresses.clone().unwrap_or_else(live_addresses) {
        addrs.entry(name).or_default().push(a);
    }
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(roots.sys.join("class/net")) else {
        return out;
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lo")
        .collect();
    names.sort();
    for name in names.into_iter().take(MAX_ITEMS) {
        let mac = read(roots.sys.join("class/net").join(&name).join("address")).to_lowercase();
        let mut addresses = addrs.remove(&name).unwrap_or_default();
        addresses.sort();
        out.push(Interface {
            name,
            mac,
            addresses,
        });
    }
    out
}

fn live_addresses() -> Vec<(String, String)> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| {
            let prefix = match &i.addr {
                if_addrs::IfAddr::V4(a) => a.prefixlen,
                if_addrs::IfAddr::V6(a) => a.prefixlen,
            };
            (i.name.clone(), format!("{}/{prefix}", i.ip()))
        })
        .collect()
}

fn batteries(sys: &Path) -> Vec<Battery> {
    let base = sys.join("class/power_supply");
    let Ok(dir) = std::fs::read_dir(&base) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("BAT"))
        .collect();
    names.sort();
    names
        .into_iter()
        .take(MAX_ITEMS)
        .map(|name| {
            let d = base.join(&name);
            let num = |f: &str| read(d.join(f)).parse::<u64>().ok();
            // Some batteries report charge (µAh) rather than energy (µWh).
            let full = num("energy_full").or_else(|| num("charge_full"));
            let design = num("energy_full_design").or_else(|| num("charge_full_design"));
            let health_percent = match (full, design) {
                (Some(f), Some(d)) if d > 0 => Some((f * 100 / d) as u32),
                _ => None,
            };
            Battery {
                name,
                health_percent,
                cycle_count: num("cycle_count").map(|c| c as u32),
            }
        })
        .collect()
}

fn os_release(text: &str) -> OsInfo {
    let mut os = OsInfo::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "ID" => os.id = v,
            "PRETTY_NAME" => os.name = v,
            "VERSION_ID" => os.version = v,
            _ => {}
        }
    }
    os
}

fn boot_time(stat: &str) -> i64 {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .map_or(0, |s| s * 1000)
}

/// Installed packages from dpkg's `status`: stanzas whose `Status` ends in
/// `installed`, sorted by name (architecture-qualified names kept apart).
pub fn dpkg_packages(status: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for stanza in status.split("\n\n") {
        let (mut name, mut version, mut arch, mut installed) = ("", "", "", false);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = v.trim();
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = v.trim();
            } else if let Some(v) = line.strip_prefix("Architecture:") {
                arch = v.trim();
            } else if let Some(v) = line.strip_prefix("Status:") {
                installed = v.trim().ends_with(" installed");
            }
        }
        if installed && !name.is_empty() {
            let name = if arch.is_empty() || arch == "all" || arch == native_arch() {
                name.to_string()
            } else {
                format!("{name}:{arch}")
            };
            out.push(Package {
                name,
                version: version.to_string(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// dpkg's name for this build's architecture.
fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        other => other,
    }
}

/// A fixed inventory (the simulator's desktops, so a demo shows one).
#[derive(Debug)]
pub struct StaticInventory {
    inventory: Inventory,
    tx: watch::Sender<u64>,
}

impl StaticInventory {
    /// A made-up school laptop, the `n`th of the simulator's.
    pub fn demo(n: usize) -> Arc<Self> {
        let inventory = Inventory {
            hardware: Hardware {
                vendor: "Lectern".into(),
                model: ["Sim Book 14", "Sim Desk 7"][n % 2].into(),
                serial: format!("SIM-{n:05}"),
                cpu_model: "Simulated CPU @ 2.0GHz".into(),
                cpu_count: 4,
                memory_bytes: 8 << 30,
                ..Default::default()
            },
            disks: vec![Disk {
                device: "/dev/sda1".into(),
                mount: "/".into(),
                fs: "ext4".into(),
                size_bytes: 256 << 30,
                free_bytes: ((100 + n as u64 % 50) << 30),
            }],
            network: vec![Interface {
                name: "eth0".into(),
                mac: format!("02:00:00:00:{:02x}:{:02x}", (n >> 8) & 0xff, n & 0xff),
                addresses: vec![format!("10.0.{}.{}/16", n / 250, n % 250 + 2)],
            }],
            batteries: vec![Battery {
                name: "BAT0".into(),
                health_percent: Some(95 - (n % 20) as u32),
                cycle_count: Some(100 + n as u32),
            }],
            os: OsInfo {
                id: "debian".into(),
                name: "Debian GNU/Linux 12 (bookworm)".into(),
                version: "12".into(),
            },
            kernel: "6.1.0-13-amd64".into(),
            // Booted a while before the simulator started.
            boot_time_ms: booted_minutes_ago(30 + n as i64 % 240),
            packages: [
                ("bash", "5.2.15-2+b2"),
                ("firefox-esr", "115.5.0esr-1~deb12u1"),
                ("libreoffice", "4:7.4.7-1"),
                ("scratch", "1.4.0.6~dfsg1-6"),
            ]
            .into_iter()
            .map(|(name, version)| Package {
                name: name.into(),
                version: version.into(),
            })
            .collect(),
        };
        let (tx, _) = watch::channel(0);
        Arc::new(StaticInventory { inventory, tx })
    }
}

/// Milliseconds since the epoch, `m` minutes ago, to the second.
fn booted_minutes_ago(m: i64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    (now - m * 60) * 1000
}

impl lectern_desktop::InventorySource for StaticInventory {
    fn collect(&self) -> Inventory {
        self.inventory.clone()
    }
    fn changes(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

/// The session's side: the last report read, its hash, and word of changes.
pub(crate) struct Reporter {
    source: Arc<dyn lectern_desktop::InventorySource>,
    changes: watch::Receiver<u64>,
    /// The JSON and hash of the last report read.
    json: String,
    hash: String,
    /// The hash the server last heard (a refused upload clears it, so the
    /// next change or hourly recheck offers it again).
    offered: Option<String>,
}

impl Reporter {
    /// Reads the inventory (off the async threads) and returns the reporter
    /// with the hash to offer now.
    pub(crate) async fn start(
        source: Arc<dyn lectern_desktop::InventorySource>,
    ) -> (Reporter, lectern_proto::AgentMsg) {
        let mut changes = source.changes();
        changes.borrow_and_update();
        let (json, hash) = read_report(source.clone()).await;
        let msg = lectern_proto::AgentMsg::InventoryHash { hash: hash.clone() };
        let r = Reporter {
            source,
            changes,
            json,
            hash: hash.clone(),
            offered: Some(hash),
        };
        (r, msg)
    }

    /// After word of a change: reads again, and returns the hash to offer
    /// if it differs from what the server last heard.
    pub(crate) async fn recheck(&mut self) -> Option<lectern_proto::AgentMsg> {
        let (json, hash) = read_report(self.source.clone()).await;
        self.json = json;
        self.hash = hash;
        if self.offered.as_deref() == Some(self.hash.as_str()) {
            return None;
        }
        self.offered = Some(self.hash.clone());
        Some(lectern_proto::AgentMsg::InventoryHash {
            hash: self.hash.clone(),
        })
    }

    /// The whole report, as the server asked for it.
    pub(crate) fn parts(&self) -> Vec<lectern_proto::AgentMsg> {
        let parts = lectern_proto::inventory::split_parts(&self.json);
        let n = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(i, data)| lectern_proto::AgentMsg::InventoryPart {
                index: i as u32,
                last: i + 1 == n,
                data: data.to_string(),
            })
            .collect()
    }

    /// This device's addresses (`address/prefix`) as last read.
    pub(crate) fn addresses(&self) -> Vec<String> {
        serde_json::from_str::<Inventory>(&self.json)
            .map(|i| i.network.into_iter().flat_map(|n| n.addresses).collect())
            .unwrap_or_default()
    }

    /// The server did not keep the report: offer it again on the next change.
    pub(crate) fn refused(&mut self) {
        self.offered = None;
    }
}

/// Checks a Wake-on-LAN request from the server: at most
/// [`lectern_proto::power::MAX_WAKE_MACS`] valid MACs, and a target that is
/// the broadcast address of one of `own` subnets (`address/prefix`, IPv4).
/// Returns the packets and where to send them.
pub fn wake_request(
    macs: &[String],
    target: &str,
    own: &[String],
) -> Result<(Vec<[u8; 102]>, std::net::SocketAddr), String> {
    use lectern_proto::power::{magic_packet, parse_mac, MAX_WAKE_MACS};
    if macs.is_empty() || macs.len() > MAX_WAKE_MACS {
        return Err(format!("1 to {MAX_WAKE_MACS} MAC addresses"));
    }
    let packets = macs
        .iter()
        .map(|m| {
            parse_mac(m)
                .map(magic_packet)
                .ok_or(format!("bad MAC {m:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let addr: std::net::SocketAddr = target
        .parse()
        .map_err(|_| format!("bad target {target:?}"))?;
    let std::net::IpAddr::V4(ip) = addr.ip() else {
        return Err("Wake-on-LAN is IPv4 broadcast".into());
    };
    let ours = own
        .iter()
        .filter_map(|a| lectern_proto::power::broadcast_of(a))
        .any(|b| b == ip);
    if !ours {
        return Err(format!(
            "{ip} is not a broadcast address of this device's subnets"
        ));
    }
    Ok((packets, addr))
}

/// Waits for word of a change; never, without a reporter or once its
/// source is gone.
pub(crate) async fn next_change(r: &mut Option<Reporter>) {
    let Some(r) = r else {
        return std::future::pending().await;
    };
    if r.changes.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The report's JSON and hash, read on a blocking thread.
async fn read_report(source: Arc<dyn lectern_desktop::InventorySource>) -> (String, String) {
    let json = tokio::task::spawn_blocking(move || source.collect().encode())
        .await
        .unwrap_or_default();
    let hash = hex::encode(sha2::Sha256::digest(json.as_bytes()));
    (json, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_gives_installed_packages_only() {
        let status = "Package: zsh\nStatus: install ok installed\nVersion: 5.9-4\n\n\
                      Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                      Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\nDescription: x\n two\n";
        let p = dpkg_packages(status);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "bash");
        assert_eq!(p[0].version, "5.2.15-2+b2");
        assert_eq!(p[1].name, "zsh");
    }

    #[test]
    fn os_release_and_boot_time() {
        let os = os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.version, "12");
        assert_eq!(os.name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(boot_time("cpu 1 2\nbtime 1700000000\n"), 1_700_000_000_000);
    }

    #[test]
    fn only_block_devices_are_disks() {
        let d = disks("proc /proc proc rw 0 0\n/dev/loop0 /snap squashfs ro 0 0\n/dev/sda1 / ext4 rw 0 0\n/dev/sda1 / ext4 rw 0 0\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].mount, "/");
        assert_eq!(d[0].free_bytes % FREE_SPACE_STEP, 0);
    }

    #[test]
    fn wake_goes_only_to_our_own_broadcast() {
        let own = vec!["192.168.40.17/24".to_string()];
        let macs = vec!["aa:bb:cc:00:11:22".to_string()];
        let (p, t) = wake_request(&macs, "192.168.40.255:9", &own).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(t.port(), 9);
        assert!(wake_request(&macs, "192.168.41.255:9", &own).is_err());
        assert!(wake_request(&macs, "8.8.8.8:9", &own).is_err());
        assert!(wake_request(&["zz".into()], "192.168.40.255:9", &own).is_err());
        assert!(wake_request(&[], "192.168.40.255:9", &own).is_err());
        assert_eq!(
            lectern_proto::power::broadcast_of("10.1.2.3/16"),
            Some([10, 1, 255, 255].into())
        );
    }

    /// dpkg's rename of `status-new` over `status` is seen (inotify) and
    /// said once the burst settles.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_dpkg_change_is_noticed() {
        use lectern_desktop::InventorySource;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("status"), "").unwrap();
        let roots = InventoryRoots {
            dpkg: dir.path().to_path_buf(),
            addresses: Some(Vec::new()),
            ..Default::default()
        };
        let inv = FileInventory::new(roots, true);
        let mut changes = inv.changes();
        // The watcher thread may not have added its watch yet: write until
        // it says so (a generous deadline, no timing asserted).
        let status = "Package: zsh\nStatus: install ok installed\nVersion: 5.9\n";
        let noticed = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                std::fs::write(dir.path().join("status-new"), status).unwrap();
                std::fs::rename(dir.path().join("status-new"), dir.path().join("status")).unwrap();
                if tokio::time::timeout(Duration::from_secs(10), changes.changed())
                    .await
                    .is_ok()
                {
                    return;
                }
            }
        })
        .await;
        assert!(noticed.is_ok(), "no change noticed");
        assert_eq!(inv.collect().packages[0].name, "zsh");
    }

    #[test]
    fn the_real_machine_reads_without_panicking() {
        let inv = collect(&InventoryRoots::default());
        assert!(inv.hardware.cpu_count > 0);
        assert!(inv.check().is_ok());
    }
}
