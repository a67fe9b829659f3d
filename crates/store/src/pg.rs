//! The store on PostgreSQL, for cluster mode (issue 16 point 5): its schema,
//! kept equal to the SQLite migrations' by `tests/pg_schema.rs`, and
//! [`PgStore`], which runs the store's shared SQL (`crate::sql`), tested on
//! both engines by `tests/pg_*.rs`.

/// Creates every table, index and trigger of the store in an empty
/// database (needs `CREATE EXTENSION` for `citext`, trusted since
/// PostgreSQL 13).
pub const SCHEMA: &str = include_str!("pg/schema.sql");

mod backup;

use std::sync::Mutex;

use lectern_policy::access::AccessRule;
use lectern_policy::groups::Group;

use crate::groups::{self, GroupRecord, Lesson};
use crate::sql::{Pg, Sql};
use crate::{
    activity, fleet, invpower, now_ms, people, report_totals, requests, safety, schools,
    screenshots, ActivityFilter, ActivityRow, ActivityTotal, AuditEntry, AuditReader, ChatMessage,
    CommandRecord, Device, DeviceAuth, EnrollmentToken, HandClose, HelpRequest, InventoryRow,
    NewAudit, NewChat, NewDevice, NewHelpRequest, NewScreenshot, Person, PowerSchedule, ReportDef,
    ReportScope, Result, Role, School, SchoolId, ScreenshotInfo, Session, Store, StoreError,
    TargetStatus, TargetUpdate, User, Violation, ViolationFilter, ViolationTotal, WebsiteTotal,
};

/// The store on PostgreSQL, for a cluster of nodes sharing it: the whole of
/// [`Store`], on the same SQL as [`SqliteStore`](crate::SqliteStore) (see
/// `crate::sql`), and every sub-store. One connection behind a mutex, as
/// SQLite's; calls block, so async callers run them on a blocking thread.
pub struct PgStore {
    client: Mutex<Connection>,
    /// How to connect again: after the server restarted or the network
    /// broke, and for a backup, which reads on a connection of its own so
    /// that the node's other calls do not wait for it.
    params: String,
}

/// The client, closed on a thread of its own when the store goes: it runs
/// its own runtime, which cannot be stopped from inside an async task, and
/// a server drops its state in one.
struct Connection(Option<postgres::Client>);

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            let _ = std::thread::spawn(move || drop(client)).join();
        }
    }
}

impl PgStore {
    /// Connects with `params` (`host=… port=… user=… dbname=…`) and, in a
    /// database without the store's tables, creates them. Not from inside
    /// an async task: the client runs its own runtime.
    pub fn connect(params: &str) -> Result<PgStore> {
        let mut client = postgres::Client::connect(params, postgres::NoTls)?;
        let made = client
            .query_opt("SELECT 1 FROM pg_tables WHERE tablename = 'schools'", &[])?
            .is_some();
        if !made {
            let mut tx = client.transaction()?;
            tx.batch_execute(SCHEMA)?;
            tx.commit()?;
        }
        Ok(PgStore {
            client: Mutex::new(Connection(Some(client))),
            params: params.to_string(),
        })
    }

    /// Runs `f` on the connection, connecting again first if the last one
    /// was lost (PostgreSQL restarted, the network broke): the call that
    /// met the break failed; the ones after it find the server again by
    /// themselves.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        let mut conn = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if conn.0.as_ref().is_none_or(postgres::Client::is_closed) {
            // The broken client goes on a thread of its own, as in Drop.
            drop(Connection(conn.0.take()));
            conn.0 = Some(postgres::Client::connect(&self.params, postgres::NoTls)?);
        }
        match conn.0.as_mut() {
            Some(client) => f(&mut Pg(client)),
            None => Err(StoreError::Corrupt("no PostgreSQL connection".into())),
        }
    }

    /// [`PgStore::with`], under the name `SqliteStore` has for the same, so
    /// that a store trait is implemented for both by one macro.
    pub(crate) fn shared<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        self.with(f)
    }

    /// [`PgStore::with`], under the name `SqliteStore` has for reads on its
    /// read-only connection (one connection here).
    pub(crate) fn shared_read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        self.with(f)
    }
}

impl Store for PgStore {
    // Schools and console users' sign-in (`crate::schools`).
    fn create_school(&self, name: &str) -> Result<SchoolId> {
        self.with(|db| schools::create_school(db, name, now_ms()))
    }

    fn first_school(&self) -> Result<Option<School>> {
        self.with(schools::first_school)
    }

    fn school(&self, id: SchoolId) -> Result<Option<School>> {
        self.with(|db| schools::school(db, id))
    }

    fn schools(&self) -> Result<Vec<School>> {
        self.with(schools::schools)
    }

