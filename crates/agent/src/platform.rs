//! The few facts shared code needs from the operating system, in one place:
//! where the agent's files live, how to keep a file or directory private to
//! the service, and the machine's name. Everything else platform-specific
//! lives in its own module or crate (`linux`, `lectern-x11`, …).
//!
//! | what | Linux | Windows |
//! |---|---|---|
//! | configuration | `/etc/lectern` | `%ProgramData%\Lectern` |
//! | state (credential, policy, queue) | `/var/lib/lectern-agent` | `%ProgramData%\Lectern\state` |
//! | service endpoint | `/run/lectern-agent/agent.sock` | `\\.\pipe\lectern-agent` (status; helpers: `\\.\pipe\lectern-agent-<session>`) |
//! | DNS servers and search domains | `/etc/resolv.conf` | `%ProgramData%\Lectern\resolv.conf` if an administrator wrote one, else the system's ([`resolver_config`]) |

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::discovery::ResolvConf;

/// Directory of the configuration an administrator (or the package) writes.
pub fn config_dir() -> PathBuf {
    imp::config_dir()
}

/// Directory of the agent's own state: credential, stored policy, queue.
pub fn state_dir() -> PathBuf {
    imp::state_dir()
}

/// The service's configuration file (`agent.toml`).
pub fn config_file() -> PathBuf {
    config_dir().join("agent.toml")
}

/// The file holding an enrollment token.
pub fn token_file() -> PathBuf {
    config_dir().join("enrollment-token")
}

/// The file holding the school code, placed for mass deployment
/// (`/etc/lectern/schoolcode` on Linux).
pub fn school_code_file() -> PathBuf {
    config_dir().join("schoolcode")
}

/// Discovery step 1: the file naming the server, one line `HOST[:PORT]`.
pub fn server_file() -> PathBuf {
    config_dir().join("server")
}

/// The resolv.conf-style file DNS-SD reads its name servers and search
/// domains from. On Windows it normally does not exist: [`resolver_config`]
/// then asks the system.
pub fn resolv_conf() -> PathBuf {
    imp::resolv_conf()
}

/// Name servers and search domains for DNS-SD, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverConfig {
    /// The name servers and search domains.
    pub conf: ResolvConf,
    /// Where they were read, for notes and logs: the file's path, or
    /// [`SYSTEM_DNS_SOURCE`].
    pub source: String,
}

/// [`ResolverConfig::source`] when the configuration came from the system
/// rather than a file.
pub const SYSTEM_DNS_SOURCE: &str =
    "the system's DNS settings (network adapters, Tcpip\\Parameters)";

