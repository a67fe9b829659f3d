//! Printing and removable media for the session users, enforced by the root
//! service ([`DevicePolicy`]).
//!
//! - **Printing** through CUPS: each printer's user list gets the session
//!   users denied (`lpadmin -p P -u deny:…`). The list each printer had before
//!   is saved in `printing.json` in the state directory *before* the first
//!   change, and put back exactly when the policy ends, also after a crash
//!   (the service re-applies the stored policy at start, which restores when
//!   printing is no longer disabled). CUPS refuses a denied user's job with
//!   "Not allowed to print."; the service also watches CUPS's access log for
//!   refused jobs and puts a message on the session's screen.
//! - **Removable media**: a polkit rule denying udisks2 mounts
//!   (`org.freedesktop.udisks2.filesystem-mount*`) to the session users, and,
//!   where usbguard is installed, a rule blocking USB mass storage
//!   (interface class 08); both files are removed when the policy ends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lectern_proto::Policy;
use serde::{Deserialize, Serialize};

use crate::service::{DevicePaths, DevicePolicy};

/// File name of the polkit rule (before most distribution rules, which
/// polkit reads in lexical order; the first rule with an answer wins).
pub const POLKIT_RULE: &str = "10-lectern-media.rules";
/// File name of the usbguard rule.
pub const USBGUARD_RULE: &str = "10-lectern-media.conf";
/// The usbguard rule: any device with a mass-storage interface is blocked.
pub const USBGUARD_BLOCK: &str = "block with-interface one-of { 08:*:* }";
/// The allow list a printer gets when every user it allowed is a session
/// user: CUPS reads an empty list as "everyone", so a name no account has.
pub const NOBODY: &str = "lectern-printing-disabled";
/// What the student sees when CUPS refused their job.
pub const PRINT_REFUSED: &str = "Printing is turned off on this computer by your school.";
/// Longest a CUPS tool may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// A printer's user list, as CUPS keeps it (one of allow or deny).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserList {
    /// Everyone may print.
    All,
    /// Only these users may print.
    Allow(Vec<String>),
    /// Everyone but these users may print.
    Deny(Vec<String>),
}

impl UserList {
    /// The `lpadmin -u` argument that sets this list.
    fn arg(&self) -> String {
        match self {
            UserList::All => "allow:all".into(),
            UserList::Allow(u) => format!("allow:{}", u.join(",")),
            UserList::Deny(u) => format!("deny:{}", u.join(",")),
        }
    }

    /// This list with `users` denied as well.
    fn without(&self, users: &BTreeSet<String>) -> UserList {
        match self {
            UserList::All => UserList::Deny(users.iter().cloned().collect()),
            UserList::Deny(d) => {
                let all: BTreeSet<String> = d.iter().chain(users).cloned().collect();
                UserList::Deny(all.into_iter().collect())
            }
            UserList::Allow(a) => {
                let left: Vec<String> = a.iter().filter(|u| !users.contains(*u)).cloned().collect();
                UserList::Allow(if left.is_empty() {
                    vec![NOBODY.into()]
                } else {
                    left
                })
            }
        }
    }
}

/// Reads the user list from `lpstat -l -p P` output (C locale).
pub fn parse_user_list(lpstat: &str) -> UserList {
    let mut lines = lpstat.lines().map(str::trim);
    while let Some(l) = lines.next() {
        let allow = match l {
            "Users allowed:" => true,
            "Users denied:" => false,
            _ => continue,
        };
        // The names follow, one a line, until the next "Heading:" line.
        let names: Vec<String> = lines
            .by_ref()
            .take_while(|l| !l.ends_with(':'))
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        return match (allow, names.as_slice()) {
            (true, [one]) if one == "(all)" => UserList::All,
            (false, [one]) if one == "(none)" => UserList::All,
            (true, _) => UserList::Allow(names),
            (false, _) => UserList::Deny(names),
        };
    }
    UserList::All
}

/// Printer names from `lpstat -p` output (C locale).
pub fn parse_printers(lpstat: &str) -> Vec<String> {
    lpstat
        .lines()
        .filter_map(|l| l.strip_prefix("printer "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// A user name CUPS's list syntax can carry (no separators or quotes).
fn listable(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 256
        && !user
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '\'' | '"' | '\\'))
}

/// What is saved in `printing.json`: each changed printer's list before
/// Lectern changed it.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    original: BTreeMap<String, UserList>,
}

