//! Pure rule building: the agent's web inputs become a list of WFP filters.
//!
//! All filters live in Lectern's own sublayer ([`crate::SUBLAYER_NAME`]).
//! Inside one sublayer WFP evaluates filters from the highest weight down and
//! the first matching filter with a terminating action decides, so the order
//! of the weights below *is* the policy:
//!
//! | weight | filters                                                   |
//! |--------|-----------------------------------------------------------|
//! | 15     | always reachable: loopback, the server, DNS, the agent    |
//! | 10     | permits for the hosts of a web allow list                 |
//! | 8      | blocks for the hosts of a web block list                  |
//! | 2      | allow-list mode: block every other web connection          |
//! | 0      | internet blocked: block every other connection             |
//!
//! Because the always-reachable permits outrank every block, the server, the
//! resolvers and loopback stay reachable whatever the lists contain (the
//! proptest in this module checks it against an evaluator of these
//! semantics).
//!
//! WFP matches *addresses*, not names: callers resolve host names first
//! ([`crate::resolve`]); URL-level filtering stays with the browser extension.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

/// Ports a browser uses for the web: HTTP, HTTPS (TCP) and QUIC (UDP 443).
pub const WEB_PORTS: [u16; 2] = [80, 443];

/// DNS port: name resolution to the configured resolvers stays open.
pub const DNS_PORT: u16 = 53;

/// At most this many filters per policy: each one costs kernel memory and a
/// host that resolves to hundreds of addresses must not flood the engine.
pub const MAX_FILTERS: usize = 2048;

/// Weight of the always-reachable permits (the highest in the sublayer).
pub const WEIGHT_ALWAYS: u8 = 15;
/// Weight of an allow-list permit.
pub const WEIGHT_ALLOW: u8 = 10;
/// Weight of a block-list block.
pub const WEIGHT_BLOCK_HOST: u8 = 8;
/// Weight of the allow-list catch-all block on the web ports.
pub const WEIGHT_BLOCK_WEB: u8 = 2;
/// Weight of the internet catch-all block.
pub const WEIGHT_BLOCK_ALL: u8 = 0;

/// The web list in force: from the policy, or a teacher's command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WebList {
    /// No host restrictions beyond the internet switch.
    #[default]
    Unrestricted,
    /// Only these hosts may be reached on the web ports.
    Allow(Vec<ResolvedHost>),
    /// These hosts may not be reached at all.
    Block(Vec<ResolvedHost>),
}

/// A host name from a list and the addresses it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedHost {
    /// The name as written in the list (kept for the filters' names).
    pub host: String,
    /// Its addresses; empty when it did not resolve (then nothing is added).
    pub addrs: Vec<IpAddr>,
}

/// Everything the agent knows that decides the filters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Inputs {
    /// The internet switch: when on, only the always-reachable set remains.
    pub internet_blocked: bool,
    /// The web allow or block list.
    pub web: WebList,
    /// The Lectern server's addresses (always reachable on their port).
    pub server: Vec<SocketAddr>,
    /// The configured DNS resolvers (reachable on port 53).
    pub dns_resolvers: Vec<IpAddr>,
    /// The agent's own executable: permitted everywhere so discovery,
    /// reconnection and updates never depend on the filters.
    pub agent_exe: Option<PathBuf>,
}

/// The two ALE connect layers: outbound TCP connects and first UDP sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Layer {
    /// FWPM_LAYER_ALE_AUTH_CONNECT_V4.
    AleAuthConnectV4,
    /// FWPM_LAYER_ALE_AUTH_CONNECT_V6.
    AleAuthConnectV6,
}

impl Layer {
    /// The layer that sees connections to `addr`.
    pub fn for_addr(addr: &IpAddr) -> Layer {
        match addr {
            IpAddr::V4(_) => Layer::AleAuthConnectV4,
            IpAddr::V6(_) => Layer::AleAuthConnectV6,
        }
    }
}

/// A filter's terminating action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// FWP_ACTION_PERMIT.
    Permit,
    /// FWP_ACTION_BLOCK.
    Block,
}

