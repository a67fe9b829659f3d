//! Power control (issue 13.6): shut down, restart or log off after a
//! countdown the student sees, and Wake-on-LAN.

use serde::{Deserialize, Serialize};

/// The longest countdown before a power action, seconds.
pub const MAX_COUNTDOWN_SECS: u32 = 600;
/// The countdown when none is given, seconds.
pub const DEFAULT_COUNTDOWN_SECS: u32 = 60;
/// Most MAC addresses in one [`crate::ServerMsg::WakeOnLan`].
pub const MAX_WAKE_MACS: usize = 64;

/// What a power command does when its countdown ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    /// Power the computer off.
    Shutdown,
    /// Restart it.
    Restart,
    /// End the user's session.
    Logoff,
}

impl PowerAction {
    /// Its name in the API, schedules and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Shutdown => "shutdown",
            PowerAction::Restart => "restart",
            PowerAction::Logoff => "logoff",
        }
    }

    /// Parses [`PowerAction::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Shutdown, Self::Restart, Self::Logoff]
            .into_iter()
            .find(|a| a.as_str() == s)
    }

    /// What the student reads with `secs` left.
    pub fn countdown_text(self, secs: u32) -> String {
        let what = match self {
            PowerAction::Shutdown => "This computer will shut down",
            PowerAction::Restart => "This computer will restart",
            PowerAction::Logoff => "You will be logged off",
        };
        let unit = if secs == 1 { "second" } else { "seconds" };
        format!("{what} in {secs} {unit}. Save your work now.")
    }
}

/// A Wake-on-LAN magic packet for `mac`: six 0xFF bytes, then the MAC
/// sixteen times.
pub fn magic_packet(mac: [u8; 6]) -> [u8; 102] {
    let mut p = [0xFF; 102];
    for i in 0..16 {
        p[6 + i * 6..12 + i * 6].copy_from_slice(&mac);
    }
    p
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); `None` for anything else and
/// for the all-zero address.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    (mac != [0; 6]).then_some(mac)
}

/// The broadcast address of an IPv4 `address/prefix`.
pub fn broadcast_of(cidr: &str) -> Option<std::net::Ipv4Addr> {
    let (a, p) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = a.parse().ok()?;
    let prefix: u32 = p.parse().ok().filter(|p| *p <= 32)?;
    let host_mask = if prefix == 0 {
        u32::MAX
    } else {
        (1u32 << (32 - prefix)) - 1
    };
    Some((u32::from(ip) | host_mask).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_packet_and_macs() {
        let mac = parse_mac("AA:bb:cc:00:11:22").unwrap();
        let p = magic_packet(mac);
        assert_eq!(&p[..6], &[0xFF; 6]);
        assert_eq!(&p[96..], &mac);
        assert!(parse_mac("00:00:00:00:00:00").is_none());
        assert!(parse_mac("aa:bb:cc:dd:ee").is_none());
        assert!(parse_mac("aa:bb:cc:dd:ee:fg").is_none());
        assert_eq!(PowerAction::parse("restart"), Some(PowerAction::Restart));
        assert!(PowerAction::Shutdown
            .countdown_text(1)
            .contains("1 second."));
    }
}
