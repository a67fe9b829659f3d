//! Sent files, collections and exams (migration 0012). Rows only: the
//! contents are files in the server's data directory.

use serde::{Deserialize, Serialize};

use crate::pg::PgStore;
use crate::sql::{in_tx, Row, Sql};
use crate::{now_ms, Result, SchoolId, SqliteStore, StoreError};

/// A file uploaded to be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Id.
    pub id: i64,
    /// Sanitised file name.
    pub name: String,
    /// Sanitised folder name on the devices (`~/Lectern/Received/<title>/`).
    pub title: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Who sent it.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
    /// The exam it is the paper of.
    pub exam_id: Option<i64>,
}

/// One device's copy of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Device.
    pub device_id: i64,
    /// `pending` (not yet started, or offline), `sending`, `done`, `failed`.
    pub status: String,
    /// Bytes the device has asked past.
    pub bytes: i64,
    /// Where it went, relative to the user's home.
    pub saved_as: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// Last change (ms).
    pub updated_at: i64,
}

/// A request to hand a file or folder in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// Id.
    pub id: i64,
    /// Path under the student's `~/Lectern/`.
    pub path: String,
    /// Most bytes taken per device.
    pub max_bytes: i64,
    /// Who asked.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
    /// The exam it collects.
    pub exam_id: Option<i64>,
}

/// One device's hand-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandIn {
    /// Device.
    pub device_id: i64,
    /// Folder on the server (user + device, sanitised).
    pub folder: String,
    /// `pending`, `sending`, `done`, `failed`.
    pub status: String,
    /// The file being received (resume point).
    pub file_index: i64,
    /// Bytes of it stored (resume point).
    pub file_offset: i64,
    /// Bytes stored in all.
    pub bytes: i64,
    /// Files completed.
    pub files: i64,
    /// Why it failed.
    pub reason: Option<String>,
    /// Last change (ms).
    pub updated_at: i64,
}

/// An exam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exam {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Devices sitting it.
    pub devices: Vec<i64>,
    /// Applications allowed while it runs.
    pub allowed_apps: Vec<String>,
    /// Websites (domain patterns) allowed while it runs.
    pub allowed_sites: Vec<String>,
    /// The paper handed out at the start (once started).
    pub paper_transfer: Option<i64>,
    /// The paper's file name, once uploaded.
    pub paper_name: Option<String>,
    /// What is collected at the end (under `~/Lectern/`).
    pub collect_path: Option<String>,
    /// Planned start (ms).
    pub starts_at: Option<i64>,
    /// Planned end (ms).
    pub ends_at: Option<i64>,
    /// `planned`, `running`, `ended`.
    pub status: String,
    /// Started (ms).
    pub started_at: Option<i64>,
    /// Ended (ms).
    pub ended_at: Option<i64>,
    /// The collection made at the end.
    pub collection_id: Option<i64>,
    /// Who made it.
    pub created_by: String,
    /// When (ms).
    pub created_at: i64,
}

/// One line of an exam's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamLogEntry {
    /// Id.
    pub id: i64,
    /// When (ms).
    pub at: i64,
    /// The device, if about one.
    pub device_id: Option<i64>,
    /// `started`, `ended`, `paper`, `collected`, `disconnected`, `violation`…
    pub kind: String,
    /// What happened.
    pub detail: String,
}

