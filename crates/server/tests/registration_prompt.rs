//! Registering a computer with the school code typed on its screen (issue
//! 16 point 2): the real `lectern-agent service`, with neither a token nor
//! a code, shows the registration form in the session on Xvfb (the helper
//! runs as a throwaway user); a wrong code typed there is refused by the
//! server and the form comes back, the right one (typed in lower case with
//! a space) registers the computer and is kept for the service.
//!
//! Needs root, `useradd` and `xdotool`; without them the test says so and
//! checks nothing.

mod common;
#[path = "common/service.rs"]
mod service;

use std::time::Duration;

use common::*;
use serde_json::json;
use service::*;

/// Types `text` and Enter into the form `win`.
fn type_into(display: &str, win: &str, text: &str) {
    xdotool(display, &["windowfocus", "--sync", win]);
    xdotool(display, &["type", "--delay", "20", text]);
    xdotool(display, &["key", "Return"]);
}

fn forms(display: &str) -> Vec<String> {
    windows_named(display, lectern_x11::REGISTER_WINDOW_NAME)
}

async fn form_shown(display: &str, svc: &Service) -> String {
    until("no registration form", svc, || forms(display).pop()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_typed_on_the_screen_registers_the_computer() {
    if !can_drive_a_desktop() {
        return;
    }
    let user = TempUser::create();
    let x = Xvfb::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (_, made) = ts.post(&admin, "/api/v1/school/code", json!({})).await;
    let code = made["code"].as_str().unwrap().to_string();
    let svc = Service::start(
        &format!(
            "server = \"{}\"\nfingerprint = \"{}\"\nhostname = \"LAB5-PC01\"\nbackend = \"x11\"\n\
             sessions = \"static\"\n[[session]]\ndisplay = \"{}\"\nuser = \"{}\"\n",
            ts.addr, ts.fingerprint, x.display, user.name
        ),
        None,
    );

    // A code the server does not know: refused, and the form comes back.
    let first = form_shown(&x.display, &svc).await;
    let wrong = if code == "ZZZZZ-ZZZZZ" {
        "YYYYY-YYYYY"
    } else {
        "ZZZZZ-ZZZZZ"
    };
    type_into(&x.display, &first, wrong);
    let asked_again = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let log = svc.log();
            // The prompt's own line (service::prompt), once per ask; the
            // enrollment error says "asked for" instead.
            if log
                .matches("asking for the school code on the screen")
                .count()
                >= 2
            {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the form was not asked again\nservice log:\n{}", svc.log()));
    assert!(
        asked_again.contains("school code is unknown"),
        "{asked_again}"
    );
    let second = form_shown(&x.display, &svc).await;

    // The right one, as people type it.
    let typed = code.to_lowercase().replace('-', " ");
    type_into(&x.display, &second, &typed);
    let device = wait_for(|| async {
        let list = ts.get(&admin, "/api/v1/devices").await;
        list.as_array()
            .unwrap()
            .iter()
            .find(|d| d["hostname"] == "LAB5-PC01" && d["online"] == true)
            .cloned()
    })
    .await;
    assert!(device["id"].as_i64().is_some());
    let kept = std::fs::read_to_string(svc.dir.path().join("schoolcode")).unwrap();
    assert!(kept.ends_with(&format!("\n{code}\n")), "{kept}");
    assert!(svc.dir.path().join("state/credential.json").exists());
    wait_for(|| async { forms(&x.display).is_empty().then_some(()) }).await;
    drop(svc);
    drop(user);
}
