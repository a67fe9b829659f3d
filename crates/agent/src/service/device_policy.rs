//! Device settings the root service enforces itself rather than through the
//! session helpers: printing and removable media belong to the machine (CUPS,
//! polkit, usbguard), which only root may change, but they are applied to the
//! users of the graphical sessions.

use std::path::PathBuf;

use lectern_proto::Policy;
use serde::{Deserialize, Serialize};

/// The settings a [`DevicePolicy`] may take over from the helpers (which
/// report them unsupported, as a user cannot enforce them).
pub const DEVICE_SETTINGS: &[&str] = &["printing_disabled", "removable_media_disabled"];

/// What the service enforces system-wide for the session users.
pub trait DevicePolicy: Send {
    /// Puts `policy`'s device settings in force for `users` (the users of the
    /// graphical sessions now), undoing what no longer applies; returns the
    /// settings of [`DEVICE_SETTINGS`] that are asked for and not enforced
    /// here (e.g. no CUPS).
    fn enforce(&mut self, policy: &Policy, users: &[String]) -> Vec<String>;
}

/// Where the Linux service enforces device settings (`[devices]` in
/// `agent.toml`); the defaults are the system's, tests point them at a
/// private CUPS and temporary directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevicePaths {
    /// `lpadmin`.
    pub lpadmin: PathBuf,
    /// `lpstat`.
    pub lpstat: PathBuf,
    /// The CUPS server (`-h`: a socket path or host:port); `None`: the default.
    pub cups_server: Option<String>,
    /// CUPS's access log, read for jobs refused to the session users (so the
    /// student is told on screen, not only by the print dialog).
    pub cups_access_log: PathBuf,
    /// The polkit rules directory the media rule is written to.
    pub polkit_rules_dir: PathBuf,
    /// usbguard's rules directory (`RuleFolder`); used only where it exists.
    pub usbguard_rules_dir: PathBuf,
}

impl Default for DevicePaths {
    fn default() -> Self {
        DevicePaths {
            lpadmin: "/usr/sbin/lpadmin".into(),
            lpstat: "/usr/bin/lpstat".into(),
            cups_server: None,
            cups_access_log: "/var/log/cups/access_log".into(),
            polkit_rules_dir: "/etc/polkit-1/rules.d".into(),
            usbguard_rules_dir: "/etc/usbguard/rules.d".into(),
        }
    }
}