/// One match condition. As in WFP, conditions on *different* fields must all
/// match, conditions on the *same* field match if any of them does (so
/// `[RemoteAddress(a), RemotePort(80), RemotePort(443)]` is
/// "to a, on port 80 or 443").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// FWPM_CONDITION_IP_REMOTE_ADDRESS equal to this address.
    RemoteAddress(IpAddr),
    /// FWPM_CONDITION_IP_REMOTE_PORT equal to this port.
    RemotePort(u16),
    /// FWPM_CONDITION_FLAGS has FWP_CONDITION_FLAG_IS_LOOPBACK.
    Loopback,
    /// FWPM_CONDITION_ALE_APP_ID of this executable.
    AppId(PathBuf),
}

impl Condition {
    /// Which WFP field the condition tests (same field = OR, else AND).
    fn field(&self) -> u8 {
        match self {
            Condition::RemoteAddress(_) => 0,
            Condition::RemotePort(_) => 1,
            Condition::Loopback => 2,
            Condition::AppId(_) => 3,
        }
    }
}

/// One WFP filter, ready for the applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Shown by `netsh wfp show filters` (displayData.name).
    pub name: String,
    /// The layer it sits in.
    pub layer: Layer,
    /// What it does when it matches.
    pub action: Action,
    /// Its weight inside the Lectern sublayer (0..=15, FWP_UINT8).
    pub weight: u8,
    /// What it matches; empty matches every connection of the layer.
    pub conditions: Vec<Condition>,
}

/// Why the inputs could not become filters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    /// The lists resolve to more addresses than [`MAX_FILTERS`] allows.
    #[error("the web lists need {needed} filters, more than the limit of {MAX_FILTERS}")]
    TooManyFilters {
        /// How many filters the inputs would need.
        needed: usize,
    },
}

/// A connection attempt as the ALE connect layers see it (for [`decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The remote address.
    pub addr: IpAddr,
    /// The remote port.
    pub port: u16,
    /// The connecting program, if known.
    pub app: Option<PathBuf>,
}

/// Builds the filters for `inputs`, highest weight first.
///
/// Unrestricted web with the internet open gives no filters at all (the
/// applier then clears the sublayer).
pub fn build(inputs: &Inputs) -> Result<Vec<Filter>, RuleError> {
    let restricting = inputs.internet_blocked || !matches!(inputs.web, WebList::Unrestricted);
    if !restricting {
        return Ok(Vec::new());
    }
    let mut filters = always_reachable(inputs);
    if inputs.internet_blocked {
        // The internet switch wins over any list: lists only refine web access.
        filters.extend(catch_all(Action::Block, WEIGHT_BLOCK_ALL, &[], "block all"));
    } else {
        match &inputs.web {
            WebList::Unrestricted => {}
            WebList::Allow(hosts) => {
                filters.extend(host_filters(
                    hosts,
                    Action::Permit,
                    WEIGHT_ALLOW,
                    &WEB_PORTS,
                ));
                filters.extend(catch_all(
                    Action::Block,
                    WEIGHT_BLOCK_WEB,
                    &WEB_PORTS,
                    "block web",
                ));
            }
            WebList::Block(hosts) => {
                filters.extend(host_filters(hosts, Action::Block, WEIGHT_BLOCK_HOST, &[]));
            }
        }
    }
    if filters.len() > MAX_FILTERS {
        return Err(RuleError::TooManyFilters {
            needed: filters.len(),
        });
    }
    Ok(filters)
}

