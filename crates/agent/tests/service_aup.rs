//! Acceptable use policies through the agent service (issue 14 point 1):
//! the service hands the policy to the session helper, a helper that cannot
//! show one makes the call fail (the session then tells the server), and
//! the student's acceptance comes back with the other requests. The fixture
//! is `service_core.rs`'s: the platform-free core over an in-memory stream.

mod common;

use common::*;
use lectern_agent::service::ServiceDesktop;
use lectern_agent::{Desktop, HeadlessDesktop, StudentRequest};
use lectern_proto::aup::AcceptableUse;

fn policy() -> AcceptableUse {
    AcceptableUse {
        version_id: 9,
        version: 2,
        title: "Règles ✓".into(),
        text: "Будьте вежливы.\n\n日本語".into(),
        published_at: 1,
    }
}

#[test]
fn the_service_shows_the_policy_in_the_session_and_takes_the_acceptance() {
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    assert!(
        desktop.show_acceptable_use(Some(&policy())).is_err(),
        "no session: nobody to show it to"
    );
    assert!(
        desktop.show_acceptable_use(None).is_ok(),
        "nothing to take away"
    );

    let mut student = HeadlessDesktop::new("PC01", Some("amy".into())).with_aup_surface();
    student.student_sends(StudentRequest::AcceptAup { version_id: 9 });
    f.connect_helper_with(helper_peer(), student);
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });
    desktop.show_acceptable_use(Some(&policy())).unwrap();
    assert_eq!(
        desktop.take_requests(),
        vec![StudentRequest::AcceptAup { version_id: 9 }]
    );
    desktop.show_acceptable_use(None).unwrap();
}

#[test]
fn a_session_that_cannot_show_it_fails_the_call() {
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    f.connect_helper(helper_peer());
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });
    let err = desktop.show_acceptable_use(Some(&policy())).unwrap_err();
    assert!(err.to_string().contains("acceptable use"), "{err}");
}