/// The resolver configuration DNS-SD uses. `file` (resolv.conf syntax) wins
/// whenever it exists: on Linux that is `/etc/resolv.conf` itself; on
/// Windows an administrator's `%ProgramData%\Lectern\resolv.conf`
/// overrides the system. When `file` does not exist and `system` is set,
/// Windows answers from its own settings ([`windows_resolv_conf`] over
/// `GetAdaptersAddresses` and the registry); Linux has nothing else to ask,
/// so the error stands. Blocking: call it off the async runtime.
pub fn resolver_config(file: &Path, system: bool) -> io::Result<ResolverConfig> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(ResolverConfig {
            conf: ResolvConf::parse(&text),
            source: file.display().to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound && system => {
            match imp::system_resolv_conf() {
                Some(conf) => Ok(ResolverConfig {
                    conf: conf?,
                    source: SYSTEM_DNS_SOURCE.to_string(),
                }),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// One network adapter's DNS settings, as Windows' `GetAdaptersAddresses`
/// reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdapterDns {
    /// Whether the adapter is up (`IfOperStatusUp`); others are ignored.
    pub up: bool,
    /// Its DNS server addresses, in order.
    pub servers: Vec<IpAddr>,
    /// Its connection-specific DNS suffix (may be empty).
    pub suffix: String,
}

/// The values of `HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters`
/// that name search domains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpipDnsParams {
    /// `Domain`: the primary DNS suffix in effect.
    pub domain: Option<String>,
    /// `NV Domain`: the primary DNS suffix as configured (it differs from
    /// `Domain` until the next restart after a change).
    pub nv_domain: Option<String>,
    /// `SearchList`: the administrator's suffix search list, comma-separated.
    pub search_list: Option<String>,
}

/// Windows' DNS settings as a [`ResolvConf`], the way the Windows resolver
/// uses them:
///
/// - name servers: each up adapter's DNS servers, in adapter order, without
///   duplicates; unspecified addresses, IPv6 link-local ones (they would need
///   the adapter's scope) and the `fec0:0:0:ffff::1`-style site-local
///   placeholders Windows lists when no IPv6 DNS server is set are skipped;
/// - search domains: the `SearchList` when set (Windows then uses it alone),
///   else the primary DNS suffix (`Domain`, then `NV Domain`) followed by each
///   up adapter's connection-specific suffix; without duplicates (case
///   ignored), trailing dots trimmed.
pub fn windows_resolv_conf(adapters: &[AdapterDns], params: &TcpipDnsParams) -> ResolvConf {
    let mut conf = ResolvConf::default();
    let up = || adapters.iter().filter(|a| a.up);
    for ip in up().flat_map(|a| a.servers.iter()) {
        if usable_nameserver(ip) && !conf.nameservers.contains(ip) {
            conf.nameservers.push(*ip);
        }
    }
    let listed: Vec<&str> = params
        .search_list
        .as_deref()
        .unwrap_or("")
        .split([',', ' ', '\t'])
        .collect();
    let mut domains: Vec<&str> = listed.clone();
    if !listed
        .iter()
        .any(|d| !d.trim().trim_end_matches('.').is_empty())
    {
        domains = [params.domain.as_deref(), params.nv_domain.as_deref()]
            .into_iter()
            .flatten()
            .chain(up().map(|a| a.suffix.as_str()))
            .collect();
    }
    for d in domains {
        let d = d.trim().trim_end_matches('.');
        if !d.is_empty() && !conf.search.iter().any(|s| s.eq_ignore_ascii_case(d)) {
            conf.search.push(d.to_string());
        }
    }
    conf
}

/// Whether a DNS server address Windows lists can be asked as it stands.
fn usable_nameserver(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_unspecified(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            // fe80::/10 link-local needs a scope; fec0::/10 is the deprecated
            // site-local range of Windows' "no DNS server" placeholders.
            !v6.is_unspecified() && first & 0xffc0 != 0xfe80 && first & 0xffc0 != 0xfec0
        }
    }
}

/// The address in a raw `sockaddr` (`AF_INET` or `AF_INET6`, Windows'
/// numbering), as `SOCKET_ADDRESS` points at one.
pub fn sockaddr_ip(raw: &[u8]) -> Option<IpAddr> {
    const AF_INET: u16 = 2;
    const AF_INET6: u16 = 23;
    let family = u16::from_le_bytes([*raw.first()?, *raw.get(1)?]);
    match family {
        AF_INET => {
            let b: [u8; 4] = raw.get(4..8)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        AF_INET6 => {
            let b: [u8; 16] = raw.get(8..24)?.try_into().ok()?;
            Some(IpAddr::from(b))
        }
        _ => None,
    }
}

/// Where the service listens for its helpers, native hosts and `status`:
/// a Unix socket path, or a named pipe's name.
pub fn service_endpoint() -> PathBuf {
    imp::service_endpoint()
}

/// This machine's name, as the operating system knows it.
pub fn hostname() -> Option<String> {
    imp::hostname().filter(|h| !h.is_empty())
}

/// Opens `path` for writing (created or truncated) so that only the agent's
/// own account can read it: mode 0600 on Unix; on Windows the file inherits
/// the access list [`create_private_dir`] gave its directory.
pub fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
    imp::create_private_file(path)
}

/// Creates `dir` (and its parents) and makes it private to the agent's
/// account: mode 0700 on Unix; on Windows a protected access list of SYSTEM
/// and Administrators only, inherited by what is created inside.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    imp::make_private_dir(dir)
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    pub fn config_dir() -> PathBuf {
        "/etc/lectern".into()
    }

    pub fn state_dir() -> PathBuf {
        "/var/lib/lectern-agent".into()
    }

    pub fn resolv_conf() -> PathBuf {
        "/etc/resolv.conf".into()
    }

    /// resolv.conf is the system's configuration: nothing else to ask.
    pub fn system_resolv_conf() -> Option<io::Result<crate::discovery::ResolvConf>> {
        None
    }

    pub fn service_endpoint() -> PathBuf {
        "/run/lectern-agent/agent.sock".into()
    }

    pub fn hostname() -> Option<String> {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_string())
    }

    pub fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
    }

    pub fn make_private_dir(dir: &Path) -> io::Result<()> {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn private_files_and_dirs_are_the_owners_alone() {
            let dir = tempfile::tempdir().unwrap();
            let sub = dir.path().join("state");
            crate::platform::create_private_dir(&sub).unwrap();
            let f = sub.join("credential.json");
            crate::platform::create_private_file(&f).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!((mode(&sub), mode(&f)), (0o700, 0o600));
        }
    }
}

