//! Run under Wine by `cargo test --target x86_64-pc-windows-gnu -p
//! lectern-agent windows::` (the cargo runner is scripts/wine-run.sh). What
//! Wine cannot show (real user tokens, access lists enforced, session 0) is
//! listed in docs and checked by hand on Windows.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pipe::{self, ServicePipe};
use super::sessions::{self, WinSession};
use super::win32;
use crate::ipc::{Account, PeerStream, Reply, Request};
use crate::service::{Expected, LiveStatus, Registry};
use crate::HeadlessDesktop;

fn own_session() -> WinSession {
    let id = win32::process_session(std::process::id()).unwrap();
    WinSession {
        key: id.to_string(),
        id,
        user: "tester".into(),
        account: Account(win32::own_user_sid().unwrap()),
        place: format!("session {id}"),
        wine_fallback: true,
    }
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn under_wine_the_console_session_is_served_as_our_own_user() {
    if !win32::is_wine() {
        // On Windows the sessions are real ones; checked by hand.
        return;
    }
    let found = sessions::discover();
    assert_eq!(found.len(), 1, "{found:?}");
    let s = &found[0];
    assert!(s.wine_fallback);
    assert_eq!(s.account.0, win32::own_user_sid().unwrap());
    // SAFETY: no arguments.
    let console =
        unsafe { windows_sys::Win32::System::RemoteDesktop::WTSGetActiveConsoleSessionId() };
    assert_eq!(
        (s.id, s.key.as_str()),
        (console, console.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_round_trips_over_its_session_pipe() {
    let s = own_session();
    let registry = Registry::<WinSession>::new(None);
    let live = Arc::new(Mutex::new(LiveStatus::default()));
    // The supervisor would record the helper's pid; here the helper is us.
    registry.set_expected(
        &s.key,
        Some(Expected {
            session: s.clone(),
            pid: std::process::id(),
            starts: 1,
        }),
    );
    let (first, name, sddl) = pipe::bind_session(&s).unwrap();
    // No squatting: a second first instance of the name is refused (Wine
    // ignores FILE_FLAG_FIRST_PIPE_INSTANCE: Windows only).
    if !win32::is_wine() {
        assert!(pipe::create(&name, &sddl, true).is_err());
    }
    let served = tokio::spawn(pipe::serve_session(
        first,
        name.clone(),
        sddl,
        s.clone(),
        registry.clone(),
        live,
    ));
    let client = pipe::connect_to_service(&name).await.unwrap();
    let desktop = Box::new(HeadlessDesktop::new("PC01", Some("amy".into())));
    let key = s.key.clone();
    let helper =
        tokio::spawn(async move { crate::helper::run_helper(client, &key, desktop).await });
    wait_for("the helper to be admitted", || {
        registry.connected().len() == 1
    })
    .await;
    let conn = registry.connected()[0].clone();
    assert_eq!(conn.pid, std::process::id());
    let r = registry.clone();
    let (lock, state) = tokio::task::spawn_blocking(move || {
        let lock = r.call(
            &conn,
            Request::Lock {
                text: Some("Eyes front".into()),
            },
            &[],
        );
        let state = r.call(&conn, Request::State, &[]);
        (lock, state)
    })
    .await
    .unwrap();
    assert_eq!(lock.unwrap().0, Reply::Ok);
    match state.unwrap().0 {
        Reply::State { state } => assert!(state.locked, "{state:?}"),
        other => panic!("{other:?}"),
    }
    served.abort();
    helper.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipe_names_its_client_and_refuses_strangers() {
    // A session id nobody runs in: a client from our session is refused by
    // the session check before it can say anything.
    let mut other = own_session();
    other.id += 1000;
    other.key = other.id.to_string();
    let registry = Registry::<WinSession>::new(None);
    let live = Arc::new(Mutex::new(LiveStatus::default()));
    let (first, name, sddl) = pipe::bind_session(&other).unwrap();
    let served = tokio::spawn(pipe::serve_session(
        first,
        name.clone(),
        sddl.clone(),
        other.clone(),
        registry.clone(),
        live.clone(),
    ));
    let client = pipe::connect_to_service(&name).await.unwrap();
    let mut buf = [0u8; 1];
    let mut c = client;
    // The service hangs up without a word.
    let n = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncReadExt::read(&mut c, &mut buf),
    )
    .await
    .expect("the service hangs up");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    served.abort();

    // In the right session but not the process the supervisor started: the
    // registry refuses it (pid check), and nothing is connected.
    let mut mine = own_session();
    mine.id += 2000; // a pipe of its own name, without the session check
    mine.key = mine.id.to_string();
    let server = pipe::create(&crate::windows_rules::session_pipe(mine.id), &sddl, true).unwrap();
    let connecting = tokio::spawn(async move {
        server.connect().await.unwrap();
        ServicePipe(server)
    });
    let client = pipe::connect_to_service(&crate::windows_rules::session_pipe(mine.id))
        .await
        .unwrap();
    let conn = connecting.await.unwrap();
    let peer = conn.peer().unwrap();
    assert_eq!(peer.pid, std::process::id(), "the system names the client");
    assert_eq!(peer.account.0, win32::own_user_sid().unwrap());
    registry.set_expected(
        &mine.key,
        Some(Expected {
            session: mine.clone(),
            pid: std::process::id() + 4,
            starts: 1,
        }),
    );
    let refused = registry.admit(&mine.key, &peer).unwrap_err();
    assert!(refused.contains("is not the helper"), "{refused}");
    drop(client);
}

/// A security descriptor's DACL in SDDL.
fn dacl_sddl(sd: windows_sys::Win32::Security::PSECURITY_DESCRIPTOR) -> String {
    use windows_sys::Win32::Security::Authorization::{
        ConvertSecurityDescriptorToStringSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;
    let mut s = std::ptr::null_mut();
    // SAFETY: `sd` is valid; `s` is freed with LocalFree.
    unsafe {
        win32::check(
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                sd,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut s,
                std::ptr::null_mut(),
            ),
            "ConvertSecurityDescriptorToStringSecurityDescriptorW",
        )
        .unwrap();
        let t = win32::from_wide_ptr(s);
        windows_sys::Win32::Foundation::LocalFree(s.cast());
        t
    }
}

fn assert_private(text: &str) {
    assert!(text.starts_with("D:P"), "protected: {text}");
    assert!(text.contains(";;;SY)") && text.contains(";;;BA)"), "{text}");
    assert_eq!(
        text.matches("(A;").count(),
        2,
        "only SYSTEM and Administrators: {text}"
    );
}

#[test]
fn the_state_directory_is_private_to_system_and_administrators() {
    use windows_sys::Win32::Security::Authorization::{GetNamedSecurityInfoW, SE_FILE_OBJECT};
    use windows_sys::Win32::Security::DACL_SECURITY_INFORMATION;
    // The access list the directory is given.
    let sd = win32::SecurityDescriptor::from_sddl(crate::windows_rules::STATE_DIR_SDDL).unwrap();
    assert_private(&dacl_sddl(sd.as_ptr()));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    crate::platform::create_private_dir(&state).unwrap();
    crate::platform::create_private_file(&state.join("credential.json")).unwrap();
    let path = win32::wide(&state);
    let (mut sd, mut dacl) = (std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: out parameters; `sd` is freed with LocalFree.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            path.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    assert_eq!(rc, 0);
    let text = dacl_sddl(sd);
    // SAFETY: allocated by GetNamedSecurityInfoW.
    unsafe { windows_sys::Win32::Foundation::LocalFree(sd.cast()) };
    if win32::is_wine() {
        // Wine accepts SetNamedSecurityInfoW but answers with an access
        // list made from the Unix mode: it does not keep or enforce ours.
        return;
    }
    assert_private(&text);
}

#[test]
fn the_msi_registry_values_are_read() {
    // Written by the test itself under a key of its own.
    let key = r"SOFTWARE\Lectern\AgentTest";
    let status = std::process::Command::new("reg")
        .args([
            "add",
            &format!(r"HKLM\{key}"),
            "/v",
            "Server",
            "/t",
            "REG_SZ",
            "/d",
            "10.1.2.3:30016",
            "/f",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        win32::read_hklm_string(key, "Server").as_deref(),
        Some("10.1.2.3:30016")
    );
    assert_eq!(win32::read_hklm_string(key, "Missing"), None);
    win32::delete_hklm_value(key, "Server").unwrap();
    assert_eq!(win32::read_hklm_string(key, "Server"), None);
    win32::delete_hklm_value(key, "Server").unwrap();
}
