//! Rule building: what each input turns into, and (proptest) that the
//! always-reachable set survives any list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use lectern_wfp::rules::{
    decide, Connection, MAX_FILTERS, WEIGHT_ALWAYS, WEIGHT_BLOCK_ALL, WEIGHT_BLOCK_WEB,
};
use lectern_wfp::{build, Action, Condition, Inputs, Layer, ResolvedHost, RuleError, WebList};
use proptest::prelude::*;

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 30016);
const DNS: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53));

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn host(name: &str, addrs: &[&str]) -> ResolvedHost {
    ResolvedHost {
        host: name.into(),
        addrs: addrs.iter().map(|a| ip(a)).collect(),
    }
}

fn inputs(internet_blocked: bool, web: WebList) -> Inputs {
    Inputs {
        internet_blocked,
        web,
        server: vec![SERVER],
        dns_resolvers: vec![DNS],
        agent_exe: Some(PathBuf::from(r"C:\Program Files\Lectern\lectern-agent.exe")),
    }
}

fn conn(addr: &str, port: u16) -> Connection {
    Connection {
        addr: ip(addr),
        port,
        app: Some(PathBuf::from(r"C:\Windows\System32\curl.exe")),
    }
}

#[test]
fn nothing_restricted_gives_no_filters() {
    assert_eq!(
        build(&inputs(false, WebList::Unrestricted)).unwrap(),
        vec![]
    );
}

#[test]
fn internet_blocked_keeps_only_the_always_reachable_set() {
    let f = build(&inputs(true, WebList::Unrestricted)).unwrap();
    assert_eq!(decide(&f, &conn("93.184.216.34", 443)), Action::Block);
    assert_eq!(decide(&f, &conn("2606:2800:220:1::1", 80)), Action::Block);
    assert_eq!(decide(&f, &conn("10.0.0.5", 30016)), Action::Permit);
    assert_eq!(
        decide(&f, &conn("10.0.0.5", 22)),
        Action::Block,
        "server host, other port"
    );
    assert_eq!(decide(&f, &conn("10.0.0.53", 53)), Action::Permit);
    assert_eq!(
        decide(&f, &conn("8.8.8.8", 53)),
        Action::Block,
        "not a configured resolver"
    );
    assert_eq!(decide(&f, &conn("127.0.0.1", 8080)), Action::Permit);
    assert_eq!(decide(&f, &conn("::1", 8080)), Action::Permit);
    let agent = Connection {
        app: Some(PathBuf::from(r"C:\Program Files\Lectern\lectern-agent.exe")),
        ..conn("224.0.0.251", 5353)
    };
    assert_eq!(decide(&f, &agent), Action::Permit, "the agent's discovery");
    // The catch-all blocks sit at the bottom of both layers, unconditioned.
    for layer in [Layer::AleAuthConnectV4, Layer::AleAuthConnectV6] {
        assert!(f.iter().any(|x| x.layer == layer
            && x.action == Action::Block
            && x.weight == WEIGHT_BLOCK_ALL
            && x.conditions.is_empty()));
    }
}

#[test]
fn internet_block_wins_over_an_allow_list() {
    let web = WebList::Allow(vec![host("example.org", &["93.184.216.34"])]);
    let f = build(&inputs(true, web)).unwrap();
    assert_eq!(decide(&f, &conn("93.184.216.34", 443)), Action::Block);
}

