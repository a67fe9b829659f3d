//! Finding the graphical sessions to serve: from systemd-logind (over the
//! system D-Bus, [`super::logind`], or with `loginctl` where the bus cannot be
//! reached) or from the `[[session]]` tables of `agent.toml`, with each
//! user's ids looked up in the system's user database.

use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::logind::SessionProps;
use crate::config::{ServiceConfig, SessionSource};
use crate::ipc::Account;
use crate::service::SessionInfo;

/// The account of `uid`, as peers and sessions are compared.
pub fn account_of(uid: u32) -> Account {
    Account(format!("uid {uid}"))
}

/// One graphical session that gets a helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Stable key: the logind id, or `static:<display>`.
    pub key: String,
    /// The session's user.
    pub user: UserIds,
    /// The same user as an [`Account`] ([`account_of`] its uid).
    pub account: Account,
    /// X display, e.g. `:0`.
    pub display: String,
    /// Xauthority file for the display, if any.
    pub xauthority: Option<PathBuf>,
    /// logind session id, for logout.
    pub logind_id: Option<String>,
    /// Configured logout program, for static sessions.
    pub logout_command: Option<Vec<String>>,
}

impl SessionInfo for Session {
    fn key(&self) -> &str {
        &self.key
    }

    fn user(&self) -> &str {
        &self.user.name
    }

    fn account(&self) -> &Account {
        &self.account
    }

    fn place(&self) -> &str {
        &self.display
    }

    fn end(&self) -> Result<(), String> {
        end_session(self)
    }
}

/// A user's name and ids from the user database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIds {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups (audio, video…), looked up before any fork.
    pub groups: Vec<u32>,
    /// Home directory.
    pub home: PathBuf,
}

/// Looks `name` up with `getpwnam_r` and `getgrouplist`.
pub fn lookup_user(name: &str) -> Option<UserIds> {
    let cname = CString::new(name).ok()?;
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the reads below.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if rc != 0 || out.is_null() {
        return None;
    }
    // SAFETY: getpwnam_r succeeded, so pw_dir points into `buf`.
    let home = unsafe { CStr::from_ptr(pwd.pw_dir) }
        .to_string_lossy()
        .into_owned();
    let mut groups = vec![0 as libc::gid_t; 64];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: `groups` has room for `n` entries; on overflow n is updated and rc is -1.
    let rc = unsafe { libc::getgrouplist(cname.as_ptr(), pwd.pw_gid, groups.as_mut_ptr(), &mut n) };
    groups.truncate(if rc < 0 { 0 } else { n as usize });
    if groups.is_empty() {
        groups.push(pwd.pw_gid);
    }
    Some(UserIds {
        name: name.to_string(),
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
        groups,
        home: home.into(),
    })
}

/// The sessions to serve now, looking with `loginctl` for logind's.
pub fn discover(cfg: &ServiceConfig) -> Vec<Session> {
    match cfg.sessions {
        SessionSource::Static => cfg
            .session
            .iter()
            .filter_map(|s| {
                let user = lookup_user(&s.user).or_else(|| {
                    tracing::warn!(user = %s.user, "no such user for session {}", s.display);
                    None
                })?;
                Some(Session {
                    key: format!("static:{}", s.display),
                    account: account_of(user.uid),
                    user,
                    display: s.display.clone(),
                    xauthority: s.xauthority.clone(),
                    logind_id: None,
                    logout_command: s.logout_command.clone(),
                })
            })
            .collect(),
        SessionSource::Logind => logind_sessions(),
    }
}

fn loginctl(args: &[&str]) -> Option<String> {
    let out = Command::new("loginctl").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Active local X11 sessions that logind knows of, from `loginctl`.
fn logind_sessions() -> Vec<Session> {
    let Some(list) = loginctl(&["list-sessions", "--no-legend", "--no-pager"]) else {
        return Vec::new();
    };
    let found: Vec<LogindSession> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|id| {
            let props = loginctl(&[
                "show-session",
                id,
                "-p",
                "Id",
                "-p",
                "Name",
                "-p",
                "Display",
                "-p",
                "Type",
                "-p",
                "State",
                "-p",
                "Remote",
                "-p",
                "Class",
                "-p",
                "Leader",
            ])?;
            parse_logind_session(&props)
        })
        .collect();
    from_logind(&found)
}