/// The CUPS side.
struct Printing {
    paths: DevicePaths,
    state_file: PathBuf,
    saved: Saved,
    /// The list each printer was last given (so nothing is rewritten when
    /// nothing changed).
    applied: BTreeMap<String, UserList>,
    /// Whether jobs refused now come from our denial (for the log watcher).
    active: Arc<AtomicBool>,
}

impl Printing {
    fn new(paths: DevicePaths, state_dir: &Path) -> Self {
        let state_file = state_dir.join("printing.json");
        let saved = std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Printing {
            paths,
            state_file,
            saved,
            applied: BTreeMap::new(),
            active: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs a CUPS tool against the configured server, in the C locale (its
    /// output is parsed), with a deadline.
    fn tool(&self, program: &Path, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new(program);
        if let Some(h) = &self.paths.cups_server {
            cmd.args(["-h", h]);
        }
        cmd.args(args).env("LC_ALL", "C");
        run(cmd).map_err(|e| format!("{}: {e}", program.display()))
    }

    fn save(&self) -> Result<(), String> {
        if self.saved.original.is_empty() {
            return match std::fs::remove_file(&self.state_file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            };
        }
        let bytes = serde_json::to_vec_pretty(&self.saved).map_err(|e| e.to_string())?;
        write_atomically(&self.state_file, &bytes)
    }

    fn set(&mut self, printer: &str, list: &UserList) -> Result<(), String> {
        if self.applied.get(printer) == Some(list) {
            return Ok(());
        }
        self.tool(&self.paths.lpadmin, &["-p", printer, "-u", &list.arg()])?;
        self.applied.insert(printer.to_string(), list.clone());
        Ok(())
    }

    /// Denies `users` on every printer (or, with none, restores).
    fn enforce(&mut self, users: &BTreeSet<String>) -> Result<(), String> {
        if users.is_empty() {
            return self.restore();
        }
        let printers = parse_printers(&self.tool(&self.paths.lpstat, &["-p"])?);
        for p in &printers {
            if !self.saved.original.contains_key(p) {
                let before = parse_user_list(&self.tool(&self.paths.lpstat, &["-l", "-p", p])?);
                self.saved.original.insert(p.clone(), before);
                // Saved before the change, so a crash between the two still
                // knows what to put back.
                self.save()?;
            }
            let list = self.saved.original[p].without(users);
            self.set(p, &list)?;
        }
        self.active.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Puts every saved list back and forgets it; a printer deleted
    /// meanwhile is forgotten too.
    fn restore(&mut self) -> Result<(), String> {
        self.active.store(false, Ordering::Relaxed);
        if self.saved.original.is_empty() {
            return Ok(());
        }
        let existing = parse_printers(&self.tool(&self.paths.lpstat, &["-p"])?);
        let mut failed = Vec::new();
        for (p, list) in std::mem::take(&mut self.saved.original) {
            if !existing.contains(&p) {
                continue;
            }
            self.applied.remove(&p);
            if let Err(e) = self.set(&p, &list) {
                failed.push(e);
                self.saved.original.insert(p, list);
            }
        }
        self.save()?;
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }
}

/// The polkit and usbguard side.
struct Media {
    paths: DevicePaths,
}

/// The polkit rule denying udisks2 mounts to `users`.
pub fn polkit_rule(users: &BTreeSet<String>) -> String {
    let list = serde_json::to_string(&users.iter().collect::<Vec<_>>()).unwrap_or_default();
    format!(
        "// Written by lectern-agent: removable media are disabled by school policy.\n\
         // Removed when the policy ends; do not edit.\n\
         polkit.addRule(function(action, subject) {{\n\
         \x20   var users = {list};\n\
         \x20   if (action.id.indexOf(\"org.freedesktop.udisks2.filesystem-mount\") === 0 &&\n\
         \x20       users.indexOf(subject.user) >= 0) {{\n\
         \x20       return polkit.Result.NO;\n\
         \x20   }}\n\
         }});\n"
    )
}

impl Media {
    fn enforce(&mut self, users: &BTreeSet<String>) -> Result<(), String> {
        let rule = self.paths.polkit_rules_dir.join(POLKIT_RULE);
        let usb_dir = &self.paths.usbguard_rules_dir;
        let usb = usb_dir.is_dir().then(|| usb_dir.join(USBGUARD_RULE));
        if users.is_empty() {
            remove(&rule)?;
            return usb.map_or(Ok(()), |u| remove(&u));
        }
        if !self.paths.polkit_rules_dir.is_dir() {
            return Err(format!(
                "{} does not exist (no polkit)",
                self.paths.polkit_rules_dir.display()
            ));
        }
        write_if_changed(&rule, polkit_rule(users).as_bytes())?;
        if let Some(u) = usb {
            let text = format!("# Written by lectern-agent: USB mass storage is blocked by school policy.\n{USBGUARD_BLOCK}\n");
            write_if_changed(&u, text.as_bytes())?;
        }
        Ok(())
    }
}

/// The Linux [`DevicePolicy`].
pub struct LinuxDevices {
    printing: Printing,
    media: Media,
}

impl LinuxDevices {
    /// Enforces with `paths`, keeping what it changed in `state_dir`.
    pub fn new(paths: DevicePaths, state_dir: &Path) -> Self {
        LinuxDevices {
            printing: Printing::new(paths.clone(), state_dir),
            media: Media { paths },
        }
    }

    /// Watches CUPS's access log on a thread of its own and calls `refused`
    /// when a job was refused while printing is disabled. The thread sleeps in
    /// inotify (no polling) and ends with the process.
    pub fn watch_refusals(&self, refused: impl Fn() + Send + 'static) {
        let log = self.printing.paths.cups_access_log.clone();
        let active = self.printing.active.clone();
        std::thread::Builder::new()
            .name("lectern-cups-log".into())
            .spawn(move || watch_log(&log, &active, refused))
            .ok();
    }
}

impl DevicePolicy for LinuxDevices {
    fn enforce(&mut self, policy: &Policy, users: &[String]) -> Vec<String> {
        // CUPS's list syntax cannot carry every name; polkit's JSON can.
        let listed: BTreeSet<String> = users.iter().filter(|u| listable(u)).cloned().collect();
        let users: BTreeSet<String> = users
            .iter()
            // Line separators end a string literal in ES5 engines (duktape).
            .filter(|u| {
                !u.is_empty()
                    && !u
                        .chars()
                        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
            })
            .cloned()
            .collect();
        let none = BTreeSet::new();
        let mut unsupported = Vec::new();
        let print_users = if policy.printing_disabled {
            &listed
        } else {
            &none
        };
        if let Err(e) = self.printing.enforce(print_users) {
            tracing::warn!("printing: {e}");
            if policy.printing_disabled {
                unsupported.push("printing_disabled".to_string());
            }
        }
        if policy.printing_disabled && listed.len() < users.len() {
            tracing::warn!("printing: a session user's name cannot be put in a CUPS list");
            if !unsupported.iter().any(|u| u == "printing_disabled") {
                unsupported.push("printing_disabled".to_string());
            }
        }
        let media_users = if policy.removable_media_disabled {
            &users
        } else {
            &none
        };
        if let Err(e) = self.media.enforce(media_users) {
            tracing::warn!("removable media: {e}");
            if policy.removable_media_disabled {
                unsupported.push("removable_media_disabled".to_string());
            }
        }
        unsupported
    }
}

/// Lines of a CUPS access log that record a refused job.
pub fn refused_jobs(lines: &str) -> usize {
    lines
        .lines()
        .filter(|l| {
            l.contains("\"POST /printers/")
                && l.ends_with("client-error-not-authorized")
                && (l.contains(" Print-Job ") || l.contains(" Create-Job "))
        })
        .count()
}

fn watch_log(log: &Path, active: &AtomicBool, refused: impl Fn()) {
    let Some(dir) = log.parent() else { return };
    let Ok(inotify) = Inotify::watch(dir) else {
        // No CUPS logs here (or no CUPS): nothing to tell the student.
        tracing::info!(
            "not watching {}: refused print jobs are not shown",
            dir.display()
        );
        return;
    };
    let mut offset = file_len(log);
    loop {
        if !inotify.wait() {
            return;
        }
        let len = file_len(log);
        if len < offset {
            // Rotated: read the new file from its start.
            offset = 0;
        }
        let new = read_from(log, offset, len);
        offset = len;
        if active.load(Ordering::Relaxed) && refused_jobs(&new) > 0 {
            refused();
        }
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// At most 1 MiB of `p` from `from` (a burst beyond that is not worth reading).
fn read_from(p: &Path, from: u64, to: u64) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(p) {
        let start = from.max(to.saturating_sub(1 << 20));
        if f.seek(SeekFrom::Start(start)).is_ok() {
            let _ = f.take(to - start).read_to_end(&mut buf);
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// An inotify watch on a directory for written and created files.
struct Inotify(std::os::fd::OwnedFd);

impl Inotify {
    fn watch(dir: &Path) -> std::io::Result<Self> {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
        // SAFETY: plain syscalls; the fd is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        let mask = libc::IN_MODIFY | libc::IN_CREATE | libc::IN_MOVED_TO;
        // SAFETY: fd is valid and path is a NUL-terminated string.
        if unsafe { libc::inotify_add_watch(fd, path.as_ptr(), mask) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Inotify(owned))
    }

    /// Blocks until something in the directory changed; false on error.
    fn wait(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 4096];
        // SAFETY: reads into a buffer of the given length.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        n > 0
    }
}

fn remove(p: &Path) -> Result<(), String> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", p.display()))
        }
        _ => Ok(()),
    }
}

fn write_if_changed(p: &Path, bytes: &[u8]) -> Result<(), String> {
    if std::fs::read(p).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    write_atomically(p, bytes)
}

/// Writes `p` through a temporary file and a rename, so readers (polkit,
/// a restarting service) never see half a file. Mode 0644: polkitd reads it.
fn write_atomically(p: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = p.with_extension("lectern-tmp");
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, p)
    };
    write().map_err(|e| format!("cannot write {}: {e}", p.display()))
}

/// Runs `cmd`, returning its standard output, or its error output when it
/// fails or takes longer than [`TOOL_TIMEOUT`].
fn run(mut cmd: Command) -> Result<String, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + TOOL_TIMEOUT;
    loop {
        match child.try_wait().map_err(|e| e.to_string())? {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("timed out".into());
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_lists_are_read_from_lpstat() {
        let deny = "printer P1 is idle.\n\tAlerts: none\n\tUsers denied:\n\t\tamy\n\t\tcarl\n\tForms allowed:\n\t\t(none)\n";
        assert_eq!(
            parse_user_list(deny),
            UserList::Deny(vec!["amy".into(), "carl".into()])
        );
        let all = "printer P\n\tUsers allowed:\n\t\t(all)\n\tForms allowed:\n";
        assert_eq!(parse_user_list(all), UserList::All);
        let allow = "\tUsers allowed:\n\t\tamy\n\tForms allowed:\n";
        assert_eq!(parse_user_list(allow), UserList::Allow(vec!["amy".into()]));
        assert_eq!(
            parse_printers("printer P1 is idle.  enabled\nprinter P2 disabled\n"),
            ["P1", "P2"]
        );
    }

    #[test]
    fn denying_keeps_the_printers_own_list() {
        let users: BTreeSet<String> = ["amy".to_string()].into();
        assert_eq!(UserList::All.without(&users).arg(), "deny:amy");
        assert_eq!(
            UserList::Deny(vec!["zed".into()]).without(&users).arg(),
            "deny:amy,zed"
        );
        assert_eq!(
            UserList::Allow(vec!["amy".into(), "ben".into()])
                .without(&users)
                .arg(),
            "allow:ben"
        );
        // Only amy could print: now nobody can (an empty list would be everyone).
        assert_eq!(
            UserList::Allow(vec!["amy".into()]).without(&users).arg(),
            format!("allow:{NOBODY}")
        );
        assert!(!listable("a,b") && !listable("a b") && listable("DOMAIN@amy"));
    }

    #[test]
    fn refused_jobs_are_found_in_the_access_log() {
        let log = "localhost - - [x] \"POST /printers/P1 HTTP/1.1\" 200 345 Create-Job client-error-not-authorized\n\
                   localhost - - [x] \"POST /printers/P1 HTTP/1.1\" 200 345 Create-Job successful-ok\n\
                   localhost - - [x] \"POST /admin/ HTTP/1.1\" 200 1 CUPS-Add-Modify-Printer client-error-not-authorized\n";
        assert_eq!(refused_jobs(log), 1);
    }
}