#[test]
fn allow_list_opens_only_its_hosts_on_the_web_ports() {
    let web = WebList::Allow(vec![
        host("example.org", &["93.184.216.34", "2606:2800:220:1::1"]),
        host("unresolved.invalid", &[]),
    ]);
    let f = build(&inputs(false, web)).unwrap();
    assert_eq!(decide(&f, &conn("93.184.216.34", 443)), Action::Permit);
    assert_eq!(decide(&f, &conn("2606:2800:220:1::1", 80)), Action::Permit);
    assert_eq!(decide(&f, &conn("1.1.1.1", 443)), Action::Block);
    assert_eq!(decide(&f, &conn("1.1.1.1", 80)), Action::Block);
    assert_eq!(decide(&f, &conn("2001:db8::1", 443)), Action::Block);
    // Not the web: other ports stay open (the internet switch closes them).
    assert_eq!(decide(&f, &conn("1.1.1.1", 22)), Action::Permit);
    assert_eq!(decide(&f, &conn("10.0.0.5", 30016)), Action::Permit);
    // The permit is one filter: address AND (port 80 OR 443), in the v4 layer.
    let permit = f
        .iter()
        .find(|x| {
            x.conditions
                .contains(&Condition::RemoteAddress(ip("93.184.216.34")))
        })
        .unwrap();
    assert_eq!(permit.layer, Layer::AleAuthConnectV4);
    assert_eq!(
        permit.conditions,
        vec![
            Condition::RemoteAddress(ip("93.184.216.34")),
            Condition::RemotePort(80),
            Condition::RemotePort(443)
        ]
    );
    assert!(f
        .iter()
        .any(|x| x.weight == WEIGHT_BLOCK_WEB && x.action == Action::Block));
    assert!(
        !f.iter().any(|x| x.name.contains("unresolved")),
        "no address, no filter"
    );
}

#[test]
fn block_list_closes_its_hosts_on_every_port_and_nothing_else() {
    let web = WebList::Block(vec![host("games.example", &["203.0.113.7", "2001:db8::7"])]);
    let f = build(&inputs(false, web)).unwrap();
    assert_eq!(decide(&f, &conn("203.0.113.7", 443)), Action::Block);
    assert_eq!(decide(&f, &conn("203.0.113.7", 8443)), Action::Block);
    assert_eq!(decide(&f, &conn("2001:db8::7", 443)), Action::Block);
    assert_eq!(decide(&f, &conn("203.0.113.8", 443)), Action::Permit);
    assert!(
        f.iter().all(|x| !x.conditions.is_empty()),
        "no catch-all in block-list mode"
    );
    let block = f
        .iter()
        .find(|x| x.layer == Layer::AleAuthConnectV6 && x.action == Action::Block);
    assert_eq!(
        block.unwrap().conditions,
        vec![Condition::RemoteAddress(ip("2001:db8::7"))]
    );
}

#[test]
fn a_listed_server_address_stays_reachable() {
    // A teacher blocks a name that happens to resolve to the server.
    let web = WebList::Block(vec![host("shared.example", &["10.0.0.5", "10.0.0.53"])]);
    let f = build(&inputs(false, web)).unwrap();
    assert_eq!(decide(&f, &conn("10.0.0.5", 30016)), Action::Permit);
    assert_eq!(decide(&f, &conn("10.0.0.53", 53)), Action::Permit);
    assert_eq!(decide(&f, &conn("10.0.0.5", 443)), Action::Block);
}

#[test]
fn always_reachable_filters_have_the_top_weight_and_dedupe() {
    let mut i = inputs(true, WebList::Unrestricted);
    i.server = vec![SERVER, SERVER, SocketAddr::new(ip("fd00::5"), 30016)];
    i.dns_resolvers = vec![DNS, DNS];
    let f = build(&i).unwrap();
    let permits: Vec<_> = f.iter().filter(|x| x.action == Action::Permit).collect();
    assert!(permits.iter().all(|x| x.weight == WEIGHT_ALWAYS));
    // loopback ×2 layers, 2 servers, 1 resolver, agent ×2 layers.
    assert_eq!(permits.len(), 7, "{permits:#?}");
    let v6 = permits
        .iter()
        .find(|x| {
            x.conditions
                .contains(&Condition::RemoteAddress(ip("fd00::5")))
        })
        .unwrap();
    assert_eq!(v6.layer, Layer::AleAuthConnectV6);
    assert!(
        f.windows(2).all(|w| w[0].weight >= w[1].weight),
        "highest weight first"
    );
}

#[test]
fn without_an_agent_path_no_app_id_filter() {
    let mut i = inputs(true, WebList::Unrestricted);
    i.agent_exe = None;
    let f = build(&i).unwrap();
    assert!(!f.iter().any(|x| x
        .conditions
        .iter()
        .any(|c| matches!(c, Condition::AppId(_)))));
}

