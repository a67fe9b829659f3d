//! The Windows service's rules that need no Windows: pipe names, the access
//! lists of pipes and the state directory, which sessions get a helper, how
//! the MSI's registry values become configuration, which parents may start a
//! native host. Compiled on every platform so the Linux test run checks them.

use crate::config::ServiceConfig;

/// The LocalSystem account's SID: the service's, and the only one a helper
/// accepts at the other end of its pipe.
pub const SYSTEM_SID: &str = "S-1-5-18";

/// The built-in Administrators group's SID (may ask for `status`).
pub const ADMINISTRATORS_SID: &str = "S-1-5-32-544";

/// The pipe for `status`: SYSTEM and Administrators only.
pub const CONTROL_PIPE: &str = r"\\.\pipe\lectern-agent";

/// The service's name in the service control manager.
pub const SERVICE_NAME: &str = "LecternAgent";

/// Where the MSI writes its public properties (under HKEY_LOCAL_MACHINE).
pub const REGISTRY_KEY: &str = r"SOFTWARE\Lectern\Agent";

/// The state directory's access list: full control for SYSTEM and
/// Administrators, inherited by every file and folder in it, and protected
/// (nothing inherited from `%ProgramData%`, whose ACL lets Users read).
pub const STATE_DIR_SDDL: &str = "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)";

/// The control pipe's access list.
pub const CONTROL_PIPE_SDDL: &str = "D:P(A;;GA;;;SY)(A;;GA;;;BA)";

/// The pipe of Windows session `id`, where its helper and native hosts connect.
pub fn session_pipe(id: u32) -> String {
    format!(r"\\.\pipe\lectern-agent-{id}")
}

/// A session pipe's access list: SYSTEM and the session's user only. `None`
/// for anything that is not a plain SID (nothing else may reach the SDDL).
pub fn session_pipe_sddl(user_sid: &str) -> Option<String> {
    is_sid(user_sid).then(|| format!("D:P(A;;GA;;;SY)(A;;GA;;;{user_sid})"))
}

/// Whether `s` is a SID in string form: `S-1-` then dash-separated numbers.
pub fn is_sid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("S-1-") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('-').collect();
    parts.len() <= 16
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// WTS connect states (`WTS_CONNECTSTATE_CLASS`) whose session gets a
/// helper: active (someone at it) and connected (a user logged on, its
/// console or remote connection attached).
pub fn serves_state(state: i32) -> bool {
    const WTS_ACTIVE: i32 = 0;
    const WTS_CONNECTED: i32 = 1;
    matches!(state, WTS_ACTIVE | WTS_CONNECTED)
}

/// What a `SERVICE_CONTROL_SESSIONCHANGE` means for the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    /// Sessions may have come or gone: look again now.
    Rescan,
    /// The session's screen was locked (recorded, helper kept).
    Locked,
    /// The session's screen was unlocked.
    Unlocked,
    /// Nothing to do.
    Ignore,
}

/// Maps a session-change reason (`WTS_SESSION_LOGON`, … as raw numbers) to
/// what the supervisor does.
pub fn session_change(reason: u32) -> SessionChange {
    match reason {
        // console connect/disconnect, remote connect/disconnect, logon,
        // logoff, create, terminate: the set of sessions with a user changed.
        1..=6 | 10 | 11 => SessionChange::Rescan,
        7 => SessionChange::Locked,
        8 => SessionChange::Unlocked,
        _ => SessionChange::Ignore,
    }
}

/// The MSI's public properties, as read from [`REGISTRY_KEY`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// `Server` (SERVER): HOST:PORT.
    pub server: Option<String>,
    /// `Fingerprint` (FINGERPRINT).
    pub fingerprint: Option<String>,
    /// `Token` (TOKEN): an enrollment token.
    pub token: Option<String>,
    /// `SchoolCode` (SCHOOL_CODE): the school's code, used when there is no
    /// token.
    pub school_code: Option<String>,
}

impl RegistryConfig {
    /// Applies the registry's values over `agent.toml`'s: an installer's
    /// properties are the newer word. Empty values count as absent (an MSI
    /// property left blank still writes its value).
    pub fn apply(self, cfg: &mut ServiceConfig) {
        let given = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        if let Some(s) = given(self.server) {
            cfg.server = Some(s);
        }
        if let Some(f) = given(self.fingerprint) {
            cfg.fingerprint = Some(f);
        }
        if let Some(t) = given(self.token) {
            cfg.token = Some(t);
        }
        if let Some(c) = given(self.school_code) {
            cfg.school_code = Some(c);
        }
    }
}

/// Whether a helper, native host or `status` may talk to the pipe server
/// running as `server_sid`: only LocalSystem; under Wine (`wine`), where
/// every process runs as one account, also a server of our own account
/// (`own_sid`).
pub fn server_account_ok(server_sid: &str, wine: bool, own_sid: Option<&str>) -> bool {
    server_sid == SYSTEM_SID || (wine && own_sid == Some(server_sid))
}