/// Files, collections and exams in the store.
pub trait FilesStore: Send + Sync {
    /// Records an uploaded file and a `pending` delivery per device.
    fn add_transfer(&self, school: SchoolId, t: &Transfer, devices: &[i64]) -> Result<Transfer>;
    /// One transfer.
    fn transfer(&self, school: SchoolId, id: i64) -> Result<Option<Transfer>>;
    /// The school's newest transfers (at most 200).
    fn transfers(&self, school: SchoolId) -> Result<Vec<Transfer>>;
    /// A transfer's deliveries.
    fn deliveries(&self, school: SchoolId, transfer: i64) -> Result<Vec<Delivery>>;
    /// Transfers not yet finished on a device.
    fn open_deliveries(&self, school: SchoolId, device: i64) -> Result<Vec<Transfer>>;
    /// Updates an unfinished delivery; `false` if none (finished or unknown).
    fn set_delivery(&self, transfer: i64, device: i64, d: &Delivery) -> Result<bool>;
    /// Records a collection and a `pending` hand-in per `(device, folder)`.
    fn add_collection(
        &self,
        school: SchoolId,
        c: &Collection,
        devices: &[(i64, String)],
    ) -> Result<Collection>;
    /// One collection.
    fn collection(&self, school: SchoolId, id: i64) -> Result<Option<Collection>>;
    /// The school's newest collections (at most 200).
    fn collections(&self, school: SchoolId) -> Result<Vec<Collection>>;
    /// A collection's hand-ins.
    fn hand_ins(&self, school: SchoolId, collection: i64) -> Result<Vec<HandIn>>;
    /// Collections not yet finished on a device, with its hand-in.
    fn open_hand_ins(&self, school: SchoolId, device: i64) -> Result<Vec<(Collection, HandIn)>>;
    /// Updates an unfinished hand-in; `false` if none.
    fn set_hand_in(&self, collection: i64, h: &HandIn) -> Result<bool>;
    /// Creates an exam.
    fn add_exam(&self, school: SchoolId, e: &Exam) -> Result<Exam>;
    /// One exam.
    fn exam(&self, school: SchoolId, id: i64) -> Result<Option<Exam>>;
    /// The school's exams, newest first.
    fn exams(&self, school: SchoolId) -> Result<Vec<Exam>>;
    /// Saves an exam's status, times, paper and collection (the rest is
    /// fixed at creation).
    fn update_exam(&self, school: SchoolId, e: &Exam) -> Result<()>;
    /// Moves an exam from status `from` to `to`, stamping `started_at`
    /// (to "running") or `ended_at` (otherwise) with `at`; `false` if it was
    /// not in `from` (someone else moved it first).
    fn move_exam(&self, school: SchoolId, id: i64, from: &str, to: &str, at: i64) -> Result<bool>;
    /// Every school's exams the clock still acts on: planned ones with a
    /// start time and running ones with an end time.
    fn timed_exams(&self) -> Result<Vec<(SchoolId, Exam)>>;
    /// Adds a line to an exam's log.
    fn exam_log_add(&self, exam: i64, device: Option<i64>, kind: &str, detail: &str) -> Result<()>;
    /// An exam's log, oldest first.
    fn exam_log(&self, school: SchoolId, exam: i64) -> Result<Vec<ExamLogEntry>>;
}

const TRANSFER: &str =
    "id, name, title, size, sha256, created_by, created_at, exam_id FROM file_transfers";

fn transfer(r: &Row) -> Result<Transfer> {
    Ok(Transfer {
        id: r.get(0)?,
        name: r.get(1)?,
        title: r.get(2)?,
        size: r.get(3)?,
        sha256: r.get(4)?,
        created_by: r.get(5)?,
        created_at: r.get(6)?,
        exam_id: r.get(7)?,
    })
}

const DELIVERY: &str =
    "device_id, status, bytes, saved_as, reason, updated_at FROM file_deliveries";

