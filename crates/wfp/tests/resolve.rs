//! List entries to resolved hosts.

use std::io;
use std::net::IpAddr;

use lectern_wfp::resolve::{normalize, resolve_hosts, MAX_ADDRS_PER_HOST, MAX_HOSTS};

#[test]
fn entries_are_normalized_to_host_names() {
    assert_eq!(normalize("Example.ORG").as_deref(), Some("example.org"));
    assert_eq!(normalize("*.example.org").as_deref(), Some("example.org"));
    assert_eq!(
        normalize("https://example.org:8443/path?q=1").as_deref(),
        Some("example.org")
    );
    assert_eq!(normalize("example.org.").as_deref(), Some("example.org"));
    assert_eq!(normalize("203.0.113.7").as_deref(), Some("203.0.113.7"));
    assert_eq!(
        normalize("[2001:db8::7]:443").as_deref(),
        Some("2001:db8::7")
    );
    assert_eq!(normalize("2001:db8::7").as_deref(), Some("2001:db8::7"));
    assert_eq!(normalize(""), None);
    assert_eq!(normalize("bad host!"), None);
    assert_eq!(normalize(&"a".repeat(300)), None);
}

#[test]
fn lookups_fill_addresses_and_failures_give_none() {
    let entries: Vec<String> = [
        "example.org",
        "nowhere.invalid",
        "203.0.113.7",
        "EXAMPLE.org",
        "bad host!",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut asked = Vec::new();
    let hosts = resolve_hosts(&entries, |h| {
        asked.push(h.to_string());
        match h {
            "example.org" => Ok(vec![
                "93.184.216.34".parse().unwrap(),
                "93.184.216.34".parse().unwrap(),
            ]),
            _ => Err(io::Error::new(io::ErrorKind::NotFound, "NXDOMAIN")),
        }
    });
    assert_eq!(
        asked,
        ["example.org", "nowhere.invalid"],
        "literals and duplicates are not looked up"
    );
    assert_eq!(hosts.len(), 3);
    assert_eq!(
        hosts[0].addrs,
        vec!["93.184.216.34".parse::<IpAddr>().unwrap()]
    );
    assert!(hosts[1].addrs.is_empty());
    assert_eq!(
        hosts[2].addrs,
        vec!["203.0.113.7".parse::<IpAddr>().unwrap()]
    );
}

#[test]
fn limits_on_hosts_and_addresses() {
    let entries: Vec<String> = (0..MAX_HOSTS + 10)
        .map(|n| format!("h{n}.example"))
        .collect();
    let hosts = resolve_hosts(&entries, |_| {
        Ok((0..40u32)
            .map(|n| IpAddr::from([10, 0, 0, n as u8]))
            .collect())
    });
    assert_eq!(hosts.len(), MAX_HOSTS);
    assert!(hosts.iter().all(|h| h.addrs.len() == MAX_ADDRS_PER_HOST));
}