/// Loopback, the server, DNS to the resolvers and the agent itself.
fn always_reachable(inputs: &Inputs) -> Vec<Filter> {
    let mut out = catch_all(Action::Permit, WEIGHT_ALWAYS, &[], "loopback");
    for f in &mut out {
        f.conditions.push(Condition::Loopback);
    }
    let servers: BTreeSet<SocketAddr> = inputs.server.iter().copied().collect();
    for server in servers {
        out.push(Filter {
            name: format!("Lectern: server {server}"),
            layer: Layer::for_addr(&server.ip()),
            action: Action::Permit,
            weight: WEIGHT_ALWAYS,
            conditions: vec![
                Condition::RemoteAddress(server.ip()),
                Condition::RemotePort(server.port()),
            ],
        });
    }
    let resolvers: BTreeSet<IpAddr> = inputs.dns_resolvers.iter().copied().collect();
    for resolver in resolvers {
        out.push(Filter {
            name: format!("Lectern: DNS {resolver}"),
            layer: Layer::for_addr(&resolver),
            action: Action::Permit,
            weight: WEIGHT_ALWAYS,
            conditions: vec![
                Condition::RemoteAddress(resolver),
                Condition::RemotePort(DNS_PORT),
            ],
        });
    }
    if let Some(exe) = &inputs.agent_exe {
        let mut agent = catch_all(Action::Permit, WEIGHT_ALWAYS, &[], "agent");
        for f in &mut agent {
            f.conditions.push(Condition::AppId(exe.clone()));
        }
        out.extend(agent);
    }
    out
}

/// One filter per address of the hosts (deduplicated), optionally limited to
/// `ports`.
fn host_filters(hosts: &[ResolvedHost], action: Action, weight: u8, ports: &[u16]) -> Vec<Filter> {
    let verb = match action {
        Action::Permit => "allow",
        Action::Block => "block",
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for host in hosts {
        for addr in &host.addrs {
            if !seen.insert(*addr) {
                continue;
            }
            let mut conditions = vec![Condition::RemoteAddress(*addr)];
            conditions.extend(ports.iter().map(|p| Condition::RemotePort(*p)));
            out.push(Filter {
                name: format!("Lectern: {verb} {} ({addr})", host.host),
                layer: Layer::for_addr(addr),
                action,
                weight,
                conditions,
            });
        }
    }
    out
}

/// The same filter in both layers.
fn catch_all(action: Action, weight: u8, ports: &[u16], what: &str) -> Vec<Filter> {
    [Layer::AleAuthConnectV4, Layer::AleAuthConnectV6]
        .into_iter()
        .map(|layer| Filter {
            name: format!("Lectern: {what}"),
            layer,
            action,
            weight,
            conditions: ports.iter().map(|p| Condition::RemotePort(*p)).collect(),
        })
        .collect()
}

/// What the filters do to `conn`, evaluated as WFP does inside one sublayer:
/// the matching filter of the highest weight decides; no match permits.
/// Used by the tests and by the manual check list's expectations.
pub fn decide(filters: &[Filter], conn: &Connection) -> Action {
    let layer = Layer::for_addr(&conn.addr);
    filters
        .iter()
        .filter(|f| f.layer == layer && matches(f, conn))
        .max_by_key(|f| (f.weight, matches!(f.action, Action::Block)))
        .map_or(Action::Permit, |f| f.action)
}

/// Whether every field of `f`'s conditions has a matching condition.
fn matches(f: &Filter, conn: &Connection) -> bool {
    let fields: BTreeSet<u8> = f.conditions.iter().map(Condition::field).collect();
    fields.into_iter().all(|field| {
        f.conditions
            .iter()
            .filter(|c| c.field() == field)
            .any(|c| condition_matches(c, conn))
    })
}

fn condition_matches(c: &Condition, conn: &Connection) -> bool {
    match c {
        Condition::RemoteAddress(a) => *a == conn.addr,
        Condition::RemotePort(p) => *p == conn.port,
        Condition::Loopback => is_loopback(&conn.addr),
        Condition::AppId(exe) => conn.app.as_ref() == Some(exe),
    }
}

/// Loopback as WFP's IS_LOOPBACK flag sees it (127/8, ::1, v4-mapped 127/8).
fn is_loopback(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => {
            a.is_loopback()
                || a.to_ipv4_mapped()
                    .is_some_and(|v4: Ipv4Addr| v4.is_loopback())
        }
    }
}
