//! The service's platform-free core over an in-memory stream: the registry
//! admits a helper by what the "operating system" says of its peer, the
//! service desktop drives it, and state set before it connects is re-applied.
//! No Unix socket, no named pipe: the same code serves both, so this test
//! runs (and must pass) on every target, Windows under Wine included.

mod common;

use common::*;
use lectern_agent::ipc::{Account, Peer, StatusAnswer};
use lectern_agent::service::ServiceDesktop;
use lectern_agent::{Desktop, HeadlessDesktop};
use std::io;
use std::sync::atomic::Ordering;

#[test]
fn a_helper_on_any_stream_is_admitted_and_driven() {
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    // Locked before anyone signs in: kept, and shown once the helper comes.
    desktop.lock(Some("Eyes front")).unwrap();
    assert!(desktop.state().locked, "reported from the desired state");

    f.connect_helper(helper_peer());
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });
    let conn = &f.registry.connected()[0];
    assert_eq!((conn.session.as_str(), conn.pid), ("s1", HELPER_PID));
    wait_for("the lock to be re-applied", || {
        let s = desktop.state();
        s.user.as_deref() == Some("amy") && s.locked
    });

    desktop.unlock().unwrap();
    assert!(!desktop.state().locked);
    let frame = desktop.capture(320).unwrap();
    assert_eq!(frame.width, 320);
    assert_eq!(frame.rgb.len(), (frame.width * frame.height * 3) as usize);
    desktop.show_message("Hand in your work").unwrap();
    assert!(desktop.state().message_shown);
    // The teacher's "clear message" reaches the helper's screen.
    desktop.clear_message().unwrap();
    assert!(!desktop.state().message_shown);

    desktop.logout().unwrap();
    assert_eq!(f.ended.load(Ordering::SeqCst), 1, "the platform ended it");
}

#[test]
fn only_the_started_process_of_the_sessions_account_is_admitted() {
    let f = Fixture::new();
    for (peer, why) in [
        (
            Peer {
                pid: HELPER_PID + 1,
                ..helper_peer()
            },
            "another process of the same user",
        ),
        (
            Peer {
                account: Account("acct-ben".into()),
                ..helper_peer()
            },
            "the right pid, another account",
        ),
    ] {
        let e = f
            .local
            .block_on(f.connect_helper(peer))
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{why}");
        assert!(
            e.to_string()
                .contains("is not the helper started for session"),
            "{why}: {e}"
        );
    }
    assert!(f.registry.connected().is_empty());
    f.local
        .block_on(f.connect_helper(helper_peer()))
        .unwrap()
        .unwrap();
    wait_for("the real helper", || f.registry.connected().len() == 1);
}

#[test]
fn status_is_for_the_system_account_only() {
    let f = Fixture::new();
    match f.status_as(helper_peer()) {
        StatusAnswer::Refused(why) => assert!(why.contains("root only"), "{why}"),
        other => panic!("a student read the status: {other:?}"),
    }
    let system = Peer {
        pid: 1,
        account: Account("system".into()),
        system: true,
    };
    match f.status_as(system) {
        StatusAnswer::Status(st) => {
            assert_eq!(st.sessions.len(), 1);
            let s = &st.sessions[0];
            assert_eq!((s.session.as_str(), s.user.as_str()), ("s1", "amy"));
            assert_eq!((s.display.as_str(), s.helper_pid), ("seat 1", None));
        }
        other => panic!("the system was refused: {other:?}"),
    }
}

/// The lock picture a desktop of `school` shows, `width` pixels wide.
fn lock_picture(school: Option<&str>, width: u32) -> Vec<u8> {
    let mut d = HeadlessDesktop::new("PC01", Some("amy".into()));
    if let Some(school) = school {
        d.set_school(school);
    }
    d.lock(Some("Eyes front")).unwrap();
    d.capture(width).unwrap().rgb
}

#[test]
fn a_helpers_lock_screen_names_the_enrolled_school() {
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    // Known before the helper comes: told on admission.
    f.registry.set_school("Hillside Academy");
    desktop.lock(Some("Eyes front")).unwrap();
    f.connect_helper(helper_peer());
    wait_for("the lock to be re-applied", || {
        f.registry.connected().len() == 1 && desktop.state().locked
    });
    let hillside = lock_picture(Some("Hillside Academy"), 640);
    assert_ne!(hillside, lock_picture(None, 640), "the school line shows");
    assert!(
        desktop.capture(640).unwrap().rgb == hillside,
        "the helper's lock screen names the school it was told on admission"
    );

    // Learnt while connected (enrolled after the helper came): the next lock names it.
    f.registry.set_school("Riverside College");
    desktop.lock(Some("Eyes front")).unwrap();
    assert!(
        desktop.capture(640).unwrap().rgb == lock_picture(Some("Riverside College"), 640),
        "the helper was told the new school"
    );
}

/// Remote control reaches the session helper over the service's IPC: input
/// is refused before control starts and after it stops, taken in between.
#[test]
fn remote_control_goes_through_the_helper() {
    use lectern_proto::control::InputEvent;
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    assert!(
        desktop.start_control("Ms Smith").is_err(),
        "nobody signed in"
    );
    f.connect_helper(helper_peer());
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });
    wait_for("the helper's capabilities", || {
        desktop
            .capabilities()
            .contains(&lectern_proto::Capability::RemoteControl)
    });
    let moves = [InputEvent::Move { x: 1, y: 1 }];
    assert!(desktop.inject_input(&moves).is_err(), "not controlled yet");
    desktop.start_control("Ms Smith").unwrap();
    desktop.inject_input(&moves).unwrap();
    desktop.stop_control().unwrap();
    assert!(desktop.inject_input(&moves).is_err(), "control ended");
}

/// The school's logo reaches a session helper's lock screen: told on
/// admission when known before, and while connected when it changes.
#[test]
fn a_helpers_lock_screen_shows_the_schools_logo() {
    let logo = {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, 40, 20);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let red: Vec<u8> = [220u8, 30, 30].repeat(40 * 20);
        enc.write_header().unwrap().write_image_data(&red).unwrap();
        out
    };
    let with_logo = |png: Option<&[u8]>| {
        let mut d = HeadlessDesktop::new("PC01", Some("amy".into()));
        d.set_school("Hillside Academy");
        d.set_school_logo(png);
        d.lock(Some("Eyes front")).unwrap();
        d.capture(640).unwrap().rgb
    };
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    f.registry.set_school("Hillside Academy");
    desktop.set_school_logo(Some(&logo));
    desktop.lock(Some("Eyes front")).unwrap();
    f.connect_helper(helper_peer());
    wait_for("the lock to be re-applied", || {
        f.registry.connected().len() == 1 && desktop.state().locked
    });
    let shown = with_logo(Some(&logo));
    assert_ne!(shown, with_logo(None), "the logo shows");
    assert!(
        desktop.capture(640).unwrap().rgb == shown,
        "the helper was told the logo on admission"
    );
    // Removed while connected.
    desktop.set_school_logo(None);
    desktop.lock(Some("Eyes front")).unwrap();
    assert!(
        desktop.capture(640).unwrap().rgb == with_logo(None),
        "the helper was told the logo is gone"
    );
}
