//! The directory's bind password is sealed at rest (AES-256-GCM under
//! `<data>/secrets.key`, which no backup holds): never in the database or a
//! backup in plain text; a server with its key syncs across restarts; one
//! with another key, or a tampered value, asks for the password again.

mod common;
#[path = "common/slapd.rs"]
mod slapd;

use common::TestServer;
use lectern_server::sealed::KEY_FILE;
use serde_json::Value;
use slapd::*;

/// Every byte of the database and its write-ahead log.
fn database_bytes(ts: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["lectern.db", "lectern.db-wal"] {
        if let Ok(b) = std::fs::read(ts.data_dir().join(name)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The bind password as the store holds it.
fn stored_password(ts: &TestServer) -> (String, String) {
    let st = &ts.server().state;
    st.store
        .directory_sync()
        .directory_config(common::home_school(st))
        .unwrap()
        .unwrap()
}

fn set_stored_password(ts: &TestServer, value: &str) {
    let st = &ts.server().state;
    let (cfg, _) = stored_password(ts);
    st.store
        .directory_sync()
        .set_directory_config(common::home_school(st), &cfg, Some(value))
        .unwrap();
}

/// A sync refused because the password must be entered again: 409, the
/// stable reason, the clear sentence, also on the settings.
async fn assert_password_lost(ts: &TestServer, admin: &str) {
    let (s, body) = sync(ts, admin, false).await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["reason"], "bind_password_lost", "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("The bind password must be entered again"),
        "{body}"
    );
    let got = ts.get(admin, "/api/v1/directory/config").await;
    assert!(
        got["bind_password_error"]
            .as_str()
            .is_some_and(|e| e.contains("must be entered again")),
        "{got}"
    );
}

#[tokio::test]
async fn the_bind_password_is_sealed_at_rest_and_needs_this_servers_key() {
    let slapd = Slapd::start();
    let mut ts = TestServer::start().await;
    let admin = ts.login().await;
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    let (s, body) = sync(&ts, &admin, false).await;
    assert_eq!(s, 200, "{body}");

    // The store holds only the sealed form; the key file is private.
    let (_, stored) = stored_password(&ts);
    assert!(stored.starts_with("v1:") && !stored.contains(ROOT_PW));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(ts.data_dir().join(KEY_FILE))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(!contains(&database_bytes(&ts), ROOT_PW));
    // Nor does a backup the server takes.
    let backup =
        lectern_server::maintenance::new_backup_file(&ts.data_dir().join("backups"), "lectern")
            .unwrap();
    lectern_server::maintenance::write_backup(&*ts.server().state.store, &backup).unwrap();
    let bytes = std::fs::read(&backup).unwrap();
    assert!(contains(&bytes, "v1:"), "the backup holds the sealed row");
    assert!(!contains(&bytes, ROOT_PW));

    // Restarted with the same key file: it still syncs.
    ts.restart().await;
    let admin = ts.login().await;
    let (s, body) = sync(&ts, &admin, false).await;
    assert_eq!(s, 200, "{body}");
    let got = ts.get(&admin, "/api/v1/directory/config").await;
    assert!(got.get("bind_password_error").is_none(), "{got}");

    // Another key (the database restored on another server): the clear
    // error, and nothing changed.
    let key = ts.data_dir().join(KEY_FILE);
    let original = std::fs::read(&key).unwrap();
    std::fs::write(&key, [7u8; 32]).unwrap();
    let before = ts.get(&admin, "/api/v1/directory/users").await;
    assert_password_lost(&ts, &admin).await;
    assert_eq!(ts.get(&admin, "/api/v1/directory/users").await, before);
    // The failed run is on record with the same sentence.
    let runs = ts.get(&admin, "/api/v1/directory/sync").await;
    assert!(
        runs[0].to_string().contains("must be entered again"),
        "{runs}"
    );
    // Entering it again (sealed under the key now in place) mends it.
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    assert_eq!(sync(&ts, &admin, false).await.0, 200);

    // Tampered ciphertext is refused, never decrypted to something else.
    std::fs::write(&key, &original).unwrap();
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    let (_, sealed) = stored_password(&ts);
    let mut chars: Vec<char> = sealed.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    set_stored_password(&ts, &chars.into_iter().collect::<String>());
    assert_password_lost(&ts, &admin).await;
    // And the server serves on: the settings still read.
    let got: Value = ts.get(&admin, "/api/v1/directory/config").await;
    assert_eq!(got["configured"], true);
}

#[tokio::test]
async fn a_plain_text_password_from_before_is_sealed_on_first_use() {
    let slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    // A row as the previous version wrote it.
    set_stored_password(&ts, ROOT_PW);
    let (s, body) = sync(&ts, &admin, false).await;
    assert_eq!(s, 200, "{body}");
    let (_, stored) = stored_password(&ts);
    assert!(stored.starts_with("v1:"), "{stored}");
    assert!(!stored.contains(ROOT_PW));
    // And it keeps working sealed.
    assert_eq!(sync(&ts, &admin, false).await.0, 200);
}