/// Browsers (executable names, lower case) that may start the native host.
pub const BROWSERS: &[&str] = &[
    "chrome.exe",
    "msedge.exe",
    "chromium.exe",
    "brave.exe",
    "vivaldi.exe",
    "opera.exe",
];

/// Whether `exe` (a path or name) is one of [`BROWSERS`].
pub fn is_browser(exe: &str) -> bool {
    let name = exe.rsplit(['\\', '/']).next().unwrap_or(exe).to_lowercase();
    BROWSERS.contains(&name.as_str())
}

/// The command line of a helper for session `id`, as `CreateProcess` wants
/// it: the program quoted (it lives under `Program Files`).
pub fn helper_command_line(exe: &str, id: u32) -> String {
    format!("\"{exe}\" helper --session {id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_names_and_acls() {
        assert_eq!(session_pipe(3), r"\\.\pipe\lectern-agent-3");
        assert_eq!(
            session_pipe_sddl("S-1-5-21-1004336348-1177238915-682003330-1001").as_deref(),
            Some("D:P(A;;GA;;;SY)(A;;GA;;;S-1-5-21-1004336348-1177238915-682003330-1001)")
        );
        // Nothing but a SID reaches the SDDL: no extra ACEs by way of a name.
        for bad in ["", "S-1-", "WD", "S-1-5)(A;;GA;;;WD", "S-1-5-x", "s-1-5-18"] {
            assert_eq!(session_pipe_sddl(bad), None, "{bad}");
        }
        assert!(is_sid(SYSTEM_SID) && is_sid(ADMINISTRATORS_SID));
        assert!(STATE_DIR_SDDL.starts_with("D:P") && !STATE_DIR_SDDL.contains(";WD)"));
    }

    #[test]
    fn only_sessions_with_a_user_get_helpers() {
        // WTSActive, WTSConnected; not ConnectQuery, Shadow, Disconnected,
        // Idle, Listen, Reset, Down, Init.
        assert!(serves_state(0) && serves_state(1));
        for s in 2..=9 {
            assert!(!serves_state(s), "{s}");
        }
    }

    #[test]
    fn session_changes_map_to_actions() {
        assert_eq!(session_change(5), SessionChange::Rescan); // logon
        assert_eq!(session_change(6), SessionChange::Rescan); // logoff
        assert_eq!(session_change(1), SessionChange::Rescan); // console connect
        assert_eq!(session_change(2), SessionChange::Rescan); // console disconnect
        assert_eq!(session_change(7), SessionChange::Locked);
        assert_eq!(session_change(8), SessionChange::Unlocked);
        assert_eq!(session_change(9), SessionChange::Ignore); // remote control
    }

    #[test]
    fn registry_values_override_the_file_and_blanks_do_not() {
        let mut cfg = ServiceConfig {
            server: Some("old:1".into()),
            fingerprint: Some("aa".into()),
            ..Default::default()
        };
        RegistryConfig {
            server: Some(" 10.0.0.5:30016 ".into()),
            fingerprint: Some(String::new()),
            token: None,
            school_code: Some("LAB-42".into()),
        }
        .apply(&mut cfg);
        assert_eq!(cfg.server.as_deref(), Some("10.0.0.5:30016"));
        assert_eq!(cfg.fingerprint.as_deref(), Some("aa"));
        assert_eq!(cfg.token, None);
        assert_eq!(cfg.school_code.as_deref(), Some("LAB-42"));
        RegistryConfig {
            token: Some("tok".into()),
            school_code: Some("LAB-42".into()),
            ..Default::default()
        }
        .apply(&mut cfg);
        assert_eq!(cfg.token.as_deref(), Some("tok"));
        assert_eq!(cfg.school_code.as_deref(), Some("LAB-42"));
        // A token beats a school code when registering.
        let (how, _) = crate::service::registration(&cfg).unwrap();
        assert_eq!(how, crate::Registration::Token("tok".into()));
    }

    #[test]
    fn helpers_talk_only_to_local_system() {
        let me = "S-1-5-21-1-2-3-1001";
        assert!(server_account_ok(SYSTEM_SID, false, Some(me)));
        // A user's look-alike pipe (after a service crash) is refused on Windows…
        assert!(!server_account_ok(me, false, Some(me)));
        assert!(!server_account_ok("S-1-5-21-1-2-3-1002", false, Some(me)));
        // …and under Wine only our own account passes (Wine has no others).
        assert!(server_account_ok(me, true, Some(me)));
        assert!(!server_account_ok("S-1-5-21-1-2-3-1002", true, Some(me)));
        assert!(!server_account_ok(me, true, None));
    }

    #[test]
    fn browsers_and_command_lines() {
        assert!(is_browser(
            r"C:\Program Files\Google\Chrome\Application\chrome.exe"
        ));
        assert!(is_browser("MSEDGE.EXE"));
        assert!(!is_browser(r"C:\Windows\System32\cmd.exe"));
        assert!(!is_browser("powershell.exe"));
        assert_eq!(
            helper_command_line(r"C:\Program Files\Lectern\lectern-agent.exe", 2),
            r#""C:\Program Files\Lectern\lectern-agent.exe" helper --session 2"#
        );
    }
}
