//! The service's system-wide web block: the web settings the browser
//! extension enforces in Chrome and Edge, put in force for every other
//! program with the Windows Filtering Platform (`lectern-wfp`). The service
//! runs as LocalSystem, which WFP requires; its dynamic session ends (and
//! every filter with it) when the service stops or dies.
//!
//! WFP filters addresses, and the DNS answers of big sites rotate within
//! minutes, so a refresher thread resolves the lists in force again every
//! [`REFRESH_SECS`](lectern_wfp::resolve::REFRESH_SECS) seconds and
//! re-applies the filters only when an address changed.
//!
//! Under Wine there is no WFP: the backend reports
//! [`lectern_wfp::WfpError::Unsupported`], the service then reports the
//! setting as unsupported and does not claim `InternetBlock`.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use lectern_proto::WebFilterMode;
use lectern_wfp::{resolve, FirewallBackend, Inputs, WebList};

use crate::ipc::WebPolicy;
use crate::service::SystemWebBlock;

/// How host names become addresses (the system resolver; a fake in tests).
type Lookup = fn(&str) -> io::Result<Vec<IpAddr>>;

/// Makes the firewall backend (WFP; a fake in tests).
type OpenBackend = fn() -> Result<Box<dyn FirewallBackend>, String>;

/// The WFP block, opened on first use (and again after a failure).
pub struct WfpWebBlock {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    open: OpenBackend,
    lookup: Lookup,
    backend: Option<Box<dyn FirewallBackend>>,
    server: Vec<SocketAddr>,
    agent_exe: Option<PathBuf>,
    /// The settings in force and the inputs their filters were built from
    /// (`None` until an apply succeeds, and after one fails: nothing to refresh).
    applied: Option<(WebPolicy, Inputs)>,
}

fn guard(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl WfpWebBlock {
    /// A block that always lets this agent reach `server` (`host:port`, or
    /// several separated by commas),
    /// with a refresher thread that lives as long as the block.
    pub fn new(server: &str) -> Self {
        // Every gateway of a cluster's address list.
        let server = crate::server_addresses(server)
            .into_iter()
            .filter_map(|a| a.to_socket_addrs().ok())
            .flatten()
            .collect();
        let open: OpenBackend = || lectern_wfp::system_backend().map_err(|e| e.to_string());
        let block = Self::with(open, resolve::system_lookup, server);
        let weak = Arc::downgrade(&block.inner);
        let every = Duration::from_secs(resolve::REFRESH_SECS);
        let spawned = std::thread::Builder::new()
            .name("lectern-wfp-refresh".into())
            .spawn(move || refresh_every(weak, every));
        if let Err(e) = spawned {
            tracing::warn!("web lists will not be re-resolved: {e}");
        }
        block
    }

    /// A block over `open`'s backend resolving with `lookup`, without the
    /// refresher thread (tests call [`WfpWebBlock::refresh`] themselves).
    fn with(open: OpenBackend, lookup: Lookup, server: Vec<SocketAddr>) -> Self {
        WfpWebBlock {
            inner: Arc::new(Mutex::new(Inner {
                open,
                lookup,
                backend: None,
                server,
                agent_exe: std::env::current_exe().ok(),
                applied: None,
            })),
        }
    }

    /// Resolves the settings in force again and re-applies the filters if
    /// an address changed; true when it re-applied. DNS is asked without
    /// holding the lock, so a teacher's change is never held up by it.
    pub fn refresh(&self) -> bool {
        refresh(&self.inner)
    }
}

/// Refreshes `inner` every `every` until the block is dropped.
fn refresh_every(inner: Weak<Mutex<Inner>>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(inner) = inner.upgrade() else { return };
        refresh(&inner);
    }
}

fn refresh(inner: &Mutex<Inner>) -> bool {
    let (web, server, exe, lookup) = {
        let i = guard(inner);
        let Some((web, _)) = &i.applied else {
            return false;
        };
        (web.clone(), i.server.clone(), i.agent_exe.clone(), i.lookup)
    };
    let fresh = inputs(&web, &server, exe.as_deref(), lookup);
    let mut i = guard(inner);
    // The settings changed meanwhile: their `enforce` resolved afresh.
    let Some((now, applied)) = &i.applied else {
        return false;
    };
    if *now != web || !addresses_changed(applied, &fresh) {
        return false;
    }
    tracing::info!("web list addresses changed; re-applying the system-wide web block");
    if let Err(e) = i.apply(web, fresh) {
        tracing::warn!("cannot re-apply the system-wide web block: {e}");
    }
    true
}

impl Inner {
    fn backend(&mut self) -> Result<&mut Box<dyn FirewallBackend>, String> {
        if self.backend.is_none() {
            self.backend = Some((self.open)()?);
        }
        Ok(self.backend.as_mut().expect("just set"))
    }

    /// Builds and applies the filters for `inputs`, remembering them.
    fn apply(&mut self, web: WebPolicy, inputs: Inputs) -> Result<(), String> {
        let filters = lectern_wfp::build(&inputs).map_err(|e| e.to_string())?;
        let result = self.backend()?.apply(&filters).map_err(|e| e.to_string());
        match &result {
            Ok(()) => self.applied = Some((web, inputs)),
            Err(_) => {
                // Opened again at the next change (the engine may be back).
                self.backend = None;
                self.applied = None;
            }
        }
        result
    }
}

/// Whether freshly resolved `fresh` inputs call for re-applying filters
/// built from `applied`: only when an address changed. Resolvers rotate
/// the order of their answers, so a new order alone is no change.
pub fn addresses_changed(applied: &Inputs, fresh: &Inputs) -> bool {
    canonical(applied) != canonical(fresh)
}