fn delivery(r: &Row) -> Result<Delivery> {
    Ok(Delivery {
        device_id: r.get(0)?,
        status: r.get(1)?,
        bytes: r.get(2)?,
        saved_as: r.get(3)?,
        reason: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

const COLLECTION: &str =
    "c.id, c.path, c.max_bytes, c.created_by, c.created_at, c.exam_id FROM collections c";

fn collection(r: &Row) -> Result<Collection> {
    Ok(Collection {
        id: r.get(0)?,
        path: r.get(1)?,
        max_bytes: r.get(2)?,
        created_by: r.get(3)?,
        created_at: r.get(4)?,
        exam_id: r.get(5)?,
    })
}

const HAND_IN: &str = "h.device_id, h.folder, h.status, h.file_index, h.file_offset, h.bytes, \
                       h.files, h.reason, h.updated_at";

fn hand_in(r: &Row, at: usize) -> Result<HandIn> {
    Ok(HandIn {
        device_id: r.get(at)?,
        folder: r.get(at + 1)?,
        status: r.get(at + 2)?,
        file_index: r.get(at + 3)?,
        file_offset: r.get(at + 4)?,
        bytes: r.get(at + 5)?,
        files: r.get(at + 6)?,
        reason: r.get(at + 7)?,
        updated_at: r.get(at + 8)?,
    })
}

const EXAM_COLUMNS: &str = "id, name, devices, allowed_apps, allowed_sites, paper_transfer, \
                    collect_path, starts_at, ends_at, status, started_at, ended_at, \
                    collection_id, created_by, created_at, paper_name";

/// A JSON list column; one that does not read is a damaged row.
fn list<T: serde::de::DeserializeOwned>(r: &Row, i: usize) -> Result<Vec<T>> {
    let text: String = r.get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("exam column {i} is not a JSON list: {e}")))
}

fn exam(r: &Row) -> Result<Exam> {
    Ok(Exam {
        id: r.get(0)?,
        name: r.get(1)?,
        // As before the move: an unreadable device list reads as none,
        // so one damaged row does not stop every school's exam clock.
        devices: list(r, 2).unwrap_or_default(),
        allowed_apps: list(r, 3)?,
        allowed_sites: list(r, 4)?,
        paper_transfer: r.get(5)?,
        collect_path: r.get(6)?,
        starts_at: r.get(7)?,
        ends_at: r.get(8)?,
        status: r.get(9)?,
        started_at: r.get(10)?,
        ended_at: r.get(11)?,
        collection_id: r.get(12)?,
        created_by: r.get(13)?,
        created_at: r.get(14)?,
        paper_name: r.get(15)?,
    })
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn rows<T>(rows: Vec<Row>, read: impl Fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(read).collect()
}

fn add_transfer(
    db: &mut dyn Sql,
    school: SchoolId,
    t: &Transfer,
    devices: &[i64],
) -> Result<Transfer> {
    let id = in_tx(db, |db| {
        let id = db.insert_id(
            "INSERT INTO file_transfers
               (school_id, name, title, size, sha256, created_by, created_at, exam_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
            &[
                &school,
                &t.name,
                &t.title,
                &t.size,
                &t.sha256,
                &t.created_by,
                &t.created_at,
                &t.exam_id,
            ],
        )?;
        let now = now_ms();
        for d in devices {
            db.execute(
                "INSERT INTO file_deliveries (transfer_id, device_id, status, updated_at)
                 VALUES (?1, ?2, 'pending', ?3) ON CONFLICT DO NOTHING",
                &[&id, d, &now],
            )?;
        }
        Ok(id)
    })?;
    Ok(Transfer { id, ..t.clone() })
}

fn add_collection(
    db: &mut dyn Sql,
    school: SchoolId,
    col: &Collection,
    devices: &[(i64, String)],
) -> Result<Collection> {
    let id = in_tx(db, |db| {
        let id = db.insert_id(
            "INSERT INTO collections (school_id, path, max_bytes, created_by, created_at, exam_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            &[
                &school,
                &col.path,
                &col.max_bytes,
                &col.created_by,
                &col.created_at,
                &col.exam_id,
            ],
        )?;
        let now = now_ms();
        for (d, folder) in devices {
            db.execute(
                "INSERT INTO collection_devices
                   (collection_id, device_id, folder, status, updated_at)
                 VALUES (?1, ?2, ?3, 'pending', ?4) ON CONFLICT DO NOTHING",
                &[&id, d, folder, &now],
            )?;
        }
        Ok(id)
    })?;
    Ok(Collection { id, ..col.clone() })
}

fn add_exam(db: &mut dyn Sql, school: SchoolId, e: &Exam) -> Result<Exam> {
    let id = db.insert_id(
        "INSERT INTO exams (school_id, name, devices, allowed_apps, allowed_sites, paper_transfer,
         collect_path, starts_at, ends_at, status, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) RETURNING id",
        &[
            &school,
            &e.name,
            &json(&e.devices),
            &json(&e.allowed_apps),
            &json(&e.allowed_sites),
            &e.paper_transfer,
            &e.collect_path,
            &e.starts_at,
            &e.ends_at,
            &e.status,
            &e.created_by,
            &e.created_at,
        ],
    )?;
    Ok(Exam { id, ..e.clone() })
}

fn get_transfer(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<Transfer>> {
    db.query_opt(
        &format!("SELECT {TRANSFER} WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| transfer(&r))
    .transpose()
}

fn transfers(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Transfer>> {
    rows(
        db.query(
            &format!("SELECT {TRANSFER} WHERE school_id = ?1 ORDER BY id DESC LIMIT 200"),
            &[&school],
        )?,
        transfer,
    )
}

fn deliveries(db: &mut dyn Sql, school: SchoolId, t: i64) -> Result<Vec<Delivery>> {
    rows(
        db.query(
            &format!(
                "SELECT {DELIVERY} WHERE transfer_id = ?2 AND transfer_id IN
                 (SELECT id FROM file_transfers WHERE school_id = ?1) ORDER BY device_id"
            ),
            &[&school, &t],
        )?,
        delivery,
    )
}

fn open_deliveries(db: &mut dyn Sql, school: SchoolId, device: i64) -> Result<Vec<Transfer>> {
    rows(
        db.query(
            &format!(
                "SELECT {TRANSFER} WHERE school_id = ?1 AND id IN
                 (SELECT transfer_id FROM file_deliveries WHERE device_id = ?2
                  AND status IN ('pending', 'sending')) ORDER BY id"
            ),
            &[&school, &device],
        )?,
        transfer,
    )
}

fn set_delivery(db: &mut dyn Sql, t: i64, device: i64, d: &Delivery) -> Result<bool> {
    Ok(db.execute(
        "UPDATE file_deliveries SET status = ?3, bytes = ?4, saved_as = ?5, reason = ?6,
         updated_at = ?7 WHERE transfer_id = ?1 AND device_id = ?2
         AND status IN ('pending', 'sending')",
        &[
            &t,
            &device,
            &d.status,
            &d.bytes,
            &d.saved_as,
            &d.reason,
            &d.updated_at,
        ],
    )? > 0)
}

fn get_collection(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<Collection>> {
    db.query_opt(
        &format!("SELECT {COLLECTION} WHERE c.school_id = ?1 AND c.id = ?2"),
        &[&school, &id],
    )?
    .map(|r| collection(&r))
    .transpose()
}

fn collections(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Collection>> {
    rows(
        db.query(
            &format!("SELECT {COLLECTION} WHERE c.school_id = ?1 ORDER BY c.id DESC LIMIT 200"),
            &[&school],
        )?,
        collection,
    )
}

fn hand_ins(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Vec<HandIn>> {
    rows(
        db.query(
            &format!(
                "SELECT {HAND_IN} FROM collection_devices h JOIN collections c
                 ON c.id = h.collection_id WHERE c.school_id = ?1 AND c.id = ?2
                 ORDER BY h.device_id"
            ),
            &[&school, &id],
        )?,
        |r| hand_in(r, 0),
    )
}

fn open_hand_ins(
    db: &mut dyn Sql,
    school: SchoolId,
    device: i64,
) -> Result<Vec<(Collection, HandIn)>> {
    rows(
        db.query(
            &format!(
                "SELECT c.id, c.path, c.max_bytes, c.created_by, c.created_at, c.exam_id, {HAND_IN}
                 FROM collections c JOIN collection_devices h
                 ON c.id = h.collection_id WHERE c.school_id = ?1 AND h.device_id = ?2
                 AND h.status IN ('pending', 'sending') ORDER BY c.id"
            ),
            &[&school, &device],
        )?,
        |r| Ok((collection(r)?, hand_in(r, 6)?)),
    )
}

fn set_hand_in(db: &mut dyn Sql, id: i64, h: &HandIn) -> Result<bool> {
    Ok(db.execute(
        "UPDATE collection_devices SET status = ?3, file_index = ?4, file_offset = ?5,
         bytes = ?6, files = ?7, reason = ?8, updated_at = ?9
         WHERE collection_id = ?1 AND device_id = ?2 AND status IN ('pending', 'sending')",
        &[
            &id,
            &h.device_id,
            &h.status,
            &h.file_index,
            &h.file_offset,
            &h.bytes,
            &h.files,
            &h.reason,
            &h.updated_at,
        ],
    )? > 0)
}

fn get_exam(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<Exam>> {
    db.query_opt(
        &format!("SELECT {EXAM_COLUMNS} FROM exams WHERE school_id = ?1 AND id = ?2"),
        &[&school, &id],
    )?
    .map(|r| exam(&r))
    .transpose()
}

fn exams(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Exam>> {
    rows(
        db.query(
            &format!(
                "SELECT {EXAM_COLUMNS} FROM exams WHERE school_id = ?1 ORDER BY id DESC LIMIT 200"
            ),
            &[&school],
        )?,
        exam,
    )
}

fn update_exam(db: &mut dyn Sql, school: SchoolId, e: &Exam) -> Result<()> {
    db.execute(
        "UPDATE exams SET status = ?3, started_at = ?4, ended_at = ?5, paper_transfer = ?6,
         collection_id = ?7, paper_name = ?8 WHERE school_id = ?1 AND id = ?2",
        &[
            &school,
            &e.id,
            &e.status,
            &e.started_at,
            &e.ended_at,
            &e.paper_transfer,
            &e.collection_id,
            &e.paper_name,
        ],
    )?;
    Ok(())
}

fn move_exam(
    db: &mut dyn Sql,
    school: SchoolId,
    id: i64,
    from: &str,
    to: &str,
    at: i64,
) -> Result<bool> {
    // Two statements rather than a column name put into the SQL: each is
    // written once and kept in the statement cache.
    let sql = if to == "running" {
        "UPDATE exams SET status = ?4, started_at = ?5
         WHERE school_id = ?1 AND id = ?2 AND status = ?3"
    } else {
        "UPDATE exams SET status = ?4, ended_at = ?5
         WHERE school_id = ?1 AND id = ?2 AND status = ?3"
    };
    Ok(db.execute(sql, &[&school, &id, &from, &to, &at])? > 0)
}

fn timed_exams(db: &mut dyn Sql) -> Result<Vec<(SchoolId, Exam)>> {
    // The school comes last so that `exam` reads the usual columns.
    rows(
        db.query(
            &format!(
                "SELECT {EXAM_COLUMNS}, school_id FROM exams
                 WHERE (status = 'planned' AND starts_at IS NOT NULL)
                 OR (status = 'running' AND ends_at IS NOT NULL) ORDER BY id"
            ),
            &[],
        )?,
        |r| Ok((r.get(16)?, exam(r)?)),
    )
}

fn exam_log_add(
    db: &mut dyn Sql,
    exam: i64,
    device: Option<i64>,
    kind: &str,
    detail: &str,
) -> Result<()> {
    db.execute(
        "INSERT INTO exam_log (exam_id, at, device_id, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        &[&exam, &now_ms(), &device, &kind, &detail],
    )?;
    Ok(())
}

fn exam_log(db: &mut dyn Sql, school: SchoolId, exam: i64) -> Result<Vec<ExamLogEntry>> {
    rows(
        db.query(
            "SELECT id, at, device_id, kind, detail FROM exam_log WHERE exam_id = ?2
             AND exam_id IN (SELECT id FROM exams WHERE school_id = ?1) ORDER BY id",
            &[&school, &exam],
        )?,
        |r| {
            Ok(ExamLogEntry {
                id: r.get(0)?,
                at: r.get(1)?,
                device_id: r.get(2)?,
                kind: r.get(3)?,
                detail: r.get(4)?,
            })
        },
    )
}

/// The same calls on either engine.
macro_rules! files_store {
    ($t:ty) => {
        impl FilesStore for $t {
            fn add_transfer(
                &self,
                school: SchoolId,
                t: &Transfer,
                devices: &[i64],
            ) -> Result<Transfer> {
                self.shared(|db| add_transfer(db, school, t, devices))
            }

            fn transfer(&self, school: SchoolId, id: i64) -> Result<Option<Transfer>> {
                self.shared(|db| get_transfer(db, school, id))
            }

            fn transfers(&self, school: SchoolId) -> Result<Vec<Transfer>> {
                self.shared(|db| transfers(db, school))
            }

            fn deliveries(&self, school: SchoolId, t: i64) -> Result<Vec<Delivery>> {
                self.shared(|db| deliveries(db, school, t))
            }

            fn open_deliveries(&self, school: SchoolId, device: i64) -> Result<Vec<Transfer>> {
                self.shared(|db| open_deliveries(db, school, device))
            }

            fn set_delivery(&self, t: i64, device: i64, d: &Delivery) -> Result<bool> {
                self.shared(|db| set_delivery(db, t, device, d))
            }

            fn add_collection(
                &self,
                school: SchoolId,
                col: &Collection,
                devices: &[(i64, String)],
            ) -> Result<Collection> {
                self.shared(|db| add_collection(db, school, col, devices))
            }

            fn collection(&self, school: SchoolId, id: i64) -> Result<Option<Collection>> {
                self.shared(|db| get_collection(db, school, id))
            }

            fn collections(&self, school: SchoolId) -> Result<Vec<Collection>> {
                self.shared(|db| collections(db, school))
            }

            fn hand_ins(&self, school: SchoolId, id: i64) -> Result<Vec<HandIn>> {
                self.shared(|db| hand_ins(db, school, id))
            }

            fn open_hand_ins(
                &self,
                school: SchoolId,
                device: i64,
            ) -> Result<Vec<(Collection, HandIn)>> {
                self.shared(|db| open_hand_ins(db, school, device))
            }

            fn set_hand_in(&self, id: i64, h: &HandIn) -> Result<bool> {
                self.shared(|db| set_hand_in(db, id, h))
            }

            fn add_exam(&self, school: SchoolId, e: &Exam) -> Result<Exam> {
                self.shared(|db| add_exam(db, school, e))
            }

            fn exam(&self, school: SchoolId, id: i64) -> Result<Option<Exam>> {
                self.shared(|db| get_exam(db, school, id))
            }

            fn exams(&self, school: SchoolId) -> Result<Vec<Exam>> {
                self.shared(|db| exams(db, school))
            }

            fn update_exam(&self, school: SchoolId, e: &Exam) -> Result<()> {
                self.shared(|db| update_exam(db, school, e))
            }

            fn move_exam(
                &self,
                school: SchoolId,
                id: i64,
                from: &str,
                to: &str,
                at: i64,
            ) -> Result<bool> {
                self.shared(|db| move_exam(db, school, id, from, to, at))
            }

            fn timed_exams(&self) -> Result<Vec<(SchoolId, Exam)>> {
                self.shared(timed_exams)
            }

            fn exam_log_add(
                &self,
                exam: i64,
                device: Option<i64>,
                kind: &str,
                detail: &str,
            ) -> Result<()> {
                self.shared(|db| exam_log_add(db, exam, device, kind, detail))
            }

            fn exam_log(&self, school: SchoolId, exam: i64) -> Result<Vec<ExamLogEntry>> {
                self.shared(|db| exam_log(db, school, exam))
            }
        }
    };
}

files_store!(SqliteStore);
files_store!(PgStore);
