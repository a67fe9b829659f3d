//! `agent.toml` (`/etc/lectern/` on Linux, see [`crate::platform`]): how the agent service finds its server, enrolls
//! itself and finds the graphical sessions to serve. Placed before the package
//! is installed (by an image or config management), it lets a machine enroll
//! with no one at its keyboard.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The service's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Server as HOST:PORT; `None`: discover it.
    pub server: Option<String>,
    /// SHA-256 fingerprint of the server's certificate to pin.
    pub fingerprint: Option<String>,
    /// Trust the fingerprint a discovered server advertises (trusted networks only).
    pub trust_on_first_use: bool,
    /// File holding an enrollment token, read when not yet enrolled.
    pub token_file: PathBuf,
    /// The enrollment token itself, when the platform got it from
    /// elsewhere (the MSI's registry values on Windows); used before
    /// `token_file`. Never read from or written to `agent.toml`.
    #[serde(skip)]
    pub token: Option<String>,
    /// File holding the school code, read when not yet enrolled and no
    /// token is given.
    pub school_code_file: PathBuf,
    /// The school code itself, from the platform (the MSI's `SchoolCode`);
    /// used before `school_code_file`. Never read from or written to
    /// `agent.toml`.
    #[serde(skip)]
    pub school_code: Option<String>,
    /// Credential, stored policy and state.
    pub state_dir: PathBuf,
    /// Name to enroll under instead of the hostname.
    pub hostname: Option<String>,
    /// Desktop backend the helpers run.
    pub backend: BackendKind,
    /// Where graphical sessions come from.
    pub sessions: SessionSource,
    /// Sessions served when `sessions = "static"`.
    pub session: Vec<StaticSession>,
    /// Where the service listens: its Unix socket (a named pipe on Windows).
    pub socket: PathBuf,
    /// Seconds between looks for new or ended logind sessions, where
    /// neither logind's D-Bus signals nor its session files (inotify on
    /// `/run/systemd/sessions`) can be followed.
    pub session_poll_secs: u64,
    /// Where printing and removable media are enforced (Linux).
    pub devices: crate::service::DevicePaths,
    /// What the inventory is read from (`[inventory]`; `enabled = false`
    /// sends none).
    pub inventory: crate::inventory::InventoryRoots,
    /// The commands that shut down and restart the machine (`[power]`);
    /// log off ends the sessions through logind like the Log out command.
    pub power: PowerCommands,
}

/// The commands a power action runs, as program and arguments (no shell).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PowerCommands {
    /// Shut down (`systemctl poweroff`); empty: not offered.
    pub shutdown: Vec<String>,
    /// Restart (`systemctl reboot`); empty: not offered.
    pub restart: Vec<String>,
}

impl Default for PowerCommands {
    fn default() -> Self {
        PowerCommands {
            shutdown: vec!["systemctl".into(), "poweroff".into()],
            restart: vec!["systemctl".into(), "reboot".into()],
        }
    }
}

impl PowerCommands {
    /// Runs the command for `action` and waits for it; an error says why.
    pub fn run(&self, action: lectern_proto::power::PowerAction) -> Result<(), String> {
        use lectern_proto::power::PowerAction;
        let argv = match action {
            PowerAction::Shutdown => &self.shutdown,
            PowerAction::Restart => &self.restart,
            PowerAction::Logoff => return Err("log off is not a command".into()),
        };
        let Some((program, args)) = argv.split_first() else {
            return Err(format!("no {} command configured", action.as_str()));
        };
        let status = std::process::Command::new(program)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{program} failed: {status}"))
        }
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            server: None,
            fingerprint: None,
            trust_on_first_use: false,
            token_file: crate::platform::token_file(),
            token: None,
            school_code_file: crate::platform::school_code_file(),
            school_code: None,
            state_dir: crate::platform::state_dir(),
            hostname: None,
            backend: BackendKind::X11,
            sessions: SessionSource::Logind,
            session: Vec::new(),
            socket: crate::platform::service_endpoint(),
            session_poll_secs: 2,
            devices: Default::default(),
            inventory: Default::default(),
            power: Default::default(),
        }
    }
}

/// Which [`crate::Desktop`] the helpers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The X11 display of the session.
    X11,
    /// A synthetic desktop (tests, kiosks without a display).
    Headless,
}

/// Where the service learns of graphical sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionSource {
    /// systemd-logind (its D-Bus signals, else `loginctl`): every active or
    /// online local X11 user session.
    Logind,
    /// The `[[session]]` tables: fixed seats such as auto-login kiosks.
    Static,
}

/// A fixed graphical session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSession {
    /// X display, e.g. `:0`.
    pub display: String,
    /// User the session runs as.
    pub user: String,
    /// Xauthority file, if the display needs one.
    #[serde(default)]
    pub xauthority: Option<PathBuf>,
    /// Program (with arguments, no shell) that ends the session; default:
    /// every process of the user is asked to stop, then killed.
    #[serde(default)]
    pub logout_command: Option<Vec<String>>,
}

impl ServiceConfig {
    /// Reads and checks `path`; a missing file means all defaults.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let cfg: ServiceConfig =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        cfg.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        if self.sessions == SessionSource::Static {
            for s in &self.session {
                if !s.display.starts_with(':') || s.display[1..].parse::<f32>().is_err() {
                    return Err(format!(
                        "session display {:?} is not like \":0\"",
                        s.display
                    ));
                }
                if s.user.is_empty() || s.user == "root" {
                    return Err("a session's user must be a named, non-root user".into());
                }
            }
        } else if !self.session.is_empty() {
            return Err("[[session]] tables need sessions = \"static\"".into());
        }
        if self.fingerprint.is_none() && !self.trust_on_first_use && self.server.is_some() {
            return Err("server needs fingerprint (or trust_on_first_use = true)".into());
        }
        Ok(())
    }
}

/// Reads the enrollment token: the first non-empty, non-comment line of `path`.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the enrollment token {}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{} holds no token", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_static_lab_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        std::fs::write(
            &p,
            r#"server = "10.0.0.5:30016"
fingerprint = "ab"
backend = "headless"
sessions = "static"
[[session]]
display = ":5"
user = "student"
"#,
        )
        .unwrap();
        let c = ServiceConfig::load(&p).unwrap();
        assert_eq!(c.backend, BackendKind::Headless);
        assert_eq!(c.session[0].display, ":5");
        assert_eq!(c.state_dir, crate::platform::state_dir());
    }

    #[test]
    fn refuses_bad_configs_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        for (text, why) in [
            ("bogus = 1", "unknown field"),
            ("server = \"a:1\"", "fingerprint"),
            (
                "sessions = \"static\"\n[[session]]\ndisplay = \"0\"\nuser = \"x\"",
                "not like",
            ),
            (
                "sessions = \"static\"\n[[session]]\ndisplay = \":0\"\nuser = \"root\"",
                "non-root",
            ),
            ("[[session]]\ndisplay = \":0\"\nuser = \"x\"", "static"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = ServiceConfig::load(&p).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn token_file_skips_comments() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "# lab 3\n\n  tok-123  \n").unwrap();
        assert_eq!(read_token(&p).unwrap(), "tok-123");
        std::fs::write(&p, "# nothing\n").unwrap();
        assert!(read_token(&p).is_err());
    }
}
