//! A device's inventory: hardware, operating system, installed packages.
//!
//! The agent sends only a hash at connect ([`crate::AgentMsg::InventoryHash`]);
//! the server asks for the whole report ([`crate::ServerMsg::InventoryRequest`])
//! when its stored hash differs, and the agent sends the JSON of [`Inventory`]
//! in [`crate::AgentMsg::InventoryPart`]s of at most [`INVENTORY_PART_BYTES`]
//! (a report is larger than one control frame). The server accepts at most
//! [`MAX_INVENTORY_BYTES`] and [`MAX_PACKAGES`] packages.

use serde::{Deserialize, Serialize};

/// Largest inventory report, JSON bytes.
pub const MAX_INVENTORY_BYTES: usize = 2 * 1024 * 1024;
/// Most packages in a report.
pub const MAX_PACKAGES: usize = 20_000;
/// Most disks, network interfaces or batteries in a report.
pub const MAX_ITEMS: usize = 256;
/// Longest text field in a report, bytes.
pub const MAX_FIELD: usize = 1024;
/// Largest slice of the report's JSON in one part (escaped in its frame at
/// most twice as long, well under the 64 KiB frame limit).
pub const INVENTORY_PART_BYTES: usize = 24 * 1024;
/// Free disk space is reported rounded down to this (1 GiB), so the report
/// (and its hash) changes only when free space crosses a boundary.
pub const FREE_SPACE_STEP: u64 = 1024 * 1024 * 1024;

/// Everything the agent reports about its machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Inventory {
    /// DMI and CPU facts.
    pub hardware: Hardware,
    /// Mounted filesystems of real devices.
    pub disks: Vec<Disk>,
    /// Network interfaces (loopback left out).
    pub network: Vec<Interface>,
    /// Batteries.
    pub batteries: Vec<Battery>,
    /// From `/etc/os-release`.
    pub os: OsInfo,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// When the machine booted (ms since the epoch); uptime is now minus this.
    pub boot_time_ms: i64,
    /// Installed packages, sorted by name.
    pub packages: Vec<Package>,
}

/// DMI and CPU facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hardware {
    /// `sys_vendor`.
    pub vendor: String,
    /// `product_name`.
    pub model: String,
    /// `product_serial` (readable by root only).
    pub serial: String,
    /// The asset id an administrator gave the device (managed ChromeOS
    /// only; empty elsewhere). Left out of the JSON when empty, so the
    /// reports (and hashes) of agents that never have one stay as they were.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub asset_id: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Memory, bytes.
    pub memory_bytes: u64,
}

/// One mounted filesystem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Disk {
    /// Block device, e.g. `/dev/sda1`.
    pub device: String,
    /// Mount point.
    pub mount: String,
    /// Filesystem type.
    pub fs: String,
    /// Size, bytes.
    pub size_bytes: u64,
    /// Free space, bytes, rounded down to [`FREE_SPACE_STEP`].
    pub free_bytes: u64,
}

/// One network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Interface {
    /// Name, e.g. `eth0`.
    pub name: String,
    /// MAC address, lower case `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    /// Addresses with prefix length, e.g. `192.168.1.20/24`.
    pub addresses: Vec<String>,
}

/// One battery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Battery {
    /// Name, e.g. `BAT0`.
    pub name: String,
    /// Capacity now as a percentage of its design capacity.
    pub health_percent: Option<u32>,
    /// Charge cycles, when the battery says.
    pub cycle_count: Option<u32>,
}

/// The operating system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OsInfo {
    /// `ID`, e.g. `debian`.
    pub id: String,
    /// `PRETTY_NAME`.
    pub name: String,
    /// `VERSION_ID`.
    pub version: String,
}

/// One installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// Larger than [`MAX_INVENTORY_BYTES`].
    #[error("inventory larger than {MAX_INVENTORY_BYTES} bytes")]
    TooLarge,
    /// More than [`MAX_PACKAGES`] packages or [`MAX_ITEMS`] of a kind.
    #[error("{0}")]
    TooMany(String),
    /// A field longer than [`MAX_FIELD`].
    #[error("a field of the inventory is longer than {MAX_FIELD} bytes")]
    FieldTooLong,
    /// Not an inventory.
    #[error("malformed inventory: {0}")]
    Malformed(String),
}

impl Inventory {
    /// Parses and checks a report's JSON.
    pub fn parse(json: &str) -> Result<Inventory, InventoryError> {
        if json.len() > MAX_INVENTORY_BYTES {
            return Err(InventoryError::TooLarge);
        }
        let inv: Inventory =
            serde_json::from_str(json).map_err(|e| InventoryError::Malformed(e.to_string()))?;
        inv.check()?;
        Ok(inv)
    }

