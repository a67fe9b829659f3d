//! Printing and removable media enforced by the Linux service for the
//! session users: a real cupsd (its own configuration, spool and socket in a
//! temporary directory; the system's CUPS is never touched) refuses `lp` from
//! a denied user while the policy is on, and every printer's user list is
//! back exactly as it was when the policy ends, also after a restart; the
//! polkit rule is evaluated by a JavaScript engine (node) as polkitd would,
//! and the usbguard rule is checked with usbguard's own rule parser.
//!
//! Not exercised here (the test machines have no udev, USB bus, D-Bus system
//! bus or polkitd): a real udisks2 mount refused by polkitd, and usbguard-daemon
//! blocking a plugged device.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lectern_agent::ipc::Account;
use lectern_agent::linux::devices::{self, LinuxDevices};
use lectern_agent::service::{
    DevicePaths, DevicePolicy, Expected, Registry, ServiceDesktop, SessionInfo,
};
use lectern_agent::Desktop;
use lectern_proto::Policy;

const CUPSD: &str = "/usr/sbin/cupsd";

/// A private cupsd listening only on a Unix socket in its directory.
struct Cups {
    dir: tempfile::TempDir,
    child: Child,
}

impl Cups {
    fn start() -> Option<Cups> {
        if !Path::new(CUPSD).exists() {
            eprintln!("SKIPPED: no {CUPSD} (install cups)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // cupsd runs filters and backends as `lp`, which must reach the spool.
        std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        for sub in ["spool", "cache", "state", "log", "tmp"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let p = d.display();
        std::fs::write(
            d.join("cupsd.conf"),
            format!(
                "Listen {p}/cups.sock\nLogLevel info\nWebInterface No\nBrowsing No\n\
                 <Location />\n  Order allow,deny\n  Allow all\n</Location>\n\
                 <Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("cups-files.conf"),
            format!(
                "ServerRoot {p}\nRequestRoot {p}/spool\nCacheDir {p}/cache\nStateDir {p}/state\n\
                 TempDir {p}/tmp\nServerBin /usr/lib/cups\nDataDir /usr/share/cups\nFileDevice Yes\n\
                 User lp\nGroup lp\nSystemGroup root\nPrintcap {p}/printcap\nErrorLog {p}/log/error_log\n\
                 AccessLog {p}/log/access_log\nPageLog {p}/log/page_log\n"
            ),
        )
        .unwrap();
        let child = Command::new(CUPSD)
            .arg("-f")
            .arg("-c")
            .arg(d.join("cupsd.conf"))
            .arg("-s")
            .arg(d.join("cups-files.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let cups = Cups { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cups
            .tool("lpstat", &["-r"])
            .is_ok_and(|o| o.contains("is running"))
        {
            assert!(Instant::now() < deadline, "cupsd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(cups)
    }

    fn socket(&self) -> String {
        self.dir.path().join("cups.sock").display().to_string()
    }

    /// Runs a CUPS client tool against this cupsd; stdout, or stderr on failure.
    fn tool(&self, tool: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(tool)
            .args(["-h", &self.socket()])
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn add_printer(&self, name: &str, users: Option<&str>) {
        self.tool("lpadmin", &["-p", name, "-E", "-v", "file:///dev/null"])
            .unwrap();
        if let Some(u) = users {
            self.tool("lpadmin", &["-p", name, "-u", u]).unwrap();
        }
    }

    /// `user` prints a small file on `printer`.
    fn print(&self, user: &str, printer: &str) -> Result<String, String> {
        let file = self.dir.path().join("page.txt");
        std::fs::write(&file, "a page\n").unwrap();
        self.tool(
            "lp",
            &["-U", user, "-d", printer, &file.display().to_string()],
        )
    }

    /// The user-list part of `lpstat -l -p printer`.
    fn users(&self, printer: &str) -> String {
        let out = self.tool("lpstat", &["-l", "-p", printer]).unwrap();
        let start = out.find("Users ").expect("lpstat shows the user list");
        let end = out[start..].find("Forms").unwrap();
        out[start..start + end].to_string()
    }

    fn paths(&self, media: &Path) -> DevicePaths {
        DevicePaths {
            lpadmin: "lpadmin".into(),
            lpstat: "lpstat".into(),
            cups_server: Some(self.socket()),
            cups_access_log: self.dir.path().join("log/access_log"),
            polkit_rules_dir: media.join("polkit"),
            usbguard_rules_dir: media.join("usbguard"),
        }
    }
}

impl Drop for Cups {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn policy(printing: bool, media: bool) -> Policy {
    Policy {
        printing_disabled: printing,
        removable_media_disabled: media,
        ..Policy::default()
    }
}

fn users(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn printing_is_refused_to_the_session_user_and_every_list_comes_back_exactly() {
    let Some(cups) = Cups::start() else { return };
    cups.add_printer("Open", None);
    cups.add_printer("DenyZed", Some("deny:zed"));
    cups.add_printer("OnlyAmyBen", Some("allow:amy,ben"));
    cups.add_printer("OnlyAmy", Some("allow:amy"));
    let printers = ["Open", "DenyZed", "OnlyAmyBen", "OnlyAmy"];
    let before: Vec<String> = printers.iter().map(|p| cups.users(p)).collect();
    let state = tempfile::tempdir().unwrap();
    let media = tempfile::tempdir().unwrap();
    let mut d = LinuxDevices::new(cups.paths(media.path()), state.path());
    let (tx, refused) = mpsc::channel();
    d.watch_refusals(move || {
        let _ = tx.send(());
    });

    assert!(d.enforce(&policy(true, false), &users(&["amy"])).is_empty());
    for p in printers {
        let e = cups.print("amy", p).unwrap_err();
        assert!(e.contains("Not allowed to print"), "{p}: {e}");
    }
    cups.print("ben", "Open").unwrap();
    cups.print("ben", "OnlyAmyBen").unwrap();
    cups.print("ben", "OnlyAmy").unwrap_err();
    cups.print("zed", "DenyZed").unwrap_err();
    refused
        .recv_timeout(Duration::from_secs(60))
        .expect("the refused job was seen in the access log");
    assert!(state.path().join("printing.json").exists());

    // Ben signs in instead: amy prints again, ben may not.
    assert!(d.enforce(&policy(true, false), &users(&["ben"])).is_empty());
    cups.print("amy", "Open").unwrap();
    cups.print("ben", "Open").unwrap_err();

    // The service restarts (a crash) and the stored policy no longer
    // disables printing: the saved lists come back exactly.
    drop(d);
    let mut d = LinuxDevices::new(cups.paths(media.path()), state.path());
    assert!(d
        .enforce(&policy(false, false), &users(&["ben"]))
        .is_empty());
    let after: Vec<String> = printers.iter().map(|p| cups.users(p)).collect();
    assert_eq!(before, after);
    assert!(!state.path().join("printing.json").exists());
    cups.print("amy", "Open").unwrap();
    cups.print("ben", "Open").unwrap();
    cups.print("amy", "OnlyAmy").unwrap();
    // Refusals while the policy is off are CUPS's own business.
    cups.print("zed", "DenyZed").unwrap_err();
    std::thread::sleep(Duration::from_millis(300));
    while refused.try_recv().is_ok() {}
}

#[test]
fn without_cups_printing_is_reported_not_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let paths = DevicePaths {
        cups_server: Some(dir.path().join("no-cups.sock").display().to_string()),
        lpadmin: "lpadmin".into(),
        lpstat: "lpstat".into(),
        polkit_rules_dir: dir.path().into(),
        usbguard_rules_dir: dir.path().join("none"),
        cups_access_log: dir.path().join("access_log"),
    };
    let mut d = LinuxDevices::new(paths, dir.path());
    assert_eq!(
        d.enforce(&policy(true, true), &users(&["amy"])),
        ["printing_disabled"]
    );
    // Off asks nothing of CUPS.
    assert!(d
        .enforce(&policy(false, false), &users(&["amy"]))
        .is_empty());
}

/// Runs the polkit rule in node with a stand-in `polkit` object, as polkitd's
/// JavaScript engine would, and returns its answer for each (action, user).
fn polkit_answers(rule: &Path, cases: &[(&str, &str)]) -> Option<Vec<String>> {
    let script = format!(
        "const rules = []; const polkit = {{ Result: {{ NO: 'no', YES: 'yes' }}, addRule: (f) => rules.push(f) }};\n\
         eval(require('fs').readFileSync({path}, 'utf8'));\n\
         for (const [id, user] of {cases}) {{ console.log(String(rules[0]({{ id }}, {{ user }}))); }}\n",
        path = serde_json::to_string(&rule.display().to_string()).unwrap(),
        cases = serde_json::to_string(cases).unwrap(),
    );
    let out = Command::new("node").arg("-e").arg(script).output().ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn removable_media_rules_are_written_for_the_session_users_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path();
    std::fs::create_dir(media.join("polkit")).unwrap();
    std::fs::create_dir(media.join("usbguard")).unwrap();
    let paths = DevicePaths {
        // No CUPS needed: printing stays off throughout.
        cups_server: Some(media.join("no-cups.sock").display().to_string()),
        lpadmin: "lpadmin".into(),
        lpstat: "lpstat".into(),
        cups_access_log: media.join("access_log"),
        polkit_rules_dir: media.join("polkit"),
        usbguard_rules_dir: media.join("usbguard"),
    };
    let rule = media.join("polkit").join(devices::POLKIT_RULE);
    let usb = media.join("usbguard").join(devices::USBGUARD_RULE);
    let mut d = LinuxDevices::new(paths, media);
    assert!(d
        .enforce(&policy(false, true), &users(&["amy", "o'neil"]))
        .is_empty());
    let text = std::fs::read_to_string(&rule).unwrap();
    assert!(
        text.contains("org.freedesktop.udisks2.filesystem-mount"),
        "{text}"
    );
    match polkit_answers(
        &rule,
        &[
            ("org.freedesktop.udisks2.filesystem-mount", "amy"),
            ("org.freedesktop.udisks2.filesystem-mount-other-seat", "amy"),
            ("org.freedesktop.udisks2.filesystem-mount-system", "amy"),
            ("org.freedesktop.udisks2.filesystem-mount", "ben"),
            ("org.freedesktop.udisks2.power-off-drive", "amy"),
            ("org.freedesktop.udisks2.filesystem-mount", "o'neil"),
        ],
    ) {
        Some(a) => assert_eq!(a, ["no", "no", "no", "undefined", "undefined", "no"]),
        None => eprintln!("node is missing: the polkit rule was not evaluated"),
    }
    let usb_text = std::fs::read_to_string(&usb).unwrap();
    let rule_line = usb_text.lines().find(|l| !l.starts_with('#')).unwrap();
    assert_eq!(rule_line, devices::USBGUARD_BLOCK);
    if let Ok(out) = Command::new("usbguard-rule-parser").arg(rule_line).output() {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("usbguard-rule-parser is missing: the rule syntax was not checked");
    }

    // The policy ends: both files go.
    assert!(d
        .enforce(&policy(false, false), &users(&["amy"]))
        .is_empty());
    assert!(!rule.exists() && !usb.exists());

    // No polkit on this machine: said so, nothing written.
    std::fs::remove_dir(media.join("polkit")).unwrap();
    assert_eq!(
        d.enforce(&policy(false, true), &users(&["amy"])),
        ["removable_media_disabled"]
    );
}

// ---- the service's view: who it applies to and what the device reports ----

#[derive(Debug, Clone)]
struct Seat(&'static str, &'static str, Account);

impl SessionInfo for Seat {
    fn key(&self) -> &str {
        self.0
    }
    fn user(&self) -> &str {
        self.1
    }
    fn account(&self) -> &Account {
        &self.2
    }
    fn place(&self) -> &str {
        "seat"
    }
    fn end(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Records each call; reports `fail` as not enforced.
struct Recorder {
    calls: mpsc::Sender<(bool, Vec<String>)>,
    fail: Vec<String>,
}

impl DevicePolicy for Recorder {
    fn enforce(&mut self, policy: &Policy, users: &[String]) -> Vec<String> {
        let _ = self.calls.send((policy.printing_disabled, users.to_vec()));
        self.fail.clone()
    }
}

fn seat(key: &'static str, user: &'static str) -> Expected<Seat> {
    Expected {
        session: Seat(key, user, Account(format!("uid {user}"))),
        pid: 0,
        starts: 0,
    }
}

#[test]
fn the_service_applies_device_settings_to_whoever_signs_in_and_reports_them() {
    let registry = Registry::<Seat>::new(None);
    let (tx, calls) = mpsc::channel();
    registry.set_device_policy(Box::new(Recorder {
        calls: tx,
        fail: vec![],
    }));
    assert_eq!(calls.try_recv().unwrap(), (false, vec![]));
    let mut d = ServiceDesktop::new(registry.clone());
    assert!(d.apply_policy(&policy(true, true)).is_empty());
    assert_eq!(calls.try_recv().unwrap(), (true, vec![]));
    registry.set_expected("s1", Some(seat("s1", "amy")));
    assert_eq!(calls.try_recv().unwrap(), (true, users(&["amy"])));
    registry.set_expected("s2", Some(seat("s2", "ben")));
    assert_eq!(calls.try_recv().unwrap(), (true, users(&["amy", "ben"])));
    // The same users again (a helper restarted): nothing to redo.
    registry.set_expected("s2", Some(seat("s2", "ben")));
    assert!(calls.try_recv().is_err());
    registry.set_expected("s1", None);
    assert_eq!(calls.try_recv().unwrap(), (true, users(&["ben"])));
    let s = d.state();
    assert!(s.printing_disabled && s.removable_media_disabled);
    assert!(s.unsupported.is_empty(), "{:?}", s.unsupported);

    // A device policy that cannot enforce printing says so.
    let registry = Registry::<Seat>::new(None);
    let (tx, _calls) = mpsc::channel();
    registry.set_device_policy(Box::new(Recorder {
        calls: tx,
        fail: vec!["printing_disabled".into()],
    }));
    let mut d = ServiceDesktop::new(registry);
    assert_eq!(d.apply_policy(&policy(true, true)), ["printing_disabled"]);
    let s = d.state();
    assert!(!s.printing_disabled && s.removable_media_disabled);
    assert_eq!(s.unsupported, ["printing_disabled"]);
}