    fn schools_with_user(&self, username: &str) -> Result<Vec<SchoolId>> {
        self.with(|db| schools::schools_with_user(db, username))
    }

    fn create_user(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<i64> {
        // Hashed before the lock: Argon2 is slow on purpose.
        let hash = crate::sqlite::hash_password(password)?;
        self.with(|db| schools::create_user(db, school, username, &hash, role, now_ms()))
    }

    fn verify_password(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
    ) -> Result<Option<User>> {
        let found = self.with(|db| schools::user_with_hash(db, school, username))?;
        crate::sqlite::check_password(found, password)
    }

    fn create_session(&self, user: &User, ttl_ms: i64) -> Result<(String, Session)> {
        self.with(|db| schools::create_session(db, user, ttl_ms, now_ms()))
    }

    fn session(&self, token: &str) -> Result<Option<Session>> {
        self.with(|db| schools::session(db, token, now_ms()))
    }

    fn delete_session(&self, token: &str) -> Result<()> {
        self.with(|db| schools::delete_session(db, token))
    }

    fn list_users(&self, school: SchoolId) -> Result<Vec<User>> {
        self.with(|db| schools::list_users(db, school))
    }

    // Devices and commands (`crate::fleet`).
    fn create_enrollment_token(
        &self,
        school: SchoolId,
        label: &str,
        uses: i64,
        expires_at: i64,
        created_by: &str,
    ) -> Result<(String, EnrollmentToken)> {
        let token = crate::printable_secret(crate::ENROLLMENT_TOKEN_PREFIX);
        let rec = self.with(|db| {
            fleet::add_enrollment_token(db, school, &token, label, uses, expires_at, created_by)
        })?;
        Ok((token, rec))
    }

    fn list_enrollment_tokens(&self, school: SchoolId) -> Result<Vec<EnrollmentToken>> {
        self.with(|db| fleet::list_enrollment_tokens(db, school))
    }

    fn enroll_device(&self, token: &str, info: &NewDevice) -> Result<Option<(Device, String)>> {
        self.with(|db| fleet::enroll_device(db, token, info, now_ms()))
    }

    fn authenticate_device(&self, device_id: i64, secret: &str) -> Result<DeviceAuth> {
        let found = self.with(|db| fleet::device_with_hash(db, device_id))?;
        Ok(fleet::check_device(found, secret))
    }

    fn touch_device(&self, device_id: i64, info: &NewDevice, state_json: &str) -> Result<()> {
        self.with(|db| fleet::touch_device(db, device_id, info, state_json, now_ms()))
    }

    fn save_device_state(&self, device_id: i64, state_json: &str) -> Result<()> {
        self.with(|db| fleet::save_device_state(db, device_id, state_json))
    }

    fn accept_device_name(
        &self,
        school: SchoolId,
        device_id: i64,
    ) -> Result<Option<(String, String)>> {
        self.with(|db| fleet::accept_device_name(db, school, device_id))
    }

    fn list_devices(&self, school: SchoolId) -> Result<Vec<Device>> {
        self.with(|db| fleet::list_devices(db, school))
    }

    fn revoke_device(&self, school: SchoolId, device_id: i64) -> Result<bool> {
        self.with(|db| fleet::revoke_device(db, school, device_id, now_ms()))
    }

    fn create_command(
        &self,
        school: SchoolId,
        actor: &str,
        body_json: &str,
        targets: &[(i64, TargetStatus)],
    ) -> Result<CommandRecord> {
        self.with(|db| fleet::create_command(db, school, actor, body_json, targets, now_ms()))
    }

    fn update_targets(&self, updates: &[TargetUpdate]) -> Result<()> {
        self.with(|db| fleet::update_targets(db, updates))
    }

    fn command(&self, school: SchoolId, id: i64) -> Result<Option<CommandRecord>> {
        self.with(|db| fleet::command(db, school, id))
    }

    // Groups, directory groups, access rules, lessons and counters (`crate::groups`).
    fn list_groups(&self, school: SchoolId) -> Result<Vec<GroupRecord>> {
        self.with(|db| groups::list_groups(db, school))
    }

    fn get_group(&self, school: SchoolId, id: i64) -> Result<Option<GroupRecord>> {
        self.with(|db| groups::get_group(db, school, id))
    }

    fn create_group(&self, school: SchoolId, group: &Group) -> Result<GroupRecord> {
        self.with(|db| groups::create_group(db, school, group))
    }

    fn update_group(&self, school: SchoolId, group: &Group) -> Result<Option<GroupRecord>> {
        self.with(|db| groups::update_group(db, school, group))
    }

    fn delete_group(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| groups::delete_group(db, school, id))
    }

    fn directory(&self, school: SchoolId) -> Result<Vec<(String, Vec<String>)>> {
        self.with(|db| groups::directory(db, school))
    }