#[cfg(windows)]
mod imp {
    use std::io;
    use std::path::{Path, PathBuf};

    /// `%ProgramData%\Lectern` (`C:\ProgramData\Lectern` when unset).
    fn base() -> PathBuf {
        std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"))
            .join("Lectern")
    }

    pub fn config_dir() -> PathBuf {
        base()
    }

    pub fn state_dir() -> PathBuf {
        base().join("state")
    }

    /// Windows has no resolv.conf; an administrator may place one here to
    /// override the system's DNS settings for DNS-SD.
    pub fn resolv_conf() -> PathBuf {
        base().join("resolv.conf")
    }

    pub fn system_resolv_conf() -> Option<io::Result<crate::discovery::ResolvConf>> {
        Some(
            super::windows_dns::system()
                .map(|(adapters, params)| super::windows_resolv_conf(&adapters, &params)),
        )
    }

    pub fn service_endpoint() -> PathBuf {
        r"\\.\pipe\lectern-agent".into()
    }

    pub fn hostname() -> Option<String> {
        std::env::var("COMPUTERNAME").ok()
    }

    pub fn create_private_file(path: &Path) -> io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Replaces `dir`'s access list with a protected one (nothing inherited
    /// from `%ProgramData%`, which lets Users read): full control for SYSTEM
    /// and Administrators, inherited by everything created inside.
    pub fn make_private_dir(dir: &Path) -> io::Result<()> {
        use crate::windows::win32::{wide, SecurityDescriptor};
        use crate::windows_rules::STATE_DIR_SDDL;
        use windows_sys::Win32::Security::Authorization::{SetNamedSecurityInfoW, SE_FILE_OBJECT};
        use windows_sys::Win32::Security::{
            GetSecurityDescriptorDacl, DACL_SECURITY_INFORMATION,
            PROTECTED_DACL_SECURITY_INFORMATION,
        };
        let sd = SecurityDescriptor::from_sddl(STATE_DIR_SDDL)?;
        let (mut present, mut defaulted, mut dacl) = (0, 0, std::ptr::null_mut());
        // SAFETY: `sd` is a valid descriptor; `dacl` points into it while it lives.
        crate::windows::win32::check(
            unsafe {
                GetSecurityDescriptorDacl(sd.as_ptr(), &mut present, &mut dacl, &mut defaulted)
            },
            "GetSecurityDescriptorDacl",
        )?;
        let path = wide(dir);
        // SAFETY: `path` is NUL-terminated and `dacl` valid for the call.
        let rc = unsafe {
            SetNamedSecurityInfoW(
                path.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                dacl,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc as i32));
        }
        Ok(())
    }
}

