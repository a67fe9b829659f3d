//! Live-view screenshots (migration 0009): JPEGs kept in the database, per
//! school and device, pruned on each insert to [`SCREENSHOTS_PER_DEVICE`]
//! per device and [`SCREENSHOT_BYTES_PER_SCHOOL`] per school (oldest first).

use crate::sql::{in_tx, Row, Sql};
use serde::Serialize;

use crate::{Result, SchoolId};

/// Screenshots kept per device; older ones go.
pub const SCREENSHOTS_PER_DEVICE: i64 = 20;
/// JPEG bytes kept per school; the oldest go first beyond it.
pub const SCREENSHOT_BYTES_PER_SCHOOL: i64 = 256 * 1024 * 1024;

/// A stored screenshot without its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScreenshotInfo {
    /// Id.
    pub id: i64,
    /// Device.
    pub device_id: i64,
    /// Who took it.
    pub taken_by: String,
    /// When (ms since epoch).
    pub taken_at: i64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// JPEG size in bytes.
    pub bytes: i64,
}

/// A new screenshot to keep.
#[derive(Debug, Clone)]
pub struct NewScreenshot {
    /// Device.
    pub device_id: i64,
    /// Who took it.
    pub taken_by: String,
    /// When (ms since epoch).
    pub taken_at: i64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The image.
    pub jpeg: Vec<u8>,
}

/// Stores a screenshot and prunes the device's and the school's oldest
/// beyond their limits; returns what was stored.
pub(crate) fn add(db: &mut dyn Sql, school: SchoolId, s: &NewScreenshot) -> Result<ScreenshotInfo> {
    add_within(db, school, s, SCREENSHOT_BYTES_PER_SCHOOL)
}

/// [`add`] with the school's budget given (tests use a small one).
fn add_within(
    db: &mut dyn Sql,
    school: SchoolId,
    s: &NewScreenshot,
    budget: i64,
) -> Result<ScreenshotInfo> {
    let id = in_tx(db, |db| {
        let id: i64 = db
            .insert_id(
                "INSERT INTO screenshots (school_id, device_id, taken_by, taken_at, width, height, jpeg)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                &[
                    &school,
                    &s.device_id,
                    &s.taken_by,
                    &s.taken_at,
                    &i64::from(s.width),
                    &i64::from(s.height),
                    &&s.jpeg[..],
                ],
            )?;
        db.execute(
            "DELETE FROM screenshots WHERE school_id = ?1 AND device_id = ?2 AND id NOT IN
             (SELECT id FROM screenshots WHERE school_id = ?1 AND device_id = ?2
              ORDER BY id DESC LIMIT ?3)",
            &[&school, &s.device_id, &SCREENSHOTS_PER_DEVICE],
        )?;
        // Newest first, keep while the running total fits the school's budget.
        db.execute(
            "DELETE FROM screenshots WHERE school_id = ?1 AND id IN
             (SELECT id FROM (SELECT id, SUM(length(jpeg)) OVER (ORDER BY id DESC) AS total
                              FROM screenshots WHERE school_id = ?1) AS running
              WHERE total > ?2 AND id <> ?3)",
            &[&school, &budget, &id],
        )?;
        Ok(id)
    })?;
    Ok(ScreenshotInfo {
        id,
        device_id: s.device_id,
        taken_by: s.taken_by.clone(),
        taken_at: s.taken_at,
        width: s.width,
        height: s.height,
        bytes: s.jpeg.len() as i64,
    })
}

const COLS: &str = "id, device_id, taken_by, taken_at, width, height, CAST(length(jpeg) AS BIGINT)";

fn info(r: &Row) -> Result<ScreenshotInfo> {
    Ok(ScreenshotInfo {
        id: r.get(0)?,
        device_id: r.get(1)?,
        taken_by: r.get(2)?,
        taken_at: r.get(3)?,
        width: r.get(4)?,
        height: r.get(5)?,
        bytes: r.get(6)?,
    })
}

/// A device's screenshots, newest first.
pub(crate) fn list(db: &mut dyn Sql, school: SchoolId, device: i64) -> Result<Vec<ScreenshotInfo>> {
    db.query(
        &format!(
            "SELECT {COLS} FROM screenshots WHERE school_id = ?1 AND device_id = ?2 ORDER BY id DESC"
        ),
        &[&school, &device],
    )?
    .iter()
    .map(info)
    .collect()
}

/// One of a device's screenshots with its JPEG.
pub(crate) fn get(
    db: &mut dyn Sql,
    school: SchoolId,
    device: i64,
    id: i64,
) -> Result<Option<(ScreenshotInfo, Vec<u8>)>> {
    db.query_opt(
        &format!(
            "SELECT {COLS}, jpeg FROM screenshots
             WHERE school_id = ?1 AND device_id = ?2 AND id = ?3"
        ),
        &[&school, &device, &id],
    )?
    .map(|r| Ok((info(&r)?, r.get(7)?)))
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, Store};

    fn shot(device_id: i64, bytes: usize) -> NewScreenshot {
        NewScreenshot {
            device_id,
            taken_by: "t".into(),
            taken_at: 1,
            width: 2,
            height: 2,
            jpeg: vec![0xFF; bytes],
        }
    }

    #[test]
    fn kept_per_school_and_device_and_pruned_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let (a, b) = (s.create_school("A").unwrap(), s.create_school("B").unwrap());
        let first = s.add_screenshot(a, &shot(1, 10)).unwrap();
        assert_eq!(first.bytes, 10);
        let (info, jpeg) = s.screenshot(a, 1, first.id).unwrap().unwrap();
        assert_eq!((info, jpeg.len()), (first.clone(), 10));
        assert!(
            s.screenshot(b, 1, first.id).unwrap().is_none(),
            "another school's"
        );
        assert!(
            s.screenshot(a, 2, first.id).unwrap().is_none(),
            "another device's"
        );
        for _ in 0..SCREENSHOTS_PER_DEVICE {
            s.add_screenshot(a, &shot(1, 10)).unwrap();
        }
        let kept = s.screenshots(a, 1).unwrap();
        assert_eq!(kept.len() as i64, SCREENSHOTS_PER_DEVICE);
        assert!(kept.iter().all(|k| k.id != first.id), "the oldest went");
        assert!(kept.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert!(s.screenshots(b, 1).unwrap().is_empty());
        // Over the school's bytes: the oldest of any device go.
        let big = (SCREENSHOT_BYTES_PER_SCHOOL / 3 + 1) as usize;
        s.add_screenshot(a, &shot(2, big)).unwrap();
        s.add_screenshot(a, &shot(3, big)).unwrap();
        let last = s.add_screenshot(a, &shot(4, big)).unwrap();
        assert_eq!(s.screenshots(a, 2).unwrap().len(), 0);
        assert_eq!(s.screenshots(a, 4).unwrap()[0].id, last.id);
        s.add_screenshot(b, &shot(1, 10)).unwrap();
        assert_eq!(
            s.screenshots(a, 4).unwrap().len(),
            1,
            "school B takes nothing of A's"
        );
    }
}