    fn set_directory_groups(
        &self,
        school: SchoolId,
        username: &str,
        names: &[String],
    ) -> Result<()> {
        self.with(|db| groups::set_directory_groups(db, school, username, names))
    }

    fn access_rules(&self, school: SchoolId) -> Result<Vec<AccessRule>> {
        self.with(|db| groups::access_rules(db, school))
    }

    fn save_access_rule(&self, school: SchoolId, rule: &AccessRule) -> Result<Option<AccessRule>> {
        self.with(|db| groups::save_access_rule(db, school, rule))
    }

    fn delete_access_rule(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| groups::delete_access_rule(db, school, id))
    }

    fn create_lesson(&self, school: SchoolId, lesson: &Lesson) -> Result<Lesson> {
        self.with(|db| groups::create_lesson(db, school, lesson))
    }

    fn lessons_since(&self, school: SchoolId, since: i64) -> Result<Vec<Lesson>> {
        self.with(|db| groups::lessons_since(db, school, since))
    }

    fn end_lesson(&self, school: SchoolId, id: i64, at: i64) -> Result<Option<Lesson>> {
        self.with(|db| groups::end_lesson(db, school, id, at))
    }

    fn bump_counter(&self, school: SchoolId, name: &str) -> Result<u64> {
        self.with(|db| groups::bump_counter(db, school, name))
    }

    // People, console preferences and the audit log.
    fn list_people(&self, school: SchoolId) -> Result<Vec<Person>> {
        self.with(|db| people::list_people(db, school))
    }

    fn get_person(&self, school: SchoolId, id: i64) -> Result<Option<Person>> {
        self.with(|db| people::get_person(db, school, id))
    }

    fn save_person(&self, school: SchoolId, person: &Person) -> Result<Option<Person>> {
        self.with(|db| people::save_person(db, school, person))
    }

    fn delete_person(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| people::delete_person(db, school, id))
    }

    fn preferences(&self, school: SchoolId, user_id: i64) -> Result<Option<String>> {
        self.with(|db| schools::preferences(db, school, user_id))
    }

    fn update_preferences(
        &self,
        school: SchoolId,
        user_id: i64,
        update: &dyn Fn(Option<String>) -> String,
    ) -> Result<String> {
        self.with(|db| schools::update_preferences(db, school, user_id, update, now_ms()))
    }

    fn audit(&self, entry: &NewAudit) -> Result<i64> {
        self.with(|db| schools::audit(db, entry, now_ms()))
    }

    fn audit_list(
        &self,
        school: SchoolId,
        limit: i64,
        before: Option<i64>,
        reader: Option<&AuditReader>,
    ) -> Result<Vec<AuditEntry>> {
        self.with(|db| schools::audit_list(db, school, limit, before, reader))
    }

    // The activity log (`crate::activity`).
    fn add_activity(
        &self,
        school: SchoolId,
        device: i64,
        first_seq: Option<i64>,
        events: &[lectern_proto::ActivityEvent],
    ) -> Result<usize> {
        self.with(|db| activity::add(db, school, device, first_seq, events))
    }

    fn activity(&self, school: SchoolId, filter: &ActivityFilter) -> Result<Vec<ActivityRow>> {
        self.with(|db| activity::list(db, school, filter))
    }

    // Violations, report definitions and school documents (`crate::safety`).
    fn add_violation(&self, school: SchoolId, v: &Violation) -> Result<i64> {
        self.with(|db| safety::add_violation(db, school, v))
    }

    fn set_violation_screenshots(&self, school: SchoolId, id: i64, n: u32) -> Result<()> {
        self.with(|db| safety::set_screenshots(db, school, id, n))
    }

    fn violation(&self, school: SchoolId, id: i64) -> Result<Option<Violation>> {
        self.with(|db| safety::violation(db, school, id))
    }

    fn violations(&self, school: SchoolId, filter: &ViolationFilter) -> Result<Vec<Violation>> {
        self.with(|db| safety::violations(db, school, filter))
    }

    fn reports(&self, school: SchoolId) -> Result<Vec<ReportDef>> {
        self.with(|db| safety::reports(db, school))
    }

    fn create_report(&self, school: SchoolId, r: &ReportDef) -> Result<ReportDef> {
        self.with(|db| safety::create_report(db, school, r))
    }

    fn delete_report(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| safety::delete_report(db, school, id))
    }

    fn report_ran(&self, school: SchoolId, id: i64, at: i64) -> Result<()> {
        self.with(|db| safety::report_ran(db, school, id, at))
    }

    fn document(&self, school: SchoolId, name: &str) -> Result<Option<String>> {
        self.with(|db| safety::document(db, school, name))
    }

    fn set_document(&self, school: SchoolId, name: &str, body: &str) -> Result<()> {
        self.with(|db| safety::set_document(db, school, name, body))
    }

    // Live-view screenshots (`crate::screenshots`).
    fn add_screenshot(&self, school: SchoolId, s: &NewScreenshot) -> Result<ScreenshotInfo> {
        self.with(|db| screenshots::add(db, school, s))
    }

    fn screenshots(&self, school: SchoolId, device: i64) -> Result<Vec<ScreenshotInfo>> {
        self.with(|db| screenshots::list(db, school, device))
    }

    fn screenshot(
        &self,
        school: SchoolId,
        device: i64,
        id: i64,
    ) -> Result<Option<(ScreenshotInfo, Vec<u8>)>> {
        self.with(|db| screenshots::get(db, school, device, id))
    }

    // Raised hands, chat, inventory and power schedules (`crate::requests`, `crate::invpower`).
    fn raise_hand(&self, school: SchoolId, h: &NewHelpRequest) -> Result<Option<HelpRequest>> {
        self.with(|db| requests::raise(db, school, h))
    }

    fn close_hand(&self, school: SchoolId, c: &HandClose) -> Result<Option<HelpRequest>> {
        self.with(|db| requests::close(db, school, c))
    }

    fn help_request(&self, school: SchoolId, id: i64) -> Result<Option<HelpRequest>> {
        self.with(|db| requests::get(db, school, id))
    }

    fn open_help_requests(&self, school: SchoolId) -> Result<Vec<HelpRequest>> {
        self.with(|db| requests::open(db, school))
    }

    fn add_chat(&self, school: SchoolId, msgs: &[NewChat]) -> Result<Vec<ChatMessage>> {
        self.with(|db| requests::add_chat(db, school, msgs))
    }

    fn chat_history(
        &self,
        school: SchoolId,
        device: i64,
        thread: &str,
        limit: u32,
    ) -> Result<Vec<ChatMessage>> {
        self.with(|db| requests::chat(db, school, device, thread, limit))
    }

    fn put_inventory(&self, school: SchoolId, row: &InventoryRow) -> Result<()> {
        self.with(|db| invpower::put_inventory(db, school, row))
    }

    fn inventory_hash(&self, school: SchoolId, device: i64) -> Result<Option<(String, i64)>> {
        self.with(|db| invpower::inventory_hash(db, school, device))
    }

    fn inventories(&self, school: SchoolId) -> Result<Vec<InventoryRow>> {
        self.with(|db| invpower::inventories(db, school))
    }

    fn inventory(&self, school: SchoolId, device: i64) -> Result<Option<InventoryRow>> {
        self.with(|db| invpower::inventory(db, school, device))
    }

    fn power_schedules(&self, school: SchoolId) -> Result<Vec<PowerSchedule>> {
        self.with(|db| invpower::power_schedules(db, school))
    }

    fn add_power_schedule(&self, school: SchoolId, s: &PowerSchedule) -> Result<PowerSchedule> {
        self.with(|db| invpower::add_power_schedule(db, school, s))
    }

    fn delete_power_schedule(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| invpower::delete_power_schedule(db, school, id))
    }

    fn claim_power_schedule(&self, school: SchoolId, id: i64, day: &str) -> Result<bool> {
        self.with(|db| invpower::claim_power_schedule(db, school, id, day))
    }

    // Report totals (`crate::report_totals`).
    fn violation_totals(
        &self,
        school: SchoolId,
        scope: &ReportScope,
    ) -> Result<Vec<ViolationTotal>> {
        self.with(|db| report_totals::violations(db, school, scope))
    }

    fn website_totals(&self, school: SchoolId, scope: &ReportScope) -> Result<Vec<WebsiteTotal>> {
        self.with(|db| report_totals::websites(db, school, scope))
    }

    fn activity_totals(&self, school: SchoolId, scope: &ReportScope) -> Result<Vec<ActivityTotal>> {
        self.with(|db| report_totals::activity(db, school, scope))
    }

    // Backups and retention (`crate::maintenance`): a backup is the rows of
    // one moment written as a SQLite database of the store's schema
    // (`pg/backup.rs`); an export is that backup cut to one school.
    fn backup_to(&self, dest: &std::path::Path) -> Result<()> {
        let mut client = postgres::Client::connect(&self.params, postgres::NoTls)?;
        backup::copy_to_sqlite(&mut client, dest)
    }

    fn export_school(
        &self,
        school: SchoolId,
        dest: &std::path::Path,
    ) -> Result<crate::SchoolExport> {
        self.backup_to(dest)?;
        crate::maintenance::keep_only_school(dest, school)
    }

    fn purge_before(
        &self,
        school: SchoolId,
        what: crate::Retained,
        cutoff: i64,
    ) -> Result<(usize, Vec<i64>)> {
        self.with(|db| crate::maintenance::purge(db, school, what, cutoff))
    }

    sub_store_accessors!();
}
