//! Blocked-application attempts travel from a session helper to the service
//! (which reports them to the server): collected only while a policy sets
//! application lists, at most 20 per session per collection, and nothing but
//! the application and title is taken from the helper, which runs as the
//! student: the user is the session's and the kind is always `app`.
//! Over an in-memory stream, as in `service_core`.

mod common;

use common::*;
use lectern_agent::service::ServiceDesktop;
use lectern_agent::{Desktop, HeadlessDesktop};
use lectern_proto::{AppMode, Policy};
use std::sync::atomic::Ordering;

#[test]
fn blocked_application_events_are_taken_only_with_lists_and_only_for_the_session_user() {
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    // The helper claims another user and sends web events.
    let mut helper = HeadlessDesktop::new("PC01", Some("headteacher".into()));
    helper.synthesize_activity(50);
    f.connect_helper_with(helper_peer(), helper);
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });

    // No lists: the helper is not asked.
    desktop.apply_policy(&Policy::default());
    assert!(desktop.take_activity().is_empty());

    desktop.apply_policy(&Policy {
        app_mode: AppMode::BlockList,
        app_block_list: vec!["steam".into()],
        ..Policy::default()
    });
    let events = desktop.take_activity();
    assert_eq!(events.len(), 20, "at most 20 a session per collection");
    for e in &events {
        assert_eq!(e.kind, "app");
        assert_eq!(e.user.as_deref(), Some("amy"), "the session's user");
        assert!(e.url.is_none());
    }
    // What was over the bound was dropped by the service, not kept for later.
    assert!(desktop.take_activity().is_empty());
    let _ = f.ended.load(Ordering::SeqCst);
}
