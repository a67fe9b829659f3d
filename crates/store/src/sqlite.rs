use std::path::Path;
use std::sync::Mutex;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rusqlite::Connection;

use crate::*;

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_groups.sql"),
    include_str!("migrations/0003_activity.sql"),
    include_str!("migrations/0004_safety.sql"),
    include_str!("migrations/0005_device_identity.sql"),
    include_str!("migrations/0006_report_owner.sql"),
    include_str!("migrations/0007_people.sql"),
    include_str!("migrations/0008_preferences.sql"),
    include_str!("migrations/0009_screenshots.sql"),
    include_str!("migrations/0010_requests.sql"),
    include_str!("migrations/0011_invpower.sql"),
    include_str!("migrations/0012_files.sql"),
    include_str!("migrations/0013_users.sql"),
    include_str!("migrations/0014_devadmin.sql"),
    include_str!("migrations/0015_school_settings.sql"),
    include_str!("migrations/0016_timetable.sql"),
    include_str!("migrations/0017_roster.sql"),
    include_str!("migrations/0018_directory.sql"),
    include_str!("migrations/0019_aup.sql"),
    include_str!("migrations/0020_kwpolicy.sql"),
    include_str!("migrations/0021_retro.sql"),
    include_str!("migrations/0022_review.sql"),
    include_str!("migrations/0023_mail.sql"),
    include_str!("migrations/0025_dashboard.sql"),
    include_str!("migrations/0026_school_code.sql"),
    include_str!("migrations/0027_school_grants.sql"),
    include_str!("migrations/0028_student_sign_in.sql"),
];

/// The embedded SQLite store: one file, WAL mode, one connection behind a mutex
/// (SQLite serializes writers anyway, and every call here is short).
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The database file, for [`SqliteStore::read_with`]'s own connection.
    path: std::path::PathBuf,
    /// A read-only connection for long aggregate reads (the safeguarding
    /// dashboard), opened on first use, so they never hold `conn`: in WAL
    /// mode readers and the writer do not wait for each other.
    reader: Mutex<Option<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL is durable across process crashes in WAL mode; only an OS crash
        // can lose the last transactions.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
            reader: Mutex::new(None),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.lock();
        let done: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
            tracing::info!(migration = i + 1, "applied database migration");
        }
        // Schools made before a built-in group existed get it now.
        let schools: Vec<i64> = conn
            .prepare("SELECT id FROM schools")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for school in schools {
            crate::groups::ensure_builtin(&conn, school)?;
        }
        Ok(())
    }

    /// Stores an enrollment token whose secret is given rather than generated:
    /// tokens issued by older versions (URL-safe base64 without a prefix, so
    /// possibly beginning with `-`) and tests that need a particular shape.
    /// Only its hash is kept.
    pub fn import_enrollment_token(
        &self,
        school: SchoolId,
        token: &str,
        label: &str,
        uses: i64,
        expires_at: i64,
        created_by: &str,
    ) -> Result<EnrollmentToken> {
        self.with(|c| {
            crate::fleet::add_enrollment_token(
                &mut crate::sql::Lite(c),
                school,
                token,
                label,
                uses,
                expires_at,
                created_by,
            )
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (its
        // transactions roll back), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds a device to `school` with a fresh secret: (device, secret).
pub(crate) fn add_device(
    db: &mut dyn crate::sql::Sql,
    school: SchoolId,
    info: &NewDevice,
    now: i64,
) -> Result<(Device, String)> {
    let secret = random_token();
    let row = db
        .insert_returning(
            &format!(
                "INSERT INTO devices (school_id, hostname, os, agent_version, secret_hash, enrolled_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING {DEVICE_COLS}"
            ),
            &[&school, &info.hostname, &info.os, &info.agent_version, &hash_secret(&secret), &now],
        )?;
    Ok((device_of(&row)?, secret))
}

/// A device from a row of [`DEVICE_COLS`], on either engine.
pub(crate) fn device_of(row: &crate::sql::Row) -> Result<Device> {
    Ok(Device {
        id: row.get(0)?,
        school_id: row.get(1)?,
        hostname: row.get(2)?,
        os: row.get(3)?,
        agent_version: row.get(4)?,
        state_json: row.get(5)?,
        enrolled_at: row.get(6)?,
        last_seen: row.get(7)?,
        revoked_at: row.get(8)?,
        reported_name: row.get(9)?,
    })
}

pub(crate) const DEVICE_COLS: &str =
    "id, school_id, hostname, os, agent_version, state, enrolled_at, last_seen, revoked_at, reported_name";

pub(crate) fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Hash(e.to_string()))
}

// A real hash of a fixed string, verified against for unknown users so a failed
// login takes as long whether or not the user exists.
pub(crate) fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password("lectern-dummy").unwrap_or_default())
}

