//! `GET /inventory`, `GET /inventory/{id}` and `GET /inventory.csv`: the
//! devices' inventory reports (see [`crate::inventory`]), behind the
//! `inventory.view` right and scoped to the devices the caller may see
//! (view access or more). Search matches the host name or any field of the
//! report (hardware, addresses, MACs, packages and versions), case-insensitive.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use lectern_proto::inventory::Inventory;
use serde::{Deserialize, Serialize};

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// The right these routes need.
const RIGHT: &str = "inventory.view";
/// Longest search text.
const MAX_QUERY: usize = 200;

/// `?q=`: text to search for.
#[derive(Debug, Default, Deserialize)]
pub struct Search {
    /// Matched against the host name and every field of the report.
    #[serde(default)]
    pub q: String,
}

/// One device's inventory in the list (a summary; packages are counted).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Device id.
    pub device_id: i64,
    /// The device's name (its enrolled or accepted name, never one read
    /// from the report).
    pub hostname: String,
    /// Connected now.
    pub online: bool,
    /// When the report arrived (ms).
    pub received_at: i64,
    /// Vendor.
    pub vendor: String,
    /// Model.
    pub model: String,
    /// Serial number.
    pub serial: String,
    /// CPU model.
    pub cpu_model: String,
    /// Logical CPUs.
    pub cpu_count: u32,
    /// Memory, bytes.
    pub memory_bytes: u64,
    /// Operating system.
    pub os: String,
    /// Kernel.
    pub kernel: String,
    /// Boot time (ms).
    pub boot_time_ms: i64,
    /// Seconds since boot, when the device is online (an offline one's
    /// uptime is unknown).
    pub uptime_secs: Option<i64>,
    /// Total and free disk bytes over its filesystems.
    pub disk_bytes: u64,
    /// Free disk bytes (rounded down to GiB per filesystem by the agent).
    pub disk_free_bytes: u64,
    /// MAC addresses.
    pub macs: Vec<String>,
    /// Network addresses.
    pub addresses: Vec<String>,
    /// Lowest battery health, percent.
    pub battery_health: Option<u32>,
    /// Installed packages.
    pub packages: usize,
}

/// A device's full report.
#[derive(Debug, Serialize)]
pub struct Detail {
    /// The summary.
    #[serde(flatten)]
    pub summary: Summary,
    /// The whole report.
    pub report: Inventory,
}

fn summary(view: &crate::hub::DeviceView, inv: &Inventory, received_at: i64) -> Summary {
    let now = lectern_store::now_ms();
    Summary {
        device_id: view.id,
        hostname: view.hostname.clone(),
        online: view.online,
        received_at,
        vendor: inv.hardware.vendor.clone(),
        model: inv.hardware.model.clone(),
        serial: inv.hardware.serial.clone(),
        cpu_model: inv.hardware.cpu_model.clone(),
        cpu_count: inv.hardware.cpu_count,
        memory_bytes: inv.hardware.memory_bytes,
        os: inv.os.name.clone(),
        kernel: inv.kernel.clone(),
        boot_time_ms: inv.boot_time_ms,
        uptime_secs: (view.online && inv.boot_time_ms > 0)
            .then(|| (now - inv.boot_time_ms).max(0) / 1000),
        disk_bytes: inv.disks.iter().map(|d| d.size_bytes).sum(),
        disk_free_bytes: inv.disks.iter().map(|d| d.free_bytes).sum(),
        macs: inv.network.iter().map(|i| i.mac.clone()).collect(),
        addresses: inv
            .network
            .iter()
            .flat_map(|i| i.addresses.iter().cloned())
            .collect(),
        battery_health: inv.batteries.iter().filter_map(|b| b.health_percent).min(),
        packages: inv.packages.len(),
    }
}

