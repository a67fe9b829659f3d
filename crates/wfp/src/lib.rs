//! System-wide web blocking for the Windows agent.
//!
//! The browser extension filters the web by URL inside Chrome and Edge; this
//! crate covers every other program with the Windows Filtering Platform
//! (WFP). It has two halves:
//!
//! - [`rules`]: pure rule building from the agent's inputs (internet switch,
//!   web allow or block list, the server, DNS resolvers, the agent itself)
//!   to a list of [`rules::Filter`]s. Tested on every platform.
//! - [`FirewallBackend`]: applies such a list. [`system_backend`] gives the
//!   WFP applier on Windows: a *dynamic* WFP session (Windows removes every
//!   filter of the session when its handle closes, so a crashed or killed
//!   agent never leaves a machine blocked) holding the filters in Lectern's
//!   own sublayer. Elsewhere, and under Wine (which has no WFP), it returns
//!   [`WfpError::Unsupported`].
//!
//! WFP matches IP addresses, never names: [`resolve`] turns the lists' host
//! names into addresses before [`rules::build`]; see
//! `docs/windows-web-blocking.md` for what that means in practice.

pub mod resolve;
pub mod rules;

#[cfg(windows)]
mod wfp;

pub use rules::{
    build, Action, Condition, Filter, Inputs, Layer, ResolvedHost, RuleError, WebList,
};

/// Lectern's WFP sublayer ({f84a5b0c-7567-444a-87c4-77580df33228}): every Lectern filter is added to it, so
/// `netsh wfp show filters` lists them together and no other product's
/// filters are touched.
pub const SUBLAYER_KEY: u128 = 0xf84a5b0c_7567_444a_87c4_77580df33228;

/// The sublayer's display name (shown by `netsh wfp show state`).
pub const SUBLAYER_NAME: &str = "Lectern web blocking";

/// Why filters could not be applied or cleared.
#[derive(Debug, thiserror::Error)]
pub enum WfpError {
    /// This system has no usable Windows Filtering Platform: not Windows,
    /// Wine, or the Base Filtering Engine service is not running. The agent
    /// reports web blocking for other programs as unsupported.
    #[error("Windows Filtering Platform unavailable: {reason}")]
    Unsupported {
        /// What is missing, for the log.
        reason: String,
    },
    /// The engine refused for lack of rights: WFP needs an administrator or
    /// LocalSystem (the agent's service runs as LocalSystem).
    #[error("access denied by the Windows Filtering Platform ({call})")]
    AccessDenied {
        /// The WFP function that refused.
        call: &'static str,
    },
    /// A WFP call failed; `code` is the Win32/FWP_E error it returned.
    #[error("{call} failed with error {code:#010x}")]
    Api {
        /// The WFP function that failed.
        call: &'static str,
        /// Its return code.
        code: u32,
    },
    /// The inputs could not become filters.
    #[error(transparent)]
    Rules(#[from] RuleError),
}

/// Applies filter lists. `apply` replaces whatever the backend applied
/// before, atomically (in one WFP transaction): either the new list is in
/// force or the old one still is.
pub trait FirewallBackend: Send {
    /// Puts exactly `filters` in force.
    fn apply(&mut self, filters: &[Filter]) -> Result<(), WfpError>;
    /// Removes every filter this backend applied.
    fn clear(&mut self) -> Result<(), WfpError>;
}

/// The system's backend: the WFP applier on Windows when the Base Filtering
/// Engine is reachable, else [`WfpError::Unsupported`].
pub fn system_backend() -> Result<Box<dyn FirewallBackend>, WfpError> {
    #[cfg(windows)]
    {
        Ok(Box::new(wfp::WfpEngine::open()?))
    }
    #[cfg(not(windows))]
    {
        Err(WfpError::Unsupported {
            reason: "not Windows".into(),
        })
    }
}

/// The Wine version when running under Wine (whose WFP functions are stubs
/// that report success without filtering anything).
pub fn wine_version() -> Option<String> {
    #[cfg(windows)]
    {
        wfp::wine_version()
    }
    #[cfg(not(windows))]
    {
        None
    }
}