/// The user, when `password` is theirs. Argon2 runs outside the store's
/// lock so slow sign-ins do not stall other calls, and against a dummy hash
/// for an unknown user, so that a failed sign-in takes as long either way.
pub(crate) fn check_password(
    found: Option<(User, String)>,
    password: &str,
) -> Result<Option<User>> {
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, dummy_hash().to_string()),
    };
    let parsed = PasswordHash::new(&hash).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    Ok(user.filter(|_| ok))
}

impl Store for SqliteStore {
    fn create_school(&self, name: &str) -> Result<SchoolId> {
        self.with(|c| crate::schools::create_school(&mut crate::sql::Lite(c), name, now_ms()))
    }

    fn first_school(&self) -> Result<Option<School>> {
        self.with(|c| crate::schools::first_school(&mut crate::sql::Lite(c)))
    }

    fn school(&self, id: SchoolId) -> Result<Option<School>> {
        self.with(|c| crate::schools::school(&mut crate::sql::Lite(c), id))
    }

    fn schools(&self) -> Result<Vec<School>> {
        self.with(|c| crate::schools::schools(&mut crate::sql::Lite(c)))
    }

    fn schools_with_user(&self, username: &str) -> Result<Vec<SchoolId>> {
        self.with(|c| crate::schools::schools_with_user(&mut crate::sql::Lite(c), username))
    }

