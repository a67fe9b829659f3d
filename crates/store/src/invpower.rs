//! Inventory reports and power schedules (migration 0011), per school.

use crate::sql::{Row, Sql};
use serde::{Deserialize, Serialize};

use crate::{Result, SchoolId};

/// A device's stored inventory report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryRow {
    /// Device.
    pub device_id: i64,
    /// Hex SHA-256 of `report`.
    pub hash: String,
    /// The report's JSON (checked when it arrived).
    pub report: String,
    /// When it arrived (ms since epoch).
    pub received_at: i64,
}

/// A scheduled power action of a computer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerSchedule {
    /// Id (0 when new).
    #[serde(default)]
    pub id: i64,
    /// The computer group.
    pub group_id: i64,
    /// `shutdown`, `restart` or `logoff`.
    pub action: String,
    /// Minutes after midnight, server local time.
    pub minute_of_day: u32,
    /// Days of the week it runs: bit 0 Monday … bit 6 Sunday.
    pub days: u8,
    /// The countdown the students see, seconds.
    pub countdown_secs: u32,
    /// Who made it.
    #[serde(default)]
    pub created_by: String,
    /// The last day it ran (`YYYY-MM-DD`), so it runs once a day.
    #[serde(default)]
    pub last_run_day: Option<String>,
}

pub(crate) fn put_inventory(db: &mut dyn Sql, school: SchoolId, row: &InventoryRow) -> Result<()> {
    db.execute(
        "INSERT INTO inventory (school_id, device_id, hash, report, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (school_id, device_id) DO UPDATE SET
           hash = excluded.hash, report = excluded.report, received_at = excluded.received_at",
        &[
            &school,
            &row.device_id,
            &row.hash,
            &row.report,
            &row.received_at,
        ],
    )?;
    Ok(())
}

pub(crate) fn inventory_hash(
    db: &mut dyn Sql,
    school: SchoolId,
    device: i64,
) -> Result<Option<(String, i64)>> {
    db.query_opt(
        "SELECT hash, received_at FROM inventory WHERE school_id = ?1 AND device_id = ?2",
        &[&school, &device],
    )?
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .transpose()
}

fn row_of(r: &Row) -> Result<InventoryRow> {
    Ok(InventoryRow {
        device_id: r.get(0)?,
        hash: r.get(1)?,
        report: r.get(2)?,
        received_at: r.get(3)?,
    })
}

pub(crate) fn inventories(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<InventoryRow>> {
    db.query(
        "SELECT device_id, hash, report, received_at FROM inventory
         WHERE school_id = ?1 ORDER BY device_id",
        &[&school],
    )?
    .iter()
    .map(row_of)
    .collect()
}

pub(crate) fn inventory(
    db: &mut dyn Sql,
    school: SchoolId,
    device: i64,
) -> Result<Option<InventoryRow>> {
    db.query_opt(
        "SELECT device_id, hash, report, received_at FROM inventory
         WHERE school_id = ?1 AND device_id = ?2",
        &[&school, &device],
    )?
    .map(|r| row_of(&r))
    .transpose()
}

fn schedule_of(r: &Row) -> Result<PowerSchedule> {
    Ok(PowerSchedule {
        id: r.get(0)?,
        group_id: r.get(1)?,
        action: r.get(2)?,
        minute_of_day: r.get(3)?,
        days: r.get(4)?,
        countdown_secs: r.get(5)?,
        created_by: r.get(6)?,
        last_run_day: r.get(7)?,
    })
}

pub(crate) fn power_schedules(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<PowerSchedule>> {
    db.query(
        "SELECT id, group_id, action, minute_of_day, days, countdown_secs, created_by, last_run_day
         FROM power_schedules WHERE school_id = ?1 ORDER BY minute_of_day, id",
        &[&school],
    )?
    .iter()
    .map(schedule_of)
    .collect()
}

pub(crate) fn add_power_schedule(
    db: &mut dyn Sql,
    school: SchoolId,
    s: &PowerSchedule,
) -> Result<PowerSchedule> {
    let id = db.insert_id(
        "INSERT INTO power_schedules
               (school_id, group_id, action, minute_of_day, days, countdown_secs, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
        &[
            &school,
            &s.group_id,
            &s.action,
            &i64::from(s.minute_of_day),
            &i64::from(s.days),
            &i64::from(s.countdown_secs),
            &s.created_by,
        ],
    )?;
    Ok(PowerSchedule {
        id,
        last_run_day: None,
        ..s.clone()
    })
}

pub(crate) fn delete_power_schedule(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    Ok(db.execute(
        "DELETE FROM power_schedules WHERE school_id = ?1 AND id = ?2",
        &[&school, &id],
    )? > 0)
}

/// Marks a schedule run on `day`; false if it already ran then. One
/// conditional update: of several nodes, one claims the day.
pub(crate) fn claim_power_schedule(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    day: &str,
) -> Result<bool> {
    Ok(db.execute(
        "UPDATE power_schedules SET last_run_day = ?3
         WHERE school_id = ?1 AND id = ?2 AND (last_run_day IS NULL OR last_run_day <> ?3)",
        &[&school, &id, &day],
    )? > 0)
}