/// The sessions to serve for logind's usable ones (however they were
/// learnt): their users looked up, `XAUTHORITY` from each leader.
pub fn from_logind(found: &[LogindSession]) -> Vec<Session> {
    found
        .iter()
        .filter_map(|s| {
            let user = lookup_user(&s.name).or_else(|| {
                tracing::warn!(user = %s.name, "no such user for logind session {}", s.id);
                None
            })?;
            Some(Session {
                key: s.id.clone(),
                account: account_of(user.uid),
                user,
                display: s.display.clone(),
                xauthority: leader_xauthority(s.leader),
                logind_id: Some(s.id.clone()),
                logout_command: None,
            })
        })
        .collect()
}

/// One usable logind session, as `loginctl show-session` or the bus says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogindSession {
    /// Session id.
    pub id: String,
    /// User name.
    pub name: String,
    /// X display.
    pub display: String,
    /// Session leader pid.
    pub leader: u32,
}

/// Parses `show-session` output; `None` unless it is an active or online,
/// local, user-class X11 session with a display (the rule of
/// [`SessionProps::usable`], which the bus path uses too).
pub fn parse_logind_session(props: &str) -> Option<LogindSession> {
    let get = |k: &str| {
        props
            .lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .unwrap_or("")
            .trim()
            .to_string()
    };
    SessionProps {
        id: get("Id"),
        name: get("Name"),
        display: get("Display"),
        kind: get("Type"),
        remote: get("Remote") == "yes",
        active: get("Active") == "yes",
        class: get("Class"),
        state: get("State"),
        leader: get("Leader").parse().unwrap_or(0),
        ..Default::default()
    }
    .usable()
}

/// `XAUTHORITY` from the session leader's environment.
fn leader_xauthority(pid: u32) -> Option<PathBuf> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(b"XAUTHORITY="))
        .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
}

/// Ends a graphical session: through logind when it has a logind id, with
/// the configured program, or by stopping every process of its user.
fn end_session(s: &Session) -> Result<(), String> {
    let argv: Vec<String> = match (&s.logind_id, &s.logout_command) {
        (Some(id), _) => vec!["loginctl".into(), "terminate-session".into(), id.clone()],
        (None, Some(cmd)) => cmd.clone(),
        (None, None) => return stop_user_processes(s.user.uid),
    };
    let (prog, args) = argv.split_first().ok_or("empty logout command")?;
    let status = std::process::Command::new(prog)
        .args(args)
        .status()
        .map_err(|e| format!("cannot run {prog}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{prog} failed: {status}"))
    }
}

/// SIGTERM to every process of `uid`, then SIGKILL to those still there after
/// three seconds. Never for root.
fn stop_user_processes(uid: u32) -> Result<(), String> {
    if uid == 0 {
        return Err("refusing to stop root's processes".into());
    }
    let pids = || -> Vec<i32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter_map(|e| {
                let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                let status = std::fs::read_to_string(e.path().join("status")).ok()?;
                let real_uid: u32 = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                (real_uid == uid).then_some(pid)
            })
            .collect()
    };
    let signal_all = |sig| {
        for pid in pids() {
            // SAFETY: kill has no memory effects; a vanished pid is just ESRCH.
            unsafe { libc::kill(pid, sig) };
        }
    };
    signal_all(libc::SIGTERM);
    for _ in 0..30 {
        if pids().is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal_all(libc::SIGKILL);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logind_output_keeps_only_local_active_x11_user_sessions() {
        let x11 = "Id=4\nName=amy\nDisplay=:0\nType=x11\nState=active\nRemote=no\nClass=user\nLeader=812\n";
        assert_eq!(
            parse_logind_session(x11),
            Some(LogindSession {
                id: "4".into(),
                name: "amy".into(),
                display: ":0".into(),
                leader: 812
            })
        );
        for (from, to) in [
            ("Type=x11", "Type=tty"),
            ("State=active", "State=closing"),
            ("Remote=no", "Remote=yes"),
            ("Class=user", "Class=greeter"),
            ("Display=:0", "Display="),
        ] {
            assert_eq!(parse_logind_session(&x11.replace(from, to)), None, "{to}");
        }
    }

    #[test]
    fn users_are_found_with_their_groups() {
        let root = lookup_user("root").expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0));
        assert_eq!(lookup_user("no-such-user-lectern"), None);
        assert_eq!(lookup_user("bad\0name"), None);
    }
}