    fn create_user(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<i64> {
        let hash = hash_password(password)?;
        self.with(|c| {
            crate::schools::create_user(
                &mut crate::sql::Lite(c),
                school,
                username,
                &hash,
                role,
                now_ms(),
            )
        })
    }

    fn verify_password(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
    ) -> Result<Option<User>> {
        let found = self
            .with(|c| crate::schools::user_with_hash(&mut crate::sql::Lite(c), school, username))?;
        check_password(found, password)
    }

    fn create_session(&self, user: &User, ttl_ms: i64) -> Result<(String, Session)> {
        self.with(|c| {
            crate::schools::create_session(&mut crate::sql::Lite(c), user, ttl_ms, now_ms())
        })
    }

    fn session(&self, token: &str) -> Result<Option<Session>> {
        self.with(|c| crate::schools::session(&mut crate::sql::Lite(c), token, now_ms()))
    }

    fn delete_session(&self, token: &str) -> Result<()> {
        self.with(|c| crate::schools::delete_session(&mut crate::sql::Lite(c), token))
    }

    fn create_enrollment_token(
        &self,
        school: SchoolId,
        label: &str,
        uses: i64,
        expires_at: i64,
        created_by: &str,
    ) -> Result<(String, EnrollmentToken)> {
        let token = crate::printable_secret(crate::ENROLLMENT_TOKEN_PREFIX);
        let rec =
            self.import_enrollment_token(school, &token, label, uses, expires_at, created_by)?;
        Ok((token, rec))
    }

    fn list_enrollment_tokens(&self, school: SchoolId) -> Result<Vec<EnrollmentToken>> {
        self.with(|c| crate::fleet::list_enrollment_tokens(&mut crate::sql::Lite(c), school))
    }

    fn enroll_device(&self, token: &str, info: &NewDevice) -> Result<Option<(Device, String)>> {
        self.with(|c| crate::fleet::enroll_device(&mut crate::sql::Lite(c), token, info, now_ms()))
    }

    fn authenticate_device(&self, device_id: i64, secret: &str) -> Result<DeviceAuth> {
        let found =
            self.with(|c| crate::fleet::device_with_hash(&mut crate::sql::Lite(c), device_id))?;
        Ok(crate::fleet::check_device(found, secret))
    }

    fn save_device_state(&self, device_id: i64, state_json: &str) -> Result<()> {
        self.shared(|db| crate::fleet::save_device_state(db, device_id, state_json))
    }

    fn touch_device(&self, device_id: i64, info: &NewDevice, state_json: &str) -> Result<()> {
        self.with(|c| {
            crate::fleet::touch_device(
                &mut crate::sql::Lite(c),
                device_id,
                info,
                state_json,
                now_ms(),
            )
        })
    }

    fn accept_device_name(
        &self,
        school: SchoolId,
        device_id: i64,
    ) -> Result<Option<(String, String)>> {
        self.with(|c| crate::fleet::accept_device_name(&mut crate::sql::Lite(c), school, device_id))
    }

    fn list_devices(&self, school: SchoolId) -> Result<Vec<Device>> {
        self.with(|c| crate::fleet::list_devices(&mut crate::sql::Lite(c), school))
    }

    fn revoke_device(&self, school: SchoolId, device_id: i64) -> Result<bool> {
        self.with(|c| {
            crate::fleet::revoke_device(&mut crate::sql::Lite(c), school, device_id, now_ms())
        })
    }

    fn create_command(
        &self,
        school: SchoolId,
        actor: &str,
        body_json: &str,
        targets: &[(i64, TargetStatus)],
    ) -> Result<CommandRecord> {
        self.with(|c| {
            crate::fleet::create_command(
                &mut crate::sql::Lite(c),
                school,
                actor,
                body_json,
                targets,
                now_ms(),
            )
        })
    }

    fn update_targets(&self, updates: &[TargetUpdate]) -> Result<()> {
        self.with(|c| crate::fleet::update_targets(&mut crate::sql::Lite(c), updates))
    }

    fn command(&self, school: SchoolId, id: i64) -> Result<Option<CommandRecord>> {
        self.with(|c| crate::fleet::command(&mut crate::sql::Lite(c), school, id))
    }

    fn audit(&self, e: &NewAudit) -> Result<i64> {
        self.with(|c| crate::schools::audit(&mut crate::sql::Lite(c), e, now_ms()))
    }

    fn audit_list(
        &self,
        school: SchoolId,
        limit: i64,
        before: Option<i64>,
        reader: Option<&AuditReader>,
    ) -> Result<Vec<AuditEntry>> {
        self.with(|c| {
            crate::schools::audit_list(&mut crate::sql::Lite(c), school, limit, before, reader)
        })
    }

    fn list_users(&self, school: SchoolId) -> Result<Vec<User>> {
        self.with(|c| crate::schools::list_users(&mut crate::sql::Lite(c), school))
    }

    fn list_groups(&self, school: SchoolId) -> Result<Vec<GroupRecord>> {
        self.with(|c| crate::groups::list_groups(&mut crate::sql::Lite(c), school))
    }
    fn get_group(&self, school: SchoolId, id: i64) -> Result<Option<GroupRecord>> {
        self.with(|c| crate::groups::get_group(&mut crate::sql::Lite(c), school, id))
    }
    fn create_group(
        &self,
        school: SchoolId,
        group: &lectern_policy::groups::Group,
    ) -> Result<GroupRecord> {
        self.with(|c| crate::groups::create_group(&mut crate::sql::Lite(c), school, group))
    }
    fn update_group(
        &self,
        school: SchoolId,
        group: &lectern_policy::groups::Group,
    ) -> Result<Option<GroupRecord>> {
        self.with(|c| crate::groups::update_group(&mut crate::sql::Lite(c), school, group))
    }
    fn delete_group(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| crate::groups::delete_group(&mut crate::sql::Lite(c), school, id))
    }
    fn directory(&self, school: SchoolId) -> Result<Vec<(String, Vec<String>)>> {
        self.with(|c| crate::groups::directory(&mut crate::sql::Lite(c), school))
    }
    fn set_directory_groups(
        &self,
        school: SchoolId,
        username: &str,
        groups: &[String],
    ) -> Result<()> {
        self.with(|c| {
            crate::groups::set_directory_groups(&mut crate::sql::Lite(c), school, username, groups)
        })
    }
    fn list_people(&self, school: SchoolId) -> Result<Vec<crate::Person>> {
        self.with(|c| crate::people::list_people(&mut crate::sql::Lite(c), school))
    }
    fn get_person(&self, school: SchoolId, id: i64) -> Result<Option<crate::Person>> {
        self.with(|c| crate::people::get_person(&mut crate::sql::Lite(c), school, id))
    }
    fn save_person(
        &self,
        school: SchoolId,
        person: &crate::Person,
    ) -> Result<Option<crate::Person>> {
        self.with(|c| crate::people::save_person(&mut crate::sql::Lite(c), school, person))
    }
    fn delete_person(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| crate::people::delete_person(&mut crate::sql::Lite(c), school, id))
    }
    fn preferences(&self, school: SchoolId, user_id: i64) -> Result<Option<String>> {
        self.with(|c| crate::schools::preferences(&mut crate::sql::Lite(c), school, user_id))
    }
    fn update_preferences(
        &self,
        school: SchoolId,
        user_id: i64,
        update: &dyn Fn(Option<String>) -> String,
    ) -> Result<String> {
        self.with(|c| {
            crate::schools::update_preferences(
                &mut crate::sql::Lite(c),
                school,
                user_id,
                update,
                now_ms(),
            )
        })
    }
    fn access_rules(&self, school: SchoolId) -> Result<Vec<lectern_policy::access::AccessRule>> {
        self.with(|c| crate::groups::access_rules(&mut crate::sql::Lite(c), school))
    }
    fn save_access_rule(
        &self,
        school: SchoolId,
        rule: &lectern_policy::access::AccessRule,
    ) -> Result<Option<lectern_policy::access::AccessRule>> {
        self.with(|c| crate::groups::save_access_rule(&mut crate::sql::Lite(c), school, rule))
    }
    fn delete_access_rule(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| crate::groups::delete_access_rule(&mut crate::sql::Lite(c), school, id))
    }
    fn create_lesson(&self, school: SchoolId, lesson: &Lesson) -> Result<Lesson> {
        self.with(|c| crate::groups::create_lesson(&mut crate::sql::Lite(c), school, lesson))
    }
    fn lessons_since(&self, school: SchoolId, since: i64) -> Result<Vec<Lesson>> {
        self.with(|c| crate::groups::lessons_since(&mut crate::sql::Lite(c), school, since))
    }
    fn end_lesson(&self, school: SchoolId, id: i64, at: i64) -> Result<Option<Lesson>> {
        self.with(|c| crate::groups::end_lesson(&mut crate::sql::Lite(c), school, id, at))
    }
    fn bump_counter(&self, school: SchoolId, name: &str) -> Result<u64> {
        self.with(|c| crate::groups::bump_counter(&mut crate::sql::Lite(c), school, name))
    }

    fn add_activity(
        &self,
        school: SchoolId,
        device: i64,
        first_seq: Option<i64>,
        events: &[lectern_proto::ActivityEvent],
    ) -> Result<usize> {
        self.with(|c| {
            crate::activity::add(&mut crate::sql::Lite(c), school, device, first_seq, events)
        })
    }

    fn activity(
        &self,
        school: SchoolId,
        filter: &crate::ActivityFilter,
    ) -> Result<Vec<crate::ActivityRow>> {
        self.with(|c| crate::activity::list(&mut crate::sql::Lite(c), school, filter))
    }

    fn add_violation(&self, school: SchoolId, v: &crate::Violation) -> Result<i64> {
        self.with(|c| crate::safety::add_violation(&mut crate::sql::Lite(c), school, v))
    }

    fn set_violation_screenshots(&self, school: SchoolId, id: i64, n: u32) -> Result<()> {
        self.with(|c| crate::safety::set_screenshots(&mut crate::sql::Lite(c), school, id, n))
    }

    fn violation(&self, school: SchoolId, id: i64) -> Result<Option<crate::Violation>> {
        self.with(|c| crate::safety::violation(&mut crate::sql::Lite(c), school, id))
    }

    fn add_screenshot(
        &self,
        school: SchoolId,
        s: &crate::NewScreenshot,
    ) -> Result<crate::ScreenshotInfo> {
        self.with(|c| crate::screenshots::add(&mut crate::sql::Lite(c), school, s))
    }

    fn screenshots(&self, school: SchoolId, device: i64) -> Result<Vec<crate::ScreenshotInfo>> {
        self.with(|c| crate::screenshots::list(&mut crate::sql::Lite(c), school, device))
    }

    fn screenshot(
        &self,
        school: SchoolId,
        device: i64,
        id: i64,
    ) -> Result<Option<(crate::ScreenshotInfo, Vec<u8>)>> {
        self.with(|c| crate::screenshots::get(&mut crate::sql::Lite(c), school, device, id))
    }

    fn violations(
        &self,
        school: SchoolId,
        filter: &crate::ViolationFilter,
    ) -> Result<Vec<crate::Violation>> {
        self.with(|c| crate::safety::violations(&mut crate::sql::Lite(c), school, filter))
    }

    fn reports(&self, school: SchoolId) -> Result<Vec<crate::ReportDef>> {
        self.with(|c| crate::safety::reports(&mut crate::sql::Lite(c), school))
    }

    fn create_report(&self, school: SchoolId, r: &crate::ReportDef) -> Result<crate::ReportDef> {
        self.with(|c| crate::safety::create_report(&mut crate::sql::Lite(c), school, r))
    }

    fn delete_report(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| crate::safety::delete_report(&mut crate::sql::Lite(c), school, id))
    }

    fn report_ran(&self, school: SchoolId, id: i64, at: i64) -> Result<()> {
        self.with(|c| crate::safety::report_ran(&mut crate::sql::Lite(c), school, id, at))
    }

    fn violation_totals(
        &self,
        school: SchoolId,
        scope: &crate::ReportScope,
    ) -> Result<Vec<crate::ViolationTotal>> {
        self.with(|c| crate::report_totals::violations(&mut crate::sql::Lite(c), school, scope))
    }

    fn website_totals(
        &self,
        school: SchoolId,
        scope: &crate::ReportScope,
    ) -> Result<Vec<crate::WebsiteTotal>> {
        self.with(|c| crate::report_totals::websites(&mut crate::sql::Lite(c), school, scope))
    }

    fn activity_totals(
        &self,
        school: SchoolId,
        scope: &crate::ReportScope,
    ) -> Result<Vec<crate::ActivityTotal>> {
        self.with(|c| crate::report_totals::activity(&mut crate::sql::Lite(c), school, scope))
    }

    fn document(&self, school: SchoolId, name: &str) -> Result<Option<String>> {
        self.with(|c| crate::safety::document(&mut crate::sql::Lite(c), school, name))
    }

    fn set_document(&self, school: SchoolId, name: &str, body: &str) -> Result<()> {
        self.with(|c| crate::safety::set_document(&mut crate::sql::Lite(c), school, name, body))
    }

    fn backup_to(&self, dest: &std::path::Path) -> Result<()> {
        self.with(|c| crate::maintenance::backup_to(c, dest))
    }

    fn export_school(
        &self,
        school: SchoolId,
        dest: &std::path::Path,
    ) -> Result<crate::maintenance::SchoolExport> {
        // On the read-only connection: the snapshot and the pruning of the
        // copy never hold up the other schools' writes.
        self.read_with(|c| crate::maintenance::export_school(c, school, dest))
    }

    fn purge_before(
        &self,
        school: SchoolId,
        what: crate::Retained,
        cutoff: i64,
    ) -> Result<(usize, Vec<i64>)> {
        self.shared(|db| crate::maintenance::purge(db, school, what, cutoff))
    }

    fn raise_hand(&self, school: SchoolId, h: &NewHelpRequest) -> Result<Option<HelpRequest>> {
        self.with(|c| crate::requests::raise(&mut crate::sql::Lite(c), school, h))
    }

    fn close_hand(&self, school: SchoolId, c: &HandClose) -> Result<Option<HelpRequest>> {
        self.with(|conn| crate::requests::close(&mut crate::sql::Lite(conn), school, c))
    }

    fn help_request(&self, school: SchoolId, id: i64) -> Result<Option<HelpRequest>> {
        self.with(|c| crate::requests::get(&mut crate::sql::Lite(c), school, id))
    }

    fn open_help_requests(&self, school: SchoolId) -> Result<Vec<HelpRequest>> {
        self.with(|c| crate::requests::open(&mut crate::sql::Lite(c), school))
    }

    fn add_chat(&self, school: SchoolId, msgs: &[NewChat]) -> Result<Vec<ChatMessage>> {
        self.with(|c| crate::requests::add_chat(&mut crate::sql::Lite(c), school, msgs))
    }

    fn chat_history(
        &self,
        school: SchoolId,
        device: i64,
        thread: &str,
        limit: u32,
    ) -> Result<Vec<ChatMessage>> {
        self.with(|c| {
            crate::requests::chat(&mut crate::sql::Lite(c), school, device, thread, limit)
        })
    }

    fn put_inventory(&self, school: SchoolId, row: &crate::InventoryRow) -> Result<()> {
        self.with(|c| crate::invpower::put_inventory(&mut crate::sql::Lite(c), school, row))
    }

    fn inventory_hash(&self, school: SchoolId, device: i64) -> Result<Option<(String, i64)>> {
        self.with(|c| crate::invpower::inventory_hash(&mut crate::sql::Lite(c), school, device))
    }

    fn inventories(&self, school: SchoolId) -> Result<Vec<crate::InventoryRow>> {
        self.with(|c| crate::invpower::inventories(&mut crate::sql::Lite(c), school))
    }

    fn inventory(&self, school: SchoolId, device: i64) -> Result<Option<crate::InventoryRow>> {
        self.with(|c| crate::invpower::inventory(&mut crate::sql::Lite(c), school, device))
    }

    fn power_schedules(&self, school: SchoolId) -> Result<Vec<crate::PowerSchedule>> {
        self.with(|c| crate::invpower::power_schedules(&mut crate::sql::Lite(c), school))
    }

    fn add_power_schedule(
        &self,
        school: SchoolId,
        s: &crate::PowerSchedule,
    ) -> Result<crate::PowerSchedule> {
        self.with(|c| crate::invpower::add_power_schedule(&mut crate::sql::Lite(c), school, s))
    }

    fn delete_power_schedule(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|c| crate::invpower::delete_power_schedule(&mut crate::sql::Lite(c), school, id))
    }

    fn claim_power_schedule(&self, school: SchoolId, id: i64, day: &str) -> Result<bool> {
        self.with(|c| {
            crate::invpower::claim_power_schedule(&mut crate::sql::Lite(c), school, id, day)
        })
    }

    sub_store_accessors!();
}

