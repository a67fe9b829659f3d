//! The service's system-wide web block: the web settings the browser
//! extension enforces in Chrome and Edge, put in force for every other
//! program with the Windows Filtering Platform (`lectern-wfp`). The service
//! runs as LocalSystem, which WFP requires; its dynamic session ends (and
//! every filter with it) when the service stops or dies.
//!
//! Under Wine there is no WFP: the backend reports
//! [`lectern_wfp::WfpError::Unsupported`], the service then reports the
//! setting as unsupported and does not claim `InternetBlock`.

use std::net::{SocketAddr, ToSocketAddrs};

use lectern_proto::WebFilterMode;
use lectern_wfp::{resolve, FirewallBackend, Inputs, WebList};

use crate::ipc::WebPolicy;
use crate::service::SystemWebBlock;

/// The WFP block, opened on first use (and again after a failure).
pub struct WfpWebBlock {
    backend: Option<Box<dyn FirewallBackend>>,
    server: Vec<SocketAddr>,
    agent_exe: Option<std::path::PathBuf>,
}

impl WfpWebBlock {
    /// A block that always lets this agent reach `server` (`host:port`).
    pub fn new(server: &str) -> Self {
        let server = server
            .to_socket_addrs()
            .map(Iterator::collect)
            .unwrap_or_default();
        WfpWebBlock {
            backend: None,
            server,
            agent_exe: std::env::current_exe().ok(),
        }
    }

    fn backend(&mut self) -> Result<&mut Box<dyn FirewallBackend>, String> {
        if self.backend.is_none() {
            self.backend = Some(lectern_wfp::system_backend().map_err(|e| e.to_string())?);
        }
        Ok(self.backend.as_mut().expect("just set"))
    }
}

/// The rule inputs for `web`: host names resolved now with the system
/// resolver (WFP filters addresses; the lists are resolved again whenever
/// the settings change).
pub fn inputs(
    web: &WebPolicy,
    server: &[SocketAddr],
    agent_exe: Option<&std::path::Path>,
) -> Inputs {
    let lookup = resolve::system_lookup;
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
        let inputs = inputs(web, &self.server, self.agent_exe.as_deref());
        let filters = lectern_wfp::build(&inputs).map_err(|e| e.to_string())?;
        let result = self.backend()?.apply(&filters).map_err(|e| e.to_string());
        if result.is_err() {
            // Opened again at the next change (the engine may be back).
            self.backend = None;
        }
        result
    }
}
