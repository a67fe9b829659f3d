//! The service's system-wide web block (WFP on Windows) behind
//! `SystemWebBlock`: it gets the web settings whenever they change, the
//! device claims `internet_block` only while it works, and a block nothing
//! enforces fails with the reason instead of reporting success. Platform-free
//! (runs on Linux and under Wine).

use std::sync::{Arc, Mutex};

use lectern_agent::ipc::{Account, WebPolicy};
use lectern_agent::service::{Registry, ServiceDesktop, SessionInfo, SystemWebBlock};
use lectern_agent::Desktop;
use lectern_proto::{Capability, WebFilterMode};

#[derive(Debug, Clone)]
struct NoSession(Account);

impl SessionInfo for NoSession {
    fn key(&self) -> &str {
        "s1"
    }
    fn user(&self) -> &str {
        "amy"
    }
    fn account(&self) -> &Account {
        &self.0
    }
    fn place(&self) -> &str {
        "seat 1"
    }
    fn end(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Records what it was asked to enforce; fails with `error` if set.
#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<WebPolicy>>>,
    error: Option<String>,
}

impl SystemWebBlock for Fake {
    fn enforce(&mut self, web: &WebPolicy) -> Result<(), String> {
        self.seen.lock().unwrap().push(web.clone());
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

fn desktop(fake: &Fake) -> ServiceDesktop<NoSession> {
    let registry = Registry::<NoSession>::new(None);
    ServiceDesktop::with_system_web_block(registry, Box::new(fake.clone()))
}

#[test]
fn a_working_system_block_enforces_every_change_and_is_claimed() {
    let fake = Fake::default();
    let mut d = desktop(&fake);
    assert_eq!(fake.seen.lock().unwrap().len(), 1, "enforced at start");
    let caps = d.capabilities();
    assert!(caps.contains(&Capability::InternetBlock), "{caps:?}");
    assert!(caps.contains(&Capability::WebFilter), "{caps:?}");

    d.set_internet_blocked(true).unwrap();
    assert!(fake.seen.lock().unwrap().last().unwrap().internet_blocked);
    assert!(d.state().internet_blocked);
    assert!(!d.state().unsupported.contains(&"internet_blocked".into()));

    // A teacher's lists work without any browser extension.
    d.set_web_filter(WebFilterMode::AllowList, &["example.org".into()], &[])
        .unwrap();
    let last = fake.seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.mode, WebFilterMode::AllowList);
    assert_eq!(last.allow, vec!["example.org".to_string()]);

    let policy = lectern_proto::Policy {
        internet_blocked: true,
        ..Default::default()
    };
    let unsupported = d.apply_policy(&policy);
    assert!(!unsupported.contains(&"internet_blocked".into()));
    d.set_internet_blocked(false).unwrap();
    let last = fake.seen.lock().unwrap().last().unwrap().clone();
    assert!(last.internet_blocked, "the policy still blocks");
}

#[test]
fn an_unavailable_system_block_is_reported_not_claimed() {
    let fake = Fake {
        error: Some("Windows Filtering Platform unavailable: Wine 8.0".into()),
        ..Fake::default()
    };
    let mut d = desktop(&fake);
    let caps = d.capabilities();
    assert!(!caps.contains(&Capability::InternetBlock), "{caps:?}");
    assert!(!caps.contains(&Capability::WebFilter), "{caps:?}");

    let e = d.set_internet_blocked(true).unwrap_err().to_string();
    assert!(e.contains("Windows Filtering Platform unavailable"), "{e}");
    assert!(e.contains("no browser extension"), "{e}");
    assert!(
        fake.seen.lock().unwrap().last().unwrap().internet_blocked,
        "it was tried"
    );
    // Lifting a block that never took effect is fine.
    d.set_internet_blocked(false).unwrap();

    let e = d
        .set_web_filter(WebFilterMode::BlockList, &[], &["games.example".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Windows Filtering Platform unavailable"), "{e}");
}

#[test]
fn without_a_system_block_nothing_changes() {
    let registry = Registry::<NoSession>::new(None);
    let mut d = ServiceDesktop::new(registry);
    assert!(!d.capabilities().contains(&Capability::InternetBlock));
    // As before: no session and no extension, the block is kept for later.
    d.set_internet_blocked(true).unwrap();
}