impl SqliteStore {
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
        f(&mut self.lock())
    }

    /// Runs `f`, written against the shared SQL, on the connection (see
    /// [`PgStore::shared`](crate::PgStore)).
    pub(crate) fn shared<T>(
        &self,
        f: impl FnOnce(&mut dyn crate::sql::Sql) -> Result<T>,
    ) -> Result<T> {
        self.with(|c| f(&mut crate::sql::Lite(c)))
    }

    /// [`SqliteStore::shared`] on the read-only connection
    /// ([`SqliteStore::read_with`]), for long reads (see
    /// [`PgStore::shared_read`](crate::PgStore)).
    pub(crate) fn shared_read<T>(
        &self,
        f: impl FnOnce(&mut dyn crate::sql::Sql) -> Result<T>,
    ) -> Result<T> {
        self.read_with(|c| f(&mut crate::sql::Lite(c)))
    }

    /// Runs a read on the store's read-only connection (one at a time), so
    /// a long aggregate never blocks the writer or short reads.
    pub(crate) fn read_with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut reader = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        let conn = match reader.take() {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn
            }
        };
        let out = f(&conn);
        *reader = Some(conn);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore, SchoolId) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("Test School").unwrap();
        (dir, s, school)
    }

    #[test]
    fn migrations_run_once_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.create_school("A").unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.first_school().unwrap().unwrap().name, "A");
        let mode: String = s
            .lock()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// Reports made before creators were recorded get theirs from the audit
    /// log where it still holds the creation, and none otherwise.
    #[test]
    fn report_creators_are_taken_from_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let c = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..4] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 4).unwrap();
            c.execute_batch(
                "INSERT INTO schools (id, name, created_at) VALUES (1, 'S', 0);
                 INSERT INTO reports (school_id, name, kind, days, schedule, created_at)
                   VALUES (1, 'Weekly', 'activity_summary', 7, 'daily 00:05', 0),
                          (1, 'Lost', 'activity_summary', 7, 'daily 00:05', 0);
                 INSERT INTO audit_log (school_id, at, actor, action, detail, outcome)
                   VALUES (1, 0, 'tina', 'report.create', 'Weekly (activity_summary, daily 00:05)', 'ok');",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let r = s.reports(1).unwrap();
        assert_eq!(r[0].created_by, "tina");
        assert_eq!(r[1].created_by, "");
    }

    #[test]
    fn users_and_sessions() {
        let (_d, s, school) = store();
        s.create_user(school, "t", "pw", Role::Teacher).unwrap();
        assert!(matches!(
            s.create_user(school, "t", "pw2", Role::Admin),
            Err(StoreError::Exists(_))
        ));
        assert!(s.verify_password(school, "nobody", "pw").unwrap().is_none());
        let user = s.verify_password(school, "t", "pw").unwrap().unwrap();
        let (token, sess) = s.create_session(&user, 60_000).unwrap();
        assert_eq!(
            s.session(&token).unwrap().unwrap().csrf_token,
            sess.csrf_token
        );
        assert!(s.session("forged").unwrap().is_none());
        s.delete_session(&token).unwrap();
        assert!(s.session(&token).unwrap().is_none());
        let (expired, _) = s.create_session(&user, -1).unwrap();
        assert!(s.session(&expired).unwrap().is_none());
    }

    #[test]
    fn a_reported_name_is_recorded_until_accepted() {
        let (_d, s, school) = store();
        let info = |h: &str| NewDevice {
            hostname: h.into(),
            os: "linux".into(),
            agent_version: "0.1".into(),
        };
        let (tok, _) = s
            .create_enrollment_token(school, "lab", 1, now_ms() + 60_000, "admin")
            .unwrap();
        let (dev, _) = s.enroll_device(&tok, &info("LAB1-PC01")).unwrap().unwrap();
        assert_eq!(s.accept_device_name(school, dev.id).unwrap(), None);
        s.touch_device(dev.id, &info("LAB2-PC01"), "{}").unwrap();
        let d = &s.list_devices(school).unwrap()[0];
        assert_eq!(
            (d.hostname.as_str(), d.reported_name.as_deref()),
            ("LAB1-PC01", Some("LAB2-PC01"))
        );
        // Another school cannot accept it.
        assert_eq!(s.accept_device_name(school + 1, dev.id).unwrap(), None);
        assert_eq!(
            s.accept_device_name(school, dev.id).unwrap(),
            Some(("LAB1-PC01".into(), "LAB2-PC01".into()))
        );
        let d = &s.list_devices(school).unwrap()[0];
        assert_eq!(
            (d.hostname.as_str(), d.reported_name.as_deref()),
            ("LAB2-PC01", None)
        );
        // Reporting its own name again clears a pending one.
        s.touch_device(dev.id, &info("X"), "{}").unwrap();
        s.touch_device(dev.id, &info("LAB2-PC01"), "{}").unwrap();
        assert_eq!(s.list_devices(school).unwrap()[0].reported_name, None);
    }

    #[test]
    fn enrollment_consumes_uses_and_revocation_refuses() {
        let (_d, s, school) = store();
        let info = NewDevice {
            hostname: "PC1".into(),
            os: "linux".into(),
            agent_version: "0.1".into(),
        };
        let (tok, _) = s
            .create_enrollment_token(school, "lab", 1, now_ms() + 60_000, "admin")
            .unwrap();
        let (dev, secret) = s.enroll_device(&tok, &info).unwrap().unwrap();
        assert!(
            s.enroll_device(&tok, &info).unwrap().is_none(),
            "token used up"
        );
        assert!(s.enroll_device("bogus", &info).unwrap().is_none());
        let (old, _) = s
            .create_enrollment_token(school, "old", 5, now_ms() - 1, "admin")
            .unwrap();
        assert!(s.enroll_device(&old, &info).unwrap().is_none(), "expired");
        assert!(matches!(
            s.authenticate_device(dev.id, &secret).unwrap(),
            DeviceAuth::Ok(_)
        ));
        assert!(matches!(
            s.authenticate_device(dev.id, "wrong").unwrap(),
            DeviceAuth::Unknown
        ));
        assert!(matches!(
            s.authenticate_device(999, &secret).unwrap(),
            DeviceAuth::Unknown
        ));
        assert!(s.revoke_device(school, dev.id).unwrap());
        assert!(matches!(
            s.authenticate_device(dev.id, &secret).unwrap(),
            DeviceAuth::Revoked
        ));
        assert!(
            !s.revoke_device(school + 1, dev.id).unwrap(),
            "other school cannot revoke"
        );
    }

    #[test]
    fn command_outcomes_only_move_from_pending() {
        let (_d, s, school) = store();
        let rec = s
            .create_command(
                school,
                "admin",
                r#"{"type":"lock"}"#,
                &[(1, TargetStatus::Pending), (2, TargetStatus::Offline)],
            )
            .unwrap();
        let up = |d, st| TargetUpdate {
            command_id: rec.id,
            device_id: d,
            status: st,
            reason: None,
            at: now_ms(),
        };
        s.update_targets(&[up(1, TargetStatus::Done), up(2, TargetStatus::Done)])
            .unwrap();
        s.update_targets(&[up(1, TargetStatus::Failed)]).unwrap();
        let got = s.command(school, rec.id).unwrap().unwrap();
        let st: Vec<_> = got.targets.iter().map(|t| t.status).collect();
        assert_eq!(st, vec![TargetStatus::Done, TargetStatus::Offline]);
        assert!(
            s.command(school + 1, rec.id).unwrap().is_none(),
            "scoped by school"
        );
    }

    #[test]
    fn audit_pages_newest_first() {
        let (_d, s, school) = store();
        for i in 0..5 {
            s.audit(&NewAudit {
                school_id: school,
                actor: "a".into(),
                address: None,
                action: format!("x{i}"),
                detail: String::new(),
                devices: vec![i],
                command_id: None,
                outcome: "ok".into(),
            })
            .unwrap();
        }
        let page = s.audit_list(school, 2, None, None).unwrap();
        assert_eq!(
            page.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["x4", "x3"]
        );
        let next = s.audit_list(school, 10, Some(page[1].id), None).unwrap();
        assert_eq!(next.len(), 3);
        assert_eq!(next[0].devices, vec![2]);
        // A reader sees entries whose every device they view, and their own.
        for (actor, devices) in [("b", vec![1, 2]), ("b", vec![]), ("c", vec![])] {
            s.audit(&NewAudit {
                school_id: school,
                actor: actor.into(),
                address: None,
                action: format!("{actor}{devices:?}"),
                detail: String::new(),
                devices,
                command_id: None,
                outcome: "ok".into(),
            })
            .unwrap();
        }
        let reader = AuditReader {
            username: "b".into(),
            devices: vec![2, 3],
        };
        let seen = s.audit_list(school, 3, None, Some(&reader)).unwrap();
        assert_eq!(
            seen.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
            ["b[]", "b[1, 2]", "x3"]
        );
        let rest = s.audit_list(school, 10, Some(seen[2].id), Some(&reader));
        assert_eq!(
            rest.unwrap()
                .iter()
                .map(|e| e.action.as_str())
                .collect::<Vec<_>>(),
            ["x2"]
        );
    }

    #[test]
    fn groups_lessons_rules_and_counters() {
        use lectern_policy::groups::{Group, GroupKind, Member, Priority};
        let (_d, s, school) = store();
        let groups = s.list_groups(school).unwrap();
        assert_eq!(groups.len(), builtin_groups().len());
        assert!(groups.iter().all(|g| g.builtin));
        let banned = groups
            .iter()
            .find(|g| g.group.name == "Internet Banned")
            .unwrap();
        assert!(
            !s.delete_group(school, banned.group.id).unwrap(),
            "built-in groups stay"
        );
        let mut g = Group {
            id: 0,
            name: "IT Suite".into(),
            kind: GroupKind::Computer,
            priority: Priority::Medium,
            members: vec![Member::Hostname("IT01*".into())],
            settings: Default::default(),
        };
        let rec = s.create_group(school, &g).unwrap();
        assert!(matches!(
            s.create_group(school, &g),
            Err(StoreError::Exists(_))
        ));
        g.id = rec.group.id;
        g.priority = Priority::High;
        assert_eq!(
            s.update_group(school, &g).unwrap().unwrap().group.priority,
            Priority::High
        );
        assert!(
            s.update_group(school + 1, &g).unwrap().is_none(),
            "scoped by school"
        );
        assert!(s.delete_group(school, g.id).unwrap());

        s.set_directory_groups(school, "amy", &["Year 9".into(), "Choir".into()])
            .unwrap();
        assert_eq!(
            s.directory(school).unwrap(),
            vec![(
                "amy".to_string(),
                vec!["Choir".to_string(), "Year 9".to_string()]
            )]
        );

        let lesson = s
            .create_lesson(
                school,
                &Lesson {
                    id: 0,
                    group_id: 1,
                    teacher: "t".into(),
                    restrictions: Default::default(),
                    starts_at: now_ms(),
                    ends_at: now_ms() + 60_000,
                    ended_at: None,
                },
            )
            .unwrap();
        assert!(lesson.active_at(now_ms()));
        let ended = s.end_lesson(school, lesson.id, now_ms()).unwrap().unwrap();
        assert!(!ended.active_at(now_ms()));
        assert_eq!(s.lessons_since(school, 0).unwrap().len(), 1);

        assert_eq!(s.bump_counter(school, "policy").unwrap(), 1);
        assert_eq!(s.bump_counter(school, "policy").unwrap(), 2);

        let rule = lectern_policy::access::AccessRule {
            id: 0,
            principal: lectern_policy::access::Principal::User("t".into()),
            features: ["devices.view".to_string()].into(),
            group_access: Default::default(),
            bypass_privacy: false,
        };
        let saved = s.save_access_rule(school, &rule).unwrap().unwrap();
        assert!(saved.id > 0);
        assert_eq!(s.access_rules(school).unwrap(), vec![saved.clone()]);
        assert!(s.delete_access_rule(school, saved.id).unwrap());
    }

    #[test]
    fn a_deleted_groups_access_does_not_pass_to_a_group_given_its_id() {
        use lectern_policy::access::{Access, AccessRule, Principal};
        use lectern_policy::groups::{Group, GroupKind, Priority};
        let (_d, s, school) = store();
        let group = |name: &str| Group {
            id: 0,
            name: name.into(),
            kind: GroupKind::Computer,
            priority: Priority::Low,
            members: vec![],
            settings: Default::default(),
        };
        let keep = s.create_group(school, &group("Room 4")).unwrap().group.id;
        // The newest group: SQLite gives its id out again once it is deleted.
        let room = s.create_group(school, &group("Room 5")).unwrap().group.id;
        let rule = AccessRule {
            id: 0,
            principal: Principal::User("t".into()),
            features: Default::default(),
            group_access: [(room, Access::Control), (keep, Access::View)].into(),
            bypass_privacy: false,
        };
        // A rule naming an id that no group has yet (as rules written before
        // deletions were cleaned up may).
        let stale = AccessRule {
            group_access: [(room + 1, Access::Control)].into(),
            ..rule.clone()
        };
        s.save_access_rule(school, &rule).unwrap().unwrap();
        s.save_access_rule(school, &stale).unwrap().unwrap();
        assert!(s.delete_group(school, room).unwrap());
        let rules = s.access_rules(school).unwrap();
        assert_eq!(rules[0].group_access, [(keep, Access::View)].into());
        for (name, want) in [("Room 6", room), ("Room 7", room + 1)] {
            let id = s.create_group(school, &group(name)).unwrap().group.id;
            assert_eq!(id, want, "ids are reused");
            assert!(s
                .access_rules(school)
                .unwrap()
                .iter()
                .all(|r| !r.group_access.contains_key(&id)));
        }
    }
}