#[test]
fn duplicate_addresses_across_hosts_give_one_filter() {
    let web = WebList::Block(vec![
        host("a.example", &["203.0.113.7"]),
        host("b.example", &["203.0.113.7"]),
    ]);
    let f = build(&inputs(false, web)).unwrap();
    let n = f
        .iter()
        .filter(|x| {
            x.conditions
                .contains(&Condition::RemoteAddress(ip("203.0.113.7")))
        })
        .count();
    assert_eq!(n, 1);
}

#[test]
fn too_many_addresses_is_a_typed_error() {
    let addrs: Vec<IpAddr> = (0..MAX_FILTERS as u32)
        .map(|n| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
        .collect();
    let web = WebList::Block(vec![ResolvedHost {
        host: "big".into(),
        addrs,
    }]);
    match build(&inputs(false, web)) {
        Err(RuleError::TooManyFilters { needed }) => assert!(needed > MAX_FILTERS),
        other => panic!("expected TooManyFilters, got {other:?}"),
    }
}

#[test]
fn weights_fit_wfp_uint8_range() {
    let web = WebList::Allow(vec![host("example.org", &["93.184.216.34"])]);
    for f in build(&inputs(false, web))
        .unwrap()
        .iter()
        .chain(build(&inputs(true, WebList::Unrestricted)).unwrap().iter())
    {
        assert!(f.weight <= 15, "{f:?}");
        assert!(f.name.starts_with("Lectern: "));
    }
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n))),
        any::<u128>().prop_map(|n| IpAddr::V6(Ipv6Addr::from(n))),
        // Small pools so lists often contain the server and resolvers.
        (0u8..8).prop_map(|n| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))),
    ]
}

fn any_hosts() -> impl Strategy<Value = Vec<ResolvedHost>> {
    prop::collection::vec(
        prop::collection::vec(any_ip(), 0..6).prop_map(|addrs| ResolvedHost {
            host: "h".into(),
            addrs,
        }),
        0..6,
    )
}

fn any_web() -> impl Strategy<Value = WebList> {
    prop_oneof![
        Just(WebList::Unrestricted),
        any_hosts().prop_map(WebList::Allow),
        any_hosts().prop_map(WebList::Block),
    ]
}

proptest! {
    #[test]
    fn server_dns_and_loopback_are_never_blocked(
        internet_blocked in any::<bool>(),
        web in any_web(),
        server_ip in any_ip(),
        server_port in any::<u16>(),
        resolver in any_ip(),
        probe in any_ip(),
        probe_port in any::<u16>(),
    ) {
        let i = Inputs {
            internet_blocked,
            web,
            server: vec![SocketAddr::new(server_ip, server_port)],
            dns_resolvers: vec![resolver],
            agent_exe: None,
        };
        let f = build(&i).unwrap();
        prop_assert_eq!(decide(&f, &Connection { addr: server_ip, port: server_port, app: None }), Action::Permit);
        prop_assert_eq!(decide(&f, &Connection { addr: resolver, port: 53, app: None }), Action::Permit);
        prop_assert_eq!(decide(&f, &Connection { addr: ip("127.0.0.1"), port: probe_port, app: None }), Action::Permit);
        prop_assert_eq!(decide(&f, &Connection { addr: ip("::1"), port: probe_port, app: None }), Action::Permit);
        // And the internet switch blocks everything else.
        let special = probe == server_ip || probe == resolver || probe.is_loopback()
            || matches!(probe, IpAddr::V6(a) if a.to_ipv4_mapped().is_some_and(|v| v.is_loopback()));
        if internet_blocked && !special {
            prop_assert_eq!(decide(&f, &Connection { addr: probe, port: probe_port, app: None }), Action::Block);
        }
    }

    #[test]
    fn every_filter_is_in_the_layer_of_its_address(web in any_web(), internet_blocked in any::<bool>()) {
        let f = build(&Inputs { internet_blocked, web, ..Inputs::default() }).unwrap();
        for x in &f {
            for c in &x.conditions {
                if let Condition::RemoteAddress(a) = c {
                    prop_assert_eq!(x.layer, Layer::for_addr(a));
                }
            }
        }
    }
}