    /// Checks counts and field lengths.
    pub fn check(&self) -> Result<(), InventoryError> {
        if self.packages.len() > MAX_PACKAGES {
            return Err(InventoryError::TooMany(format!(
                "more than {MAX_PACKAGES} packages"
            )));
        }
        let items = [self.disks.len(), self.network.len(), self.batteries.len()];
        if items.iter().any(|&n| n > MAX_ITEMS) {
            return Err(InventoryError::TooMany(format!(
                "more than {MAX_ITEMS} disks, interfaces or batteries"
            )));
        }
        let long = |s: &String| s.len() > MAX_FIELD;
        let h = &self.hardware;
        let any_long = [&h.vendor, &h.model, &h.serial, &h.cpu_model]
            .into_iter()
            .chain([&self.os.id, &self.os.name, &self.os.version, &self.kernel])
            .chain(self.disks.iter().flat_map(|d| [&d.device, &d.mount, &d.fs]))
            .chain(self.network.iter().flat_map(|i| {
                std::iter::once(&i.name)
                    .chain(std::iter::once(&i.mac))
                    .chain(i.addresses.iter())
            }))
            .chain(self.batteries.iter().map(|b| &b.name))
            .chain(self.packages.iter().flat_map(|p| [&p.name, &p.version]))
            .any(long);
        if any_long || self.network.iter().any(|i| i.addresses.len() > MAX_ITEMS) {
            return Err(InventoryError::FieldTooLong);
        }
        Ok(())
    }

    /// The report's JSON and its hash (hex SHA-256 of that JSON); equal
    /// reports give equal JSON, so the hash says whether anything changed.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("an inventory always serializes")
    }

    /// Text searched by the console: every field, lower case.
    pub fn search_text(&self) -> String {
        let mut s = String::new();
        let h = &self.hardware;
        for f in [
            &h.vendor,
            &h.model,
            &h.serial,
            &h.asset_id,
            &h.cpu_model,
            &self.os.name,
            &self.kernel,
        ] {
            s.push_str(f);
            s.push('\n');
        }
        for i in &self.network {
            s.push_str(&i.name);
            s.push(' ');
            s.push_str(&i.mac);
            for a in &i.addresses {
                s.push(' ');
                s.push_str(a);
            }
            s.push('\n');
        }
        for p in &self.packages {
            s.push_str(&p.name);
            s.push(' ');
            s.push_str(&p.version);
            s.push('\n');
        }
        s.to_lowercase()
    }
}

/// Splits `json` into parts of at most [`INVENTORY_PART_BYTES`], at
/// character boundaries.
pub fn split_parts(json: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = json;
    while !rest.is_empty() {
        let mut end = rest.len().min(INVENTORY_PART_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (part, tail) = rest.split_at(end);
        parts.push(part);
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chromebook_report_parses_and_an_empty_asset_id_is_left_out() {
        // As extension/inventory.js builds it on a managed Chromebook.
        let json = r#"{"hardware":{"vendor":"","model":"","serial":"5CD1234XYZ","asset_id":"LIB-0042","cpu_model":"Intel(R) Celeron(R) N4020","cpu_count":2,"memory_bytes":4294967296},"disks":[{"device":"eMMC","mount":"","fs":"","size_bytes":64000000000,"free_bytes":10737418240}],"network":[],"batteries":[],"os":{"id":"chromeos","name":"Chrome OS 15633.69.0","version":"15633.69.0"},"kernel":"","boot_time_ms":0,"packages":[]}"#;
        let inv = Inventory::parse(json).unwrap();
        assert_eq!(inv.hardware.asset_id, "LIB-0042");
        assert!(inv.search_text().contains("lib-0042"));
        assert!(!Inventory::default().encode().contains("asset_id"));
    }

    #[test]
    fn parts_join_back_and_respect_characters() {
        let json = "é".repeat(INVENTORY_PART_BYTES);
        let parts = split_parts(&json);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= INVENTORY_PART_BYTES));
        assert_eq!(parts.concat(), json);
        assert!(split_parts("").is_empty());
    }

    #[test]
    fn limits_are_checked() {
        let mut inv = Inventory {
            packages: vec![Package::default(); MAX_PACKAGES + 1],
            ..Default::default()
        };
        assert!(matches!(inv.check(), Err(InventoryError::TooMany(_))));
        inv.packages.clear();
        inv.hardware.model = "x".repeat(MAX_FIELD + 1);
        assert_eq!(inv.check(), Err(InventoryError::FieldTooLong));
        assert!(matches!(
            Inventory::parse("{\"packages\": 3}"),
            Err(InventoryError::Malformed(_))
        ));
        let big = " ".repeat(MAX_INVENTORY_BYTES + 1);
        assert_eq!(Inventory::parse(&big), Err(InventoryError::TooLarge));
    }
}