/// The two Windows calls behind [`resolver_config`]: the adapters' DNS
/// settings and the TCP/IP service's search-domain values. Everything they
/// return is interpreted by the pure [`windows_resolv_conf`].
#[cfg(windows)]
mod windows_dns {
    use super::{sockaddr_ip, AdapterDns, TcpipDnsParams};
    use std::io;
    use windows_sys::Win32::Foundation::{ERROR_BUFFER_OVERFLOW, ERROR_SUCCESS};
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetAdaptersAddresses, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_FRIENDLY_NAME,
        GAA_FLAG_SKIP_MULTICAST, GAA_FLAG_SKIP_UNICAST, IP_ADAPTER_ADDRESSES_LH,
    };
    use windows_sys::Win32::NetworkManagement::Ndis::IfOperStatusUp;
    use windows_sys::Win32::Networking::WinSock::AF_UNSPEC;
    use windows_sys::Win32::System::Registry::{RegGetValueW, HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ};

    const TCPIP_PARAMETERS: &str = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters";

    pub fn system() -> io::Result<(Vec<AdapterDns>, TcpipDnsParams)> {
        let params = TcpipDnsParams {
            domain: registry_string("Domain"),
            nv_domain: registry_string("NV Domain"),
            search_list: registry_string("SearchList"),
        };
        Ok((adapters()?, params))
    }

    fn wide(s: &str) -> Vec<u16> {
        s.encode_utf16().chain(Some(0)).collect()
    }

    /// A NUL-terminated UTF-16 string; empty for a null pointer.
    ///
    /// SAFETY: `p` is null or points at a NUL-terminated UTF-16 string.
    unsafe fn from_wide(p: *const u16) -> String {
        if p.is_null() {
            return String::new();
        }
        let mut len = 0;
        while *p.add(len) != 0 {
            len += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, len))
    }

    /// Every adapter's state, DNS servers and suffix.
    fn adapters() -> io::Result<Vec<AdapterDns>> {
        let flags = GAA_FLAG_SKIP_UNICAST
            | GAA_FLAG_SKIP_ANYCAST
            | GAA_FLAG_SKIP_MULTICAST
            | GAA_FLAG_SKIP_FRIENDLY_NAME;
        // 16 KiB covers most machines; the call says when it needs more
        // (adapters may appear between two calls, hence the loop).
        let mut size: u32 = 16 * 1024;
        let mut buf: Vec<u64>;
        loop {
            buf = vec![0; (size as usize).div_ceil(8)];
            // SAFETY: `buf` holds `size` writable bytes, 8-aligned.
            let rc = unsafe {
                GetAdaptersAddresses(
                    AF_UNSPEC as u32,
                    flags,
                    std::ptr::null(),
                    buf.as_mut_ptr().cast(),
                    &mut size,
                )
            };
            match rc {
                ERROR_SUCCESS => break,
                ERROR_BUFFER_OVERFLOW => continue,
                // No adapters at all.
                windows_sys::Win32::Foundation::ERROR_NO_DATA => return Ok(Vec::new()),
                e => return Err(io::Error::from_raw_os_error(e as i32)),
            }
        }
        let mut out = Vec::new();
        let mut p = buf.as_ptr() as *const IP_ADAPTER_ADDRESSES_LH;
        while !p.is_null() {
            // SAFETY: the list and everything it points at live in `buf`.
            let a = unsafe { &*p };
            let mut servers = Vec::new();
            let mut s = a.FirstDnsServerAddress;
            while !s.is_null() {
                // SAFETY: as above; the sockaddr is `iSockaddrLength` bytes.
                let server = unsafe { &*s };
                let sa = server.Address;
                if !sa.lpSockaddr.is_null() && sa.iSockaddrLength > 0 {
                    let raw = unsafe {
                        std::slice::from_raw_parts(
                            sa.lpSockaddr as *const u8,
                            sa.iSockaddrLength as usize,
                        )
                    };
                    servers.extend(sockaddr_ip(raw));
                }
                s = server.Next;
            }
            out.push(AdapterDns {
                up: a.OperStatus == IfOperStatusUp,
                servers,
                // SAFETY: `DnsSuffix` is a NUL-terminated string in `buf`.
                suffix: unsafe { from_wide(a.DnsSuffix) },
            });
            p = a.Next;
        }
        Ok(out)
    }

    /// A `REG_SZ` value of the TCP/IP parameters; `None` when it is absent,
    /// of another type or empty.
    fn registry_string(value: &str) -> Option<String> {
        let (key, name) = (wide(TCPIP_PARAMETERS), wide(value));
        let mut size: u32 = 0;
        // SAFETY: both names are NUL-terminated; a null buffer asks for the size.
        let rc = unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                key.as_ptr(),
                name.as_ptr(),
                RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut size,
            )
        };
        if rc != ERROR_SUCCESS || size == 0 {
            return None;
        }
        let mut buf = vec![0u16; (size as usize).div_ceil(2)];
        // SAFETY: `buf` holds `size` writable bytes.
        let rc = unsafe {
            RegGetValueW(
                HKEY_LOCAL_MACHINE,
                key.as_ptr(),
                name.as_ptr(),
                RRF_RT_REG_SZ,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &mut size,
            )
        };
        if rc != ERROR_SUCCESS {
            return None;
        }
        // SAFETY: RegGetValueW NUL-terminates what it returns.
        let s = unsafe { from_wide(buf.as_ptr()) };
        (!s.trim().is_empty()).then_some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn adapter(up: bool, servers: &[&str], suffix: &str) -> AdapterDns {
        AdapterDns {
            up,
            servers: ips(servers),
            suffix: suffix.into(),
        }
    }

    #[test]
    fn windows_settings_become_name_servers_and_search_domains() {
        let adapters = [
            adapter(false, &["10.9.9.9"], "down.example"),
            adapter(
                true,
                &["10.0.0.53", "fec0:0:0:ffff::1", "fe80::1", "0.0.0.0"],
                "lab.school.example.",
            ),
            adapter(true, &["10.0.0.54", "10.0.0.53", "fd00::53"], ""),
            adapter(true, &[], "LAB.school.example"),
        ];
        let params = TcpipDnsParams {
            domain: Some("school.example".into()),
            nv_domain: Some("school.example".into()),
            search_list: None,
        };
        let conf = windows_resolv_conf(&adapters, &params);
        assert_eq!(
            conf.nameservers,
            ips(&["10.0.0.53", "10.0.0.54", "fd00::53"])
        );
        assert_eq!(conf.search, ["school.example", "lab.school.example"]);

        // A pending rename: both primary suffixes, the one in effect first.
        let renamed = TcpipDnsParams {
            domain: Some("old.example".into()),
            nv_domain: Some("new.example".into()),
            search_list: Some("  ".into()),
        };
        let conf = windows_resolv_conf(&adapters[..2], &renamed);
        assert_eq!(
            conf.search,
            ["old.example", "new.example", "lab.school.example"]
        );
    }

    #[test]
    fn a_search_list_replaces_the_suffixes() {
        let adapters = [adapter(true, &["10.0.0.53"], "lab.school.example")];
        let params = TcpipDnsParams {
            domain: Some("school.example".into()),
            nv_domain: None,
            search_list: Some("a.example,b.example., A.EXAMPLE,,c.example".into()),
        };
        let conf = windows_resolv_conf(&adapters, &params);
        assert_eq!(conf.search, ["a.example", "b.example", "c.example"]);
        assert_eq!(conf.nameservers, ips(&["10.0.0.53"]));
    }

    #[test]
    fn nothing_configured_is_empty() {
        let conf = windows_resolv_conf(&[], &TcpipDnsParams::default());
        assert_eq!(conf, ResolvConf::default());
    }

    #[test]
    fn raw_sockaddrs() {
        // sockaddr_in: family 2, port 53 (big-endian), 10.0.0.53, zero padding.
        let v4 = [2, 0, 0, 53, 10, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(sockaddr_ip(&v4), Some("10.0.0.53".parse().unwrap()));
        // sockaddr_in6: family 23, port, flowinfo, fd00::53, scope id.
        let mut v6 = vec![23, 0, 0, 53, 0, 0, 0, 0];
        v6.extend("fd00::53".parse::<std::net::Ipv6Addr>().unwrap().octets());
        v6.extend([0, 0, 0, 0]);
        assert_eq!(sockaddr_ip(&v6), Some("fd00::53".parse().unwrap()));
        assert_eq!(sockaddr_ip(&v4[..6]), None);
        assert_eq!(sockaddr_ip(&[1, 0, 0, 0, 1, 2, 3, 4]), None);
        assert_eq!(sockaddr_ip(&[]), None);
    }

    #[test]
    fn an_existing_file_wins_and_a_missing_one_is_an_error_without_system() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("resolv.conf");
        std::fs::write(&file, "nameserver 10.0.0.53\nsearch school.example\n").unwrap();
        for system in [false, true] {
            let got = resolver_config(&file, system).unwrap();
            assert_eq!(got.source, file.display().to_string());
            assert_eq!(got.conf.nameservers, ips(&["10.0.0.53"]));
            assert_eq!(got.conf.search, ["school.example"]);
        }
        let missing = dir.path().join("missing");
        let e = resolver_config(&missing, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        // Linux has no other source: the file is the system's configuration.
        #[cfg(unix)]
        assert_eq!(
            resolver_config(&missing, true).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