/// The visible devices' reports matching `q`, by device id.
async fn matching(st: &Shared, auth: &Authed, q: &str) -> Result<Vec<Detail>, ApiError> {
    if q.len() > MAX_QUERY {
        return Err(ApiError::bad_request(format!(
            "search text longer than {MAX_QUERY} bytes"
        )));
    }
    let q = q.trim().to_lowercase();
    let visible = super::devices::visible(st, auth).await?;
    let school = auth.session.user.school_id;
    let rows = st.db(move |s| s.inventories(school)).await?;
    let mut out = Vec::new();
    for row in rows {
        let Some((view, _)) = visible.iter().find(|(v, _)| v.id == row.device_id) else {
            continue;
        };
        let Ok(report) = serde_json::from_str::<Inventory>(&row.report) else {
            continue;
        };
        if !q.is_empty()
            && !view.hostname.to_lowercase().contains(&q)
            && !report.search_text().contains(&q)
        {
            continue;
        }
        out.push(Detail {
            summary: summary(view, &report, row.received_at),
            report,
        });
    }
    Ok(out)
}

/// `GET /inventory?q=`: summaries of the visible devices' reports.
pub async fn list(
    State(st): State<Shared>,
    auth: Authed,
    Query(s): Query<Search>,
) -> Result<Json<Vec<Summary>>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let found = matching(&st, &auth, &s.q).await?;
    Ok(Json(found.into_iter().map(|d| d.summary).collect()))
}

/// `GET /inventory/{id}`: one visible device's whole report.
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Detail>, ApiError> {
    auth.require(&st, RIGHT).await?;
    let (view, _) = super::devices::find(&st, &auth, id).await?;
    let school = auth.session.user.school_id;
    let row = st
        .db(move |s| s.inventory(school, id))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("{} has sent no inventory yet", view.hostname))
        })?;
    let report: Inventory = serde_json::from_str(&row.report)
        .map_err(|e| ApiError::internal(format!("stored inventory unreadable: {e}")))?;
    Ok(Json(Detail {
        summary: summary(&view, &report, row.received_at),
        report,
    }))
}

/// `GET /inventory.csv?q=`: the list as CSV, one row per device.
pub async fn csv(
    State(st): State<Shared>,
    auth: Authed,
    Query(s): Query<Search>,
) -> Result<Response, ApiError> {
    auth.require(&st, RIGHT).await?;
    let found = matching(&st, &auth, &s.q).await?;
    let body = to_csv(found.iter().map(|d| &d.summary))
        .map_err(|e| ApiError::internal(format!("cannot write CSV: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"inventory.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// A cell a spreadsheet will not run as a formula: text beginning with
/// `=`, `+`, `-`, `@` (or a tab or carriage return) gets a leading `'`.
pub fn safe_cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

const COLUMNS: [&str; 17] = [
    "device_id",
    "hostname",
    "online",
    "vendor",
    "model",
    "serial",
    "cpu",
    "cpus",
    "memory_bytes",
    "os",
    "kernel",
    "uptime_secs",
    "disk_bytes",
    "disk_free_bytes",
    "macs",
    "addresses",
    "packages",
];

fn to_csv<'a>(rows: impl Iterator<Item = &'a Summary>) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for s in rows {
        let cells = [
            s.device_id.to_string(),
            s.hostname.clone(),
            s.online.to_string(),
            s.vendor.clone(),
            s.model.clone(),
            s.serial.clone(),
            s.cpu_model.clone(),
            s.cpu_count.to_string(),
            s.memory_bytes.to_string(),
            s.os.clone(),
            s.kernel.clone(),
            s.uptime_secs.map(|u| u.to_string()).unwrap_or_default(),
            s.disk_bytes.to_string(),
            s.disk_free_bytes.to_string(),
            s.macs.join(" "),
            s.addresses.join(" "),
            s.packages.to_string(),
        ];
        w.write_record(cells.iter().map(|c| safe_cell(c)))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused() {
        for bad in ["=1+1", "+1", "-2", "@SUM(A1)", "\tx"] {
            assert!(safe_cell(bad).starts_with('\''), "{bad}");
        }
        assert_eq!(safe_cell("Dell Inc."), "Dell Inc.");
        assert_eq!(safe_cell(""), "");
    }
}
