//! Host names to addresses for [`crate::rules::build`].
//!
//! WFP filters on IP addresses only. The agent resolves each host of the
//! web list with the system resolver (the same answers the student's
//! programs get) when the policy changes and again every
//! [`REFRESH_SECS`] seconds, then rebuilds the filters. What this cannot do
//! (and the browser extension does): paths, query strings, wildcard
//! subdomains beyond the base name, and telling apart sites that share an
//! address (CDNs) — see docs/windows-web-blocking.md.

use std::io;
use std::net::{IpAddr, ToSocketAddrs};

use crate::rules::ResolvedHost;

/// How often the agent re-resolves the lists (DNS answers of big sites
/// rotate within minutes).
pub const REFRESH_SECS: u64 = 300;

/// At most this many addresses are kept per host name.
pub const MAX_ADDRS_PER_HOST: usize = 16;

/// At most this many host names are resolved per list.
pub const MAX_HOSTS: usize = 256;

/// The name to resolve for a list entry, or `None` when the entry is not a
/// host name: lower-cased, a leading `*.` and a trailing dot dropped, any
/// scheme, path or port removed.
pub fn normalize(entry: &str) -> Option<String> {
    let mut s = entry.trim().to_ascii_lowercase();
    if let Some(rest) = s.split_once("://").map(|(_, r)| r.to_string()) {
        s = rest;
    }
    s = s.split(['/', '?', '#']).next().unwrap_or("").to_string();
    if s.starts_with('[') {
        // [v6]:port
        s = s[1..].split(']').next().unwrap_or("").to_string();
    } else if s.matches(':').count() == 1 {
        s = s.split(':').next().unwrap_or("").to_string();
    }
    let s = s.strip_prefix("*.").unwrap_or(&s).trim_end_matches('.');
    let valid = !s.is_empty()
        && s.len() <= 253
        && (s.parse::<IpAddr>().is_ok()
            || s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    valid.then(|| s.to_string())
}

/// Resolves the list's entries with `lookup`, keeping the order, skipping
/// entries that are not host names and keeping at most [`MAX_HOSTS`] names
/// and [`MAX_ADDRS_PER_HOST`] addresses each. A name that fails to resolve
/// gets no addresses (and so no filter) rather than failing the list.
pub fn resolve_hosts(
    entries: &[String],
    mut lookup: impl FnMut(&str) -> io::Result<Vec<IpAddr>>,
) -> Vec<ResolvedHost> {
    let mut out: Vec<ResolvedHost> = Vec::new();
    for host in entries.iter().filter_map(|e| normalize(e)) {
        if out.len() == MAX_HOSTS {
            break;
        }
        if out.iter().any(|h| h.host == host) {
            continue;
        }
        let mut addrs = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => lookup(&host).unwrap_or_default(),
        };
        addrs.sort();
        addrs.dedup();
        addrs.truncate(MAX_ADDRS_PER_HOST);
        out.push(ResolvedHost { host, addrs });
    }
    out
}

/// The system resolver (getaddrinfo), for [`resolve_hosts`].
pub fn system_lookup(host: &str) -> io::Result<Vec<IpAddr>> {
    Ok((host, 443).to_socket_addrs()?.map(|a| a.ip()).collect())
}
