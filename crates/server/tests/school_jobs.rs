//! Every school on a server (issue 16): each school's settings, groups and
//! keyword libraries are read at start and kept apart, and retention runs
//! for each school by its own settings, not only for the school the server
//! was set up with.

mod common;

use common::*;
use lectern_store::auditset::SettingRow;
use lectern_store::{now_ms, NewAudit, SchoolId, SqliteStore, Store};

const DAY_MS: i64 = 86_400_000;

fn entry(school: SchoolId, action: &str) -> NewAudit {
    NewAudit {
        school_id: school,
        actor: "system".into(),
        address: None,
        action: action.into(),
        detail: String::new(),
        devices: Vec::new(),
        command_id: None,
        outcome: "ok".into(),
    }
}

fn actions(store: &SqliteStore, school: SchoolId) -> Vec<String> {
    store
        .audit_list(school, 500, None, None)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_runs_for_every_school_by_its_own_settings() {
    let mut ts = TestServer::start().await;
    let here = ts.server().state.school.id;
    let store = SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    // A second school keeping its audit log 5 days; the first keeps the
    // server's 30.
    let other = store.create_school("Other School").unwrap();
    store
        .auditset()
        .set_school_settings(
            other,
            &[SettingRow {
                key: "audit_days".into(),
                value: "5".into(),
                set_by: "root".into(),
                set_at: now_ms(),
            }],
        )
        .unwrap();
    for school in [here, other] {
        store.audit(&entry(school, "test.entry")).unwrap();
    }
    // Both schools' settings are read at start.
    ts.restart().await;
    let st = ts.server().state.clone();
    assert_eq!(st.settings.get(&st, other).audit_days, 5);
    assert_eq!(st.settings.get(&st, here).audit_days, 30);

    // Ten days on: past the second school's 5, within the first's 30.
    lectern_server::maintenance::retention(&st, now_ms() + 10 * DAY_MS).await;
    assert!(
        actions(&store, here).contains(&"test.entry".to_string()),
        "the first school keeps its entry"
    );
    assert!(
        !actions(&store, other).contains(&"test.entry".to_string()),
        "the second school's entry is past its own retention"
    );

    // Forty days on: past both.
    lectern_server::maintenance::retention(&st, now_ms() + 40 * DAY_MS).await;
    assert!(!actions(&store, here).contains(&"test.entry".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_school_has_its_own_groups_and_keyword_libraries() {
    let mut ts = TestServer::start().await;
    let admin = ts.login().await;
    let here = ts.server().state.school.id;
    let lab = computer_group(&ts, &admin, "Lab", "LAB-*").await;
    let store = SqliteStore::open(&ts.data_dir().join("lectern.db")).unwrap();
    let other = store.create_school("Other School").unwrap();
    ts.restart().await;
    let st = ts.server().state.clone();

    // Both schools' groups are loaded, each with its own Entire Network;
    // the first school's group is not the second's.
    assert!(st.policies.loaded(here) && st.policies.loaded(other));
    let (ours, theirs) = (st.policies.of(here), st.policies.of(other));
    assert!(ours.group(lab).is_some());
    assert!(theirs.group(lab).is_none());
    let (en_here, en_other) = (ours.entire_network(), theirs.entire_network());
    assert!(en_here.is_some() && en_other.is_some() && en_here != en_other);
    assert!(theirs.group(en_here.unwrap()).is_none());
    // A device of the first school resolves into its groups only there.
    assert!(ours.resolve(Some("LAB-01"), None).groups.contains(&lab));
    assert!(!theirs.resolve(Some("LAB-01"), None).groups.contains(&lab));

    // Each school has its own default keyword library, set up at start.
    let (kw_here, kw_other) = (st.keywords.catalog(here), st.keywords.catalog(other));
    assert_eq!(kw_here.libs.len(), 1);
    assert_eq!(kw_other.libs.len(), 1);
    assert!(kw_here
        .libs
        .keys()
        .all(|id| !kw_other.libs.contains_key(id)));
    // A reload of one school's groups leaves the other's as they were.
    st.reload_policies(other).await.unwrap();
    assert!(st.policies.of(here).group(lab).is_some());

    // A school the server has not read has nothing: no groups, no rights.
    let unknown = other + 100;
    assert!(!st.policies.loaded(unknown));
    assert!(st.policies.of(unknown).entire_network().is_none());
    assert!(!st
        .policies
        .of(unknown)
        .rights("admin", None, false)
        .allows("devices.view"));
}
