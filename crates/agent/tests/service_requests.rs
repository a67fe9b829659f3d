//! Raised hands and chat through the agent service (issue 13 point 3): the
//! session helper hands what its student sent to the service, and shows
//! what the server answered. The fixture is `service_core.rs`'s: the
//! platform-free core over an in-memory stream.

mod common;

use common::*;
use lectern_agent::service::ServiceDesktop;
use lectern_agent::{Desktop, HeadlessDesktop};

#[test]
fn the_service_takes_the_helpers_requests_and_sends_it_the_answers() {
    use lectern_agent::{StudentNotice, StudentRequest};
    let f = Fixture::new();
    let mut desktop = ServiceDesktop::new(f.registry.clone());
    assert!(desktop.take_requests().is_empty(), "no session, nothing");

    let mut student = HeadlessDesktop::new("PC01", Some("amy".into()));
    student.student_sends(StudentRequest::RaiseHand {
        note: "Zoë: 3b".into(),
    });
    student.student_sends(StudentRequest::Chat {
        text: "hello".into(),
    });
    f.connect_helper_with(helper_peer(), student);
    wait_for("the helper to connect", || {
        f.registry.connected().len() == 1
    });
    assert_eq!(
        desktop.take_requests(),
        vec![
            StudentRequest::RaiseHand {
                note: "Zoë: 3b".into()
            },
            StudentRequest::Chat {
                text: "hello".into()
            },
        ]
    );
    assert!(desktop.take_requests().is_empty(), "taken once");

    // The teacher's answer reaches the session's screen.
    desktop
        .student_notice(StudentNotice::HandClosed {
            answer: Some("On my way".into()),
        })
        .unwrap();
    assert!(desktop.state().message_shown);
}
