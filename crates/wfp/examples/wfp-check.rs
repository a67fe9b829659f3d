//! Prints the filters for a sample policy and tries the system's WFP
//! backend. On a real Windows machine (as administrator) it applies the
//! filters, waits for Enter, and removes them (the manual check in
//! docs/windows-web-blocking.md); under Wine or elsewhere it reports that
//! WFP is unsupported. It is also the small Windows program that
//! scripts/test-windows-msi.sh packages in place of the agent.
//!
//! Usage: wfp-check [--apply] [allow|block|internet] [host...]

use std::io::BufRead;
use std::net::SocketAddr;

use lectern_wfp::resolve::{resolve_hosts, system_lookup};
use lectern_wfp::{build, system_backend, Inputs, WebList, WfpError};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let apply = args.iter().any(|a| a == "--apply");
    let rest: Vec<String> = args.into_iter().filter(|a| a != "--apply").collect();
    let mode = rest.first().map(String::as_str).unwrap_or("block");
    let hosts = resolve_hosts(rest.get(1..).unwrap_or(&[]), system_lookup);
    let inputs = Inputs {
        internet_blocked: mode == "internet",
        web: match mode {
            "allow" => WebList::Allow(hosts),
            "block" => WebList::Block(hosts),
            _ => WebList::Unrestricted,
        },
        server: vec![SocketAddr::from(([127, 0, 0, 1], 30016))],
        dns_resolvers: Vec::new(),
        agent_exe: std::env::current_exe().ok(),
    };
    let filters = match build(&inputs) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rules: {e}");
            std::process::exit(2);
        }
    };
    for f in &filters {
        println!(
            "{:?} {:?} w{} {} {:?}",
            f.layer, f.action, f.weight, f.name, f.conditions
        );
    }
    match system_backend() {
        Err(WfpError::Unsupported { reason }) => println!("wfp: unsupported: {reason}"),
        Err(e) => {
            eprintln!("wfp: {e}");
            std::process::exit(1);
        }
        Ok(mut backend) if apply => {
            if let Err(e) = backend.apply(&filters) {
                eprintln!("wfp: apply: {e}");
                std::process::exit(1);
            }
            println!(
                "wfp: {} filters applied; press Enter to remove them",
                filters.len()
            );
            let _ = std::io::stdin().lock().lines().next();
            if let Err(e) = backend.clear() {
                eprintln!("wfp: clear: {e}");
                std::process::exit(1);
            }
            println!("wfp: cleared");
        }
        Ok(_) => println!("wfp: available (run with --apply to apply)"),
    }
}