/// `inputs` with every host's addresses sorted and deduplicated.
fn canonical(inputs: &Inputs) -> Inputs {
    let mut c = inputs.clone();
    if let WebList::Allow(hosts) | WebList::Block(hosts) = &mut c.web {
        for h in hosts {
            h.addrs.sort();
            h.addrs.dedup();
        }
    }
    c
}

/// The rule inputs for `web`: host names resolved now with `lookup` (WFP
/// filters addresses; the lists are resolved again whenever the settings
/// change and every `REFRESH_SECS`).
pub fn inputs(
    web: &WebPolicy,
    server: &[SocketAddr],
    agent_exe: Option<&std::path::Path>,
    lookup: Lookup,
) -> Inputs {
    let web_list = match web.mode {
        WebFilterMode::Off => WebList::Unrestricted,
        WebFilterMode::AllowList => {
            let mut hosts = web.allow.clone();
            hosts.extend(web.always_allowed.iter().cloned());
            WebList::Allow(resolve::resolve_hosts(&hosts, lookup))
        }
        WebFilterMode::BlockList => WebList::Block(resolve::resolve_hosts(&web.block, lookup)),
    };
    Inputs {
        internet_blocked: web.internet_blocked,
        web: web_list,
        server: server.to_vec(),
        // Not read from the system yet: DNS stays open unless the whole
        // internet is blocked (docs/windows-web-blocking.md).
        dns_resolvers: Vec::new(),
        agent_exe: agent_exe.map(Into::into),
    }
}

impl SystemWebBlock for WfpWebBlock {
    fn enforce(&mut self, web: &WebPolicy) -> Result<(), String> {
        let (server, exe, lookup) = {
            let i = guard(&self.inner);
            (i.server.clone(), i.agent_exe.clone(), i.lookup)
        };
        let inputs = inputs(web, &server, exe.as_deref(), lookup);
        guard(&self.inner).apply(web.clone(), inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_wfp::{Filter, ResolvedHost, WfpError};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn host(name: &str, addrs: &[[u8; 4]]) -> ResolvedHost {
        ResolvedHost {
            host: name.into(),
            addrs: addrs.iter().map(|a| IpAddr::from(*a)).collect(),
        }
    }

    fn blocking(hosts: Vec<ResolvedHost>) -> Inputs {
        Inputs {
            web: WebList::Block(hosts),
            ..Default::default()
        }
    }

    #[test]
    fn only_a_changed_address_calls_for_re_applying() {
        let applied = blocking(vec![host("games.example", &[[10, 0, 0, 1], [10, 0, 0, 2]])]);
        let same = blocking(vec![host("games.example", &[[10, 0, 0, 1], [10, 0, 0, 2]])]);
        let rotated = blocking(vec![host("games.example", &[[10, 0, 0, 2], [10, 0, 0, 1]])]);
        let moved = blocking(vec![host("games.example", &[[10, 0, 0, 1], [10, 0, 0, 3]])]);
        let gone = blocking(vec![host("games.example", &[])]);
        assert!(!addresses_changed(&applied, &same), "unchanged: nothing");
        assert!(
            !addresses_changed(&applied, &rotated),
            "a new order alone: nothing"
        );
        assert!(
            addresses_changed(&applied, &moved),
            "a new address: re-apply"
        );
        assert!(
            addresses_changed(&applied, &gone),
            "no longer resolves: re-apply"
        );
        let allowing = Inputs {
            web: WebList::Allow(vec![host("games.example", &[[10, 0, 0, 1]])]),
            ..Default::default()
        };
        assert!(
            addresses_changed(&allowing, &moved),
            "another list: re-apply"
        );
    }

    // The fakes are plain functions (the block keeps fn pointers), so they
    // share these; only this test uses them.
    static APPLIES: AtomicUsize = AtomicUsize::new(0);
    static LAST_OCTET: AtomicUsize = AtomicUsize::new(1);

    struct CountingBackend;
    impl FirewallBackend for CountingBackend {
        fn apply(&mut self, _filters: &[Filter]) -> Result<(), WfpError> {
            APPLIES.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn clear(&mut self) -> Result<(), WfpError> {
            Ok(())
        }
    }

    #[test]
    fn the_refresh_re_applies_only_when_the_lists_resolve_differently() {
        let open: OpenBackend = || Ok(Box::new(CountingBackend));
        let lookup: Lookup = |_| {
            Ok(vec![IpAddr::from([
                10,
                0,
                0,
                LAST_OCTET.load(Ordering::SeqCst) as u8,
            ])])
        };
        let mut block = WfpWebBlock::with(open, lookup, Vec::new());
        assert!(!block.refresh(), "nothing in force: nothing to refresh");
        let web = WebPolicy {
            mode: WebFilterMode::BlockList,
            block: vec!["games.example".into()],
            ..Default::default()
        };
        block.enforce(&web).unwrap();
        assert_eq!(APPLIES.load(Ordering::SeqCst), 1);
        assert!(!block.refresh(), "same address");
        assert_eq!(APPLIES.load(Ordering::SeqCst), 1, "nothing re-applied");
        LAST_OCTET.store(2, Ordering::SeqCst);
        assert!(block.refresh(), "the address moved");
        assert_eq!(APPLIES.load(Ordering::SeqCst), 2, "re-applied once");
        assert!(!block.refresh(), "and not again");
        assert_eq!(APPLIES.load(Ordering::SeqCst), 2);
    }
}
