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

use std::io;
use std::path::{Path, PathBuf};

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

/// The file holding the enrollment token (or school code).
pub fn token_file() -> PathBuf {
    config_dir().join("enrollment-token")
}

/// Discovery step 1: the file naming the server, one line `HOST[:PORT]`.
pub fn server_file() -> PathBuf {
    config_dir().join("server")
}

/// The resolver configuration whose search domains DNS-SD asks.
pub fn resolv_conf() -> PathBuf {
    imp::resolv_conf()
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
    /// give DNS-SD its search domains.
    pub fn resolv_conf() -> PathBuf {
        base().join("resolv.conf")
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
