//! Student sign-in on a shared desktop (issue 16 point 3), end to end: the
//! real `lectern-agent service` on Xvfb, its helper running as a throwaway
//! shared account. The computer's group offers student sign-in, so the
//! sign-in screen covers the desktop; a student types their user name and
//! taps pictures (with `xdotool`, as a child would with the mouse). Wrong
//! pictures are refused and the screen stays, saying so; the right ones
//! sign the student in, the screen goes, and the console shows the
//! computer as theirs although the desktop's user is the shared account.
//! "Sign out" on the corner widget gives the computer back and the next
//! student is asked. A computer registered with two schools that allow it
//! offers the other school on the sign-in screen, and a click takes it
//! there and back.
//! Screenshots: `tests/e2e/out/signin-x11-*.png`.
//!
//! Needs root, `useradd` and `xdotool`; without them the test says so and
//! checks nothing.

mod common;
#[path = "common/service.rs"]
mod service;

use std::process::Command;
use std::time::Duration;

use common::*;
use lectern_student_ui::StudentUi;
use serde_json::json;
use service::*;

/// A TCP relay between the agent and the server that the test can cut
/// (every connection dropped, new ones closed at once) and mend: the
/// device goes offline while the server, and who it knows is signed in,
/// stays.
struct Relay {
    addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (o, l) = (open.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                if !o.load(Ordering::SeqCst) {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                l.lock().unwrap().push(link.abort_handle());
            }
        });
        Relay {
            addr,
            open,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn mend(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `text` without its colours (the service's log is coloured).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // An escape sequence runs to its final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The process ids of `user`'s processes (the helper of their session).
fn processes_of(user: &str) -> Vec<String> {
    let out = Command::new("pgrep").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The windows showing the sign-in on `display`.
fn sign_in_windows(display: &str) -> Vec<String> {
    windows_named(display, lectern_x11::SIGN_IN_WINDOW_NAME)
}

/// Where the corner widget is: (x, y, width, height).
fn widget(display: &str) -> Option<(i32, i32, u32, u32)> {
    let out = Command::new("xdotool")
        .args(["search", "--name", lectern_x11::HAND_BUTTON_NAME])
        .env("DISPLAY", display)
        .output()
        .ok()?;
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()?
        .to_string();
    let out = Command::new("xdotool")
        .args(["getwindowgeometry", "--shell", &id])
        .env("DISPLAY", display)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let get = |k: &str| -> Option<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse().ok())
    };
    Some((
        get("X")? as i32,
        get("Y")? as i32,
        get("WIDTH")? as u32,
        get("HEIGHT")? as u32,
    ))
}

/// Where each picture of the grid is on a 1280×720 screen: the centre of
/// its emoji, laid out by the same surface the helper draws.
fn picture_centres() -> Vec<(i32, i32)> {
    let mut ui = StudentUi::new(
        lectern_x11::sign_in_view("", &Default::default()),
        1280,
        720,
        1.0,
    );
    let texts = ui.texts();
    lectern_proto::signin::PICTURES
        .iter()
        .map(|(emoji, _)| {
            let t = texts
                .iter()
                .find(|t| t.text == *emoji)
                .unwrap_or_else(|| panic!("{emoji} not on the sign-in screen"));
            ((t.x + t.width / 2.0) as i32, (t.y + t.height / 2.0) as i32)
        })
        .collect()
}

fn tap(display: &str, centres: &[(i32, i32)], pictures: &[usize]) {
    for &i in pictures {
        click_at(display, centres[i]);
        std::thread::sleep(Duration::from_millis(150));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_signs_in_on_a_shared_desktop_with_pictures() {
    if !can_drive_a_desktop() {
        return;
    }
    let shared = TempUser::create();
    let x = Xvfb::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    // The library's computers offer student sign-in; Amy's pictures are
    // frog, banana, rocket.
    let (s, v) = ts
        .post(
            &admin,
            "/api/v1/groups",
            json!({"name": "Library PCs", "kind": "computer", "priority": "low",
                   "members": [{"type": "hostname", "value": "LIB-*"}],
                   "settings": {"student_sign_in": true}}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (s, amy) = ts
        .post(
            &admin,
            "/api/v1/people",
            json!({"display_name": "Amy Ng", "aliases": [{"kind": "roster", "value": "amy.ng"}]}),
        )
        .await;
    assert_eq!(s, 201, "{amy}");
    let amy = amy["id"].as_i64().unwrap();
    let (s, v) = ts
        .put(
            &admin,
            &format!("/api/v1/people/{amy}/sign-in"),
            json!({"kind": "picture", "picture": [2, 9, 14]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");

    let token = ts.enrollment_token(&admin, 1).await;
    // Through a relay, so that the device can go offline (below).
    let relay = Relay::start(ts.addr).await;
    let svc = Service::start(
        &format!(
            "server = \"{}\"\nfingerprint = \"{}\"\nhostname = \"LIB-PC03\"\nbackend = \"x11\"\n\
             sessions = \"static\"\n[[session]]\ndisplay = \"{}\"\nuser = \"{}\"\n",
            relay.addr, ts.fingerprint, x.display, shared.name
        ),
        Some(&token),
    );
    let device = wait_for(|| async {
        let list = ts.get(&admin, "/api/v1/devices").await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["hostname"] == "LIB-PC03" && d["online"] == true)
            .cloned()
    })
    .await;
    let id = device["id"].as_i64().unwrap();
    let device_user = || async {
        ts.get(&admin, &format!("/api/v1/devices/{id}")).await["state"]["user"].clone()
    };

    // The screen covers the desktop of the shared account.
    until("no sign-in screen", &svc, || {
        sign_in_windows(&x.display).pop()
    })
    .await;
    let centres = picture_centres();
    // The student-ui surface needs a moment to draw after mapping.
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&x.display, "signin-x11-1-shown");

    // Her name, then the wrong pictures: refused, and the screen stays.
    xdotool(&x.display, &["type", "--delay", "30", "amy.ng"]);
    tap(&x.display, &centres, &[2, 9, 13]);
    xdotool(&x.display, &["key", "Return"]);
    wait_for(|| async {
        let audit = ts.get(&admin, "/api/v1/audit?limit=50").await.to_string();
        audit.contains("bad_credentials").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sign_in_windows(&x.display).len(), 1, "the screen stays");
    assert_eq!(device_user().await, shared.name.as_str());
    screenshot(&x.display, "signin-x11-2-refused");

    // The right ones (her name is still typed): signed in, the screen goes
    // and the computer is hers in the console.
    tap(&x.display, &centres, &[2, 9, 14]);
    screenshot(&x.display, "signin-x11-3-pictures");
    xdotool(&x.display, &["key", "Return"]);
    wait_for(|| async { (device_user().await == "amy.ng").then_some(()) }).await;
    until("the sign-in screen stayed", &svc, || {
        sign_in_windows(&x.display).is_empty().then_some(())
    })
    .await;
    screenshot(&x.display, "signin-x11-4-signed-in");
    // Still hers after the helper's next report of its own (shared) user.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(device_user().await, "amy.ng");
    let audit = ts.get(&admin, "/api/v1/audit?limit=50").await.to_string();
    assert!(audit.contains("student.sign_in"), "{audit}");

    // She leaves without logging out of the shared account: "Sign out" on
    // the corner widget gives the computer back, and the next student is
    // asked.
    let (wx, wy, w, h) = until("no Sign out on the corner widget", &svc, || {
        widget(&x.display).filter(|g| g.2 > g.3 * 9)
    })
    .await;
    let mut ui = StudentUi::new(
        lectern_student_ui::Surface::HandButton {
            raised: false,
            signed_in: true,
        },
        w,
        h,
        1.0,
    );
    let t = ui
        .texts()
        .into_iter()
        .find(|t| t.text == "Sign out")
        .expect("a Sign out button");
    let (cx, cy) = (
        wx + (t.x + t.width / 2.0) as i32,
        wy + (t.y + t.height / 2.0) as i32,
    );
    screenshot(&x.display, "signin-x11-5-sign-out");
    click_at(&x.display, (cx, cy));
    wait_for(|| async { (device_user().await == shared.name.as_str()).then_some(()) }).await;
    until("the sign-in did not come back", &svc, || {
        sign_in_windows(&x.display).pop()
    })
    .await;
    let audit = ts.get(&admin, "/api/v1/audit?limit=50").await.to_string();
    assert!(audit.contains("student.sign_out"), "{audit}");

    // She signs in again; the computer goes offline, and meanwhile the
    // shared account logs out and in again (its session's helper starts
    // afresh, as at each login). Back online, the desktop's user has the
    // same name, but it is another login: she is signed out, not handed
    // the next person's session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    xdotool(&x.display, &["type", "--delay", "30", "amy.ng"]);
    tap(&x.display, &centres, &[2, 9, 14]);
    xdotool(&x.display, &["key", "Return"]);
    wait_for(|| async { (device_user().await == "amy.ng").then_some(()) }).await;
    relay.cut();
    wait_for(|| async {
        let d = ts.get(&admin, &format!("/api/v1/devices/{id}")).await;
        (d["online"] == false).then_some(())
    })
    .await;
    let before = processes_of(&shared.name);
    assert!(!before.is_empty(), "the shared account's helper runs");
    let _ = Command::new("pkill")
        .args(["-KILL", "-u", &shared.name])
        .status();
    let next = until("the helper of the next login did not start", &svc, || {
        let now = processes_of(&shared.name);
        (!now.is_empty() && now.iter().all(|p| !before.contains(p))).then_some(now)
    })
    .await;
    // Connected to the service, so that the device's user is the shared
    // account again when it comes back (not nobody, which would sign her
    // out without telling logins apart).
    until("the next login's helper did not connect", &svc, || {
        plain(&svc.log())
            .lines()
            .any(|l| {
                l.contains("helper connected")
                    && next.iter().any(|p| l.contains(&format!("pid={p}")))
            })
            .then_some(())
    })
    .await;
    relay.mend();
    wait_for(|| async { (device_user().await == shared.name.as_str()).then_some(()) }).await;
    until("the next person is not asked", &svc, || {
        sign_in_windows(&x.display).pop()
    })
    .await;
    screenshot(&x.display, "signin-x11-6-next-login");
    let audit = ts.get(&admin, "/api/v1/audit?limit=50").await.to_string();
    assert_eq!(audit.matches("student.sign_out").count(), 2, "{audit}");
    drop(svc);
    drop(shared);
}

/// The centre of the button for `school` on `current`'s sign-in screen of a
/// computer that offers `others` (1280×720, as the helper draws it).
fn school_button(current: &str, others: &[&str], school: &str) -> (i32, i32) {
    let screen = lectern_agent::SignInScreen {
        error: None,
        schools: others.iter().map(|s| s.to_string()).collect(),
    };
    let mut ui = StudentUi::new(lectern_x11::sign_in_view(current, &screen), 1280, 720, 1.0);
    let t = ui
        .texts()
        .into_iter()
        .find(|t| t.text == school)
        .unwrap_or_else(|| panic!("no button for {school}"));
    ((t.x + t.width / 2.0) as i32, (t.y + t.height / 2.0) as i32)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_student_switches_a_shared_computer_to_another_school_and_back() {
    if !can_drive_a_desktop() {
        return;
    }
    let shared = TempUser::create();
    let x = Xvfb::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let vale = second_school(&ts, "Vale School", "v.admin", "vale-admin-password-1");
    let at_vale = sign_in_to(&ts, "v.admin", "vale-admin-password-1", Some(vale))
        .await
        .unwrap();
    // Both schools share the library: sign-in, and switching, offered.
    for token in [&admin, &at_vale] {
        let (s, v) = ts
            .post(
                token,
                "/api/v1/groups",
                json!({"name": "Library PCs", "kind": "computer", "priority": "low",
                       "members": [{"type": "hostname", "value": "LIB-*"}],
                       "settings": {"student_sign_in": true, "school_switch": true}}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let code = |token: String| {
        let ts = &ts;
        async move {
            let (s, v) = ts.post(&token, "/api/v1/school/code", json!({})).await;
            assert_eq!(s, 200, "{v}");
            v["code"].as_str().unwrap().to_string()
        }
    };
    let (hill_code, vale_code) = (code(admin.clone()).await, code(at_vale.clone()).await);
    // Mass deployment: both codes in the school code file.
    let svc = Service::start_with_codes(
        &format!(
            "server = \"{}\"\nfingerprint = \"{}\"\nhostname = \"LIB-PC07\"\nbackend = \"x11\"\n\
             sessions = \"static\"\n[[session]]\ndisplay = \"{}\"\nuser = \"{}\"\n",
            ts.addr, ts.fingerprint, x.display, shared.name
        ),
        None,
        &[&hill_code, &vale_code],
    );
    let hill_name = until("not registered", &svc, || {
        let path = svc.dir.path().join("state/credential.json");
        let text = std::fs::read_to_string(path).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["school"].as_str().map(str::to_string)
    })
    .await;
    let device_in = |token: String, online: bool| {
        let (ts, svc) = (&ts, &svc);
        async move {
            for _ in 0..200 {
                let list = ts.get(&token, "/api/v1/devices").await;
                let found = list
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|d| d["hostname"] == "LIB-PC07" && d["online"] == online);
                if found {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!(
                "LIB-PC07 never {} here\nservice log:\n{}",
                if online { "online" } else { "offline" },
                svc.log()
            );
        }
    };
    // Registered with both, connected to the first.
    device_in(admin.clone(), true).await;
    device_in(at_vale.clone(), false).await;

    // Hill's sign-in offers Vale.
    until("no sign-in screen", &svc, || {
        sign_in_windows(&x.display).pop()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    screenshot(&x.display, "signin-x11-6-other-school");
    let (bx, by) = school_button(&hill_name, &["Vale School"], "Vale School");

    // A teacher's shut down counting down: no leaving for another school
    // from under it. Cancelled, the switch is taken.
    let devices = ts.get(&admin, "/api/v1/devices").await;
    let pc = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["hostname"] == "LIB-PC07")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let power = |command: serde_json::Value| {
        let (ts, admin) = (&ts, &admin);
        async move {
            // (Waits for the computer's outcome: the countdown is running.)
            let rec = ts.command(admin, &[pc], command).await;
            assert_eq!(rec["summary"]["done"], 1, "{rec}");
        }
    };
    power(json!({"type": "power", "action": "shutdown", "countdown_secs": 600})).await;
    let refused = "during a power countdown";
    for _ in 0..10 {
        click_at(&x.display, (bx, by));
        tokio::time::sleep(Duration::from_millis(500)).await;
        if svc.log().contains(refused) {
            break;
        }
    }
    assert!(svc.log().contains(refused), "{}", svc.log());
    assert!(!svc.log().contains("switched this computer to Vale School"));
    power(json!({"type": "cancel_power"})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    click_at(&x.display, (bx, by));
    // Now with Vale: online there, offline at Hill; Vale's sign-in shows,
    // offering Hill back.
    device_in(at_vale.clone(), true).await;
    device_in(admin.clone(), false).await;
    until("no sign-in screen at Vale", &svc, || {
        sign_in_windows(&x.display).pop()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    screenshot(&x.display, "signin-x11-7-at-vale");
    assert!(
        svc.log().contains("switched this computer to Vale School"),
        "{}",
        svc.log()
    );

    // Whether the policy the computer keeps for Vale (the school code
    // file's second line: `schools/2/`) lets students switch.
    let vale_policy = svc.dir.path().join("state/schools/2/policy.json");
    let switching_at_vale = |on: bool| {
        let path = vale_policy.clone();
        async move {
            wait_for(|| async {
                let text = std::fs::read_to_string(&path).ok()?;
                let p: serde_json::Value = serde_json::from_str(&text).ok()?;
                (p["school_switch"] == on).then_some(())
            })
            .await
        }
    };

    // Vale keeps its computers from now on: the offer goes, and a click
    // where it was changes nothing.
    let groups = ts.get(&at_vale, "/api/v1/groups").await;
    let group = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Library PCs")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (s, v) = ts
        .put(
            &at_vale,
            &format!("/api/v1/groups/{group}"),
            json!({"settings": {"student_sign_in": true, "school_switch": false}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    switching_at_vale(false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (hx, hy) = school_button("Vale School", &[&hill_name], &hill_name);
    click_at(&x.display, (hx, hy));
    tokio::time::sleep(Duration::from_secs(2)).await;
    device_in(at_vale.clone(), true).await;
    assert!(!svc
        .log()
        .contains(&format!("switched this computer to {hill_name}")));

    // Allowed again: back to the first school.
    let (s, v) = ts
        .put(
            &at_vale,
            &format!("/api/v1/groups/{group}"),
            json!({"settings": {"student_sign_in": true, "school_switch": true}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    switching_at_vale(true).await;
    // The screen redraws with the offer a moment after the policy: click
    // until the switch is taken.
    let back = format!("switched this computer to {hill_name}");
    for _ in 0..10 {
        click_at(&x.display, (hx, hy));
        tokio::time::sleep(Duration::from_secs(1)).await;
        if svc.log().contains(&back) {
            break;
        }
    }
    device_in(admin.clone(), true).await;
    device_in(at_vale.clone(), false).await;

    // The first school lets the computer go (revoked): it does not wait on
    // it, but goes to the other school it is registered with, on its own.
    assert_eq!(
        ts.delete(&admin, &format!("/api/v1/devices/{pc}")).await,
        204
    );
    device_in(at_vale.clone(), true).await;
    until("the move to Vale", &svc, || {
        svc.log()
            .contains("the school refused this computer; switched it to Vale School")
            .then_some(())
    })
    .await;
    drop(svc);
    drop(shared);
}
