//! The store on PostgreSQL, for cluster mode (issue 16 point 5): its schema,
//! kept equal to the SQLite migrations' by `tests/pg_schema.rs`, and
//! [`PgStore`], which runs the store's shared SQL (`crate::sql`) for the
//! modules moved there so far, tested on both engines by
//! `tests/pg_store.rs`.

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
    ReportScope, Result, Role, School, SchoolId, ScreenshotInfo, Session, TargetStatus,
    TargetUpdate, User, Violation, ViolationFilter, ViolationTotal, WebsiteTotal,
};

/// The store on PostgreSQL. So far it holds the school grants
/// ([`GrantStore`](crate::grants::GrantStore)); the rest of
/// [`Store`](crate::Store) moves over module by module, each tested on both
/// engines. One connection behind a mutex, as SQLite's.
pub struct PgStore {
    client: Mutex<postgres::Client>,
    /// How to connect again: a backup reads on a connection of its own, so
    /// the node's other calls do not wait for it.
    params: String,
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
            client: Mutex::new(client),
            params: params.to_string(),
        })
    }

    /// Runs `f` on the connection.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut Pg(&mut client))
    }

    /// [`PgStore::with`], under the name `SqliteStore` has for the same, so
    /// that a store trait is implemented for both by one macro.
    pub(crate) fn shared<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        self.with(f)
    }

    /// See [`Store::backup_to`](crate::Store::backup_to): the rows of one
    /// moment, written as a SQLite database of the store's schema (see
    /// `pg/backup.rs`).
    pub fn backup_to(&self, dest: &std::path::Path) -> Result<()> {
        let mut client = postgres::Client::connect(&self.params, postgres::NoTls)?;
        backup::copy_to_sqlite(&mut client, dest)
    }

    /// See [`Store::export_school`](crate::Store::export_school): the
    /// backup, then the same pruning as on SQLite.
    pub fn export_school(
        &self,
        school: SchoolId,
        dest: &std::path::Path,
    ) -> Result<crate::SchoolExport> {
        self.backup_to(dest)?;
        crate::maintenance::keep_only_school(dest, school)
    }

    /// See [`Store::purge_before`](crate::Store::purge_before).
    pub fn purge_before(
        &self,
        school: SchoolId,
        what: crate::Retained,
        cutoff: i64,
    ) -> Result<(usize, Vec<i64>)> {
        self.with(|db| crate::maintenance::purge(db, school, what, cutoff))
    }

    /// [`PgStore::with`], under the name `SqliteStore` has for reads on its
    /// read-only connection (one connection here).
    pub(crate) fn shared_read<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T> {
        self.with(f)
    }
}

/// Schools and console users' sign-in (`crate::schools`), as
/// [`Store`](crate::Store) has them; they move into `PgStore`'s `Store` when
/// the rest of it has moved.
impl PgStore {
    /// See [`Store::create_school`](crate::Store::create_school).
    pub fn create_school(&self, name: &str) -> Result<SchoolId> {
        self.with(|db| schools::create_school(db, name, now_ms()))
    }

    /// See [`Store::first_school`](crate::Store::first_school).
    pub fn first_school(&self) -> Result<Option<School>> {
        self.with(schools::first_school)
    }

    /// See [`Store::school`](crate::Store::school).
    pub fn school(&self, id: SchoolId) -> Result<Option<School>> {
        self.with(|db| schools::school(db, id))
    }

    /// See [`Store::schools`](crate::Store::schools).
    pub fn schools(&self) -> Result<Vec<School>> {
        self.with(schools::schools)
    }

    /// See [`Store::schools_with_user`](crate::Store::schools_with_user).
    pub fn schools_with_user(&self, username: &str) -> Result<Vec<SchoolId>> {
        self.with(|db| schools::schools_with_user(db, username))
    }

    /// See [`Store::create_user`](crate::Store::create_user).
    pub fn create_user(
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

    /// See [`Store::verify_password`](crate::Store::verify_password).
    pub fn verify_password(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
    ) -> Result<Option<User>> {
        let found = self.with(|db| schools::user_with_hash(db, school, username))?;
        crate::sqlite::check_password(found, password)
    }

    /// See [`Store::create_session`](crate::Store::create_session).
    pub fn create_session(&self, user: &User, ttl_ms: i64) -> Result<(String, Session)> {
        self.with(|db| schools::create_session(db, user, ttl_ms, now_ms()))
    }

    /// See [`Store::session`](crate::Store::session).
    pub fn session(&self, token: &str) -> Result<Option<Session>> {
        self.with(|db| schools::session(db, token, now_ms()))
    }

    /// See [`Store::delete_session`](crate::Store::delete_session).
    pub fn delete_session(&self, token: &str) -> Result<()> {
        self.with(|db| schools::delete_session(db, token))
    }

    /// See [`Store::list_users`](crate::Store::list_users).
    pub fn list_users(&self, school: SchoolId) -> Result<Vec<User>> {
        self.with(|db| schools::list_users(db, school))
    }
}

/// Devices and commands (`crate::fleet`), as [`Store`](crate::Store) has
/// them.
impl PgStore {
    /// See [`Store::create_enrollment_token`](crate::Store::create_enrollment_token).
    pub fn create_enrollment_token(
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

    /// See [`Store::list_enrollment_tokens`](crate::Store::list_enrollment_tokens).
    pub fn list_enrollment_tokens(&self, school: SchoolId) -> Result<Vec<EnrollmentToken>> {
        self.with(|db| fleet::list_enrollment_tokens(db, school))
    }

    /// See [`Store::enroll_device`](crate::Store::enroll_device).
    pub fn enroll_device(&self, token: &str, info: &NewDevice) -> Result<Option<(Device, String)>> {
        self.with(|db| fleet::enroll_device(db, token, info, now_ms()))
    }

    /// See [`Store::authenticate_device`](crate::Store::authenticate_device).
    pub fn authenticate_device(&self, device_id: i64, secret: &str) -> Result<DeviceAuth> {
        let found = self.with(|db| fleet::device_with_hash(db, device_id))?;
        Ok(fleet::check_device(found, secret))
    }

    /// See [`Store::touch_device`](crate::Store::touch_device).
    pub fn touch_device(&self, device_id: i64, info: &NewDevice, state_json: &str) -> Result<()> {
        self.with(|db| fleet::touch_device(db, device_id, info, state_json, now_ms()))
    }

    /// See [`Store::accept_device_name`](crate::Store::accept_device_name).
    pub fn accept_device_name(
        &self,
        school: SchoolId,
        device_id: i64,
    ) -> Result<Option<(String, String)>> {
        self.with(|db| fleet::accept_device_name(db, school, device_id))
    }

    /// See [`Store::list_devices`](crate::Store::list_devices).
    pub fn list_devices(&self, school: SchoolId) -> Result<Vec<Device>> {
        self.with(|db| fleet::list_devices(db, school))
    }

    /// See [`Store::revoke_device`](crate::Store::revoke_device).
    pub fn revoke_device(&self, school: SchoolId, device_id: i64) -> Result<bool> {
        self.with(|db| fleet::revoke_device(db, school, device_id, now_ms()))
    }

    /// See [`Store::create_command`](crate::Store::create_command).
    pub fn create_command(
        &self,
        school: SchoolId,
        actor: &str,
        body_json: &str,
        targets: &[(i64, TargetStatus)],
    ) -> Result<CommandRecord> {
        self.with(|db| fleet::create_command(db, school, actor, body_json, targets, now_ms()))
    }

    /// See [`Store::update_targets`](crate::Store::update_targets).
    pub fn update_targets(&self, updates: &[TargetUpdate]) -> Result<()> {
        self.with(|db| fleet::update_targets(db, updates))
    }

    /// See [`Store::command`](crate::Store::command).
    pub fn command(&self, school: SchoolId, id: i64) -> Result<Option<CommandRecord>> {
        self.with(|db| fleet::command(db, school, id))
    }
}

/// Groups, directory groups, access rules, lessons and counters
/// (`crate::groups`), as [`Store`](crate::Store) has them.
impl PgStore {
    /// See [`Store::list_groups`](crate::Store::list_groups).
    pub fn list_groups(&self, school: SchoolId) -> Result<Vec<GroupRecord>> {
        self.with(|db| groups::list_groups(db, school))
    }

    /// See [`Store::get_group`](crate::Store::get_group).
    pub fn get_group(&self, school: SchoolId, id: i64) -> Result<Option<GroupRecord>> {
        self.with(|db| groups::get_group(db, school, id))
    }

    /// See [`Store::create_group`](crate::Store::create_group).
    pub fn create_group(&self, school: SchoolId, group: &Group) -> Result<GroupRecord> {
        self.with(|db| groups::create_group(db, school, group))
    }

    /// See [`Store::update_group`](crate::Store::update_group).
    pub fn update_group(&self, school: SchoolId, group: &Group) -> Result<Option<GroupRecord>> {
        self.with(|db| groups::update_group(db, school, group))
    }

    /// See [`Store::delete_group`](crate::Store::delete_group).
    pub fn delete_group(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| groups::delete_group(db, school, id))
    }

    /// See [`Store::directory`](crate::Store::directory).
    pub fn directory(&self, school: SchoolId) -> Result<Vec<(String, Vec<String>)>> {
        self.with(|db| groups::directory(db, school))
    }

    /// See [`Store::set_directory_groups`](crate::Store::set_directory_groups).
    pub fn set_directory_groups(
        &self,
        school: SchoolId,
        username: &str,
        names: &[String],
    ) -> Result<()> {
        self.with(|db| groups::set_directory_groups(db, school, username, names))
    }

    /// See [`Store::access_rules`](crate::Store::access_rules).
    pub fn access_rules(&self, school: SchoolId) -> Result<Vec<AccessRule>> {
        self.with(|db| groups::access_rules(db, school))
    }

    /// See [`Store::save_access_rule`](crate::Store::save_access_rule).
    pub fn save_access_rule(
        &self,
        school: SchoolId,
        rule: &AccessRule,
    ) -> Result<Option<AccessRule>> {
        self.with(|db| groups::save_access_rule(db, school, rule))
    }

    /// See [`Store::delete_access_rule`](crate::Store::delete_access_rule).
    pub fn delete_access_rule(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| groups::delete_access_rule(db, school, id))
    }

    /// See [`Store::create_lesson`](crate::Store::create_lesson).
    pub fn create_lesson(&self, school: SchoolId, lesson: &Lesson) -> Result<Lesson> {
        self.with(|db| groups::create_lesson(db, school, lesson))
    }

    /// See [`Store::lessons_since`](crate::Store::lessons_since).
    pub fn lessons_since(&self, school: SchoolId, since: i64) -> Result<Vec<Lesson>> {
        self.with(|db| groups::lessons_since(db, school, since))
    }

    /// See [`Store::end_lesson`](crate::Store::end_lesson).
    pub fn end_lesson(&self, school: SchoolId, id: i64, at: i64) -> Result<Option<Lesson>> {
        self.with(|db| groups::end_lesson(db, school, id, at))
    }

    /// See [`Store::bump_counter`](crate::Store::bump_counter).
    pub fn bump_counter(&self, school: SchoolId, name: &str) -> Result<u64> {
        self.with(|db| groups::bump_counter(db, school, name))
    }
}

/// People, console preferences and the audit log, as
/// [`Store`](crate::Store) has them.
impl PgStore {
    /// See [`Store::list_people`](crate::Store::list_people).
    pub fn list_people(&self, school: SchoolId) -> Result<Vec<Person>> {
        self.with(|db| people::list_people(db, school))
    }

    /// See [`Store::get_person`](crate::Store::get_person).
    pub fn get_person(&self, school: SchoolId, id: i64) -> Result<Option<Person>> {
        self.with(|db| people::get_person(db, school, id))
    }

    /// See [`Store::save_person`](crate::Store::save_person).
    pub fn save_person(&self, school: SchoolId, person: &Person) -> Result<Option<Person>> {
        self.with(|db| people::save_person(db, school, person))
    }

    /// See [`Store::delete_person`](crate::Store::delete_person).
    pub fn delete_person(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| people::delete_person(db, school, id))
    }

    /// See [`Store::preferences`](crate::Store::preferences).
    pub fn preferences(&self, school: SchoolId, user_id: i64) -> Result<Option<String>> {
        self.with(|db| schools::preferences(db, school, user_id))
    }

    /// See [`Store::update_preferences`](crate::Store::update_preferences).
    pub fn update_preferences(
        &self,
        school: SchoolId,
        user_id: i64,
        update: &dyn Fn(Option<String>) -> String,
    ) -> Result<String> {
        self.with(|db| schools::update_preferences(db, school, user_id, update, now_ms()))
    }

    /// See [`Store::audit`](crate::Store::audit).
    pub fn audit(&self, entry: &NewAudit) -> Result<i64> {
        self.with(|db| schools::audit(db, entry, now_ms()))
    }

    /// See [`Store::audit_list`](crate::Store::audit_list).
    pub fn audit_list(
        &self,
        school: SchoolId,
        limit: i64,
        before: Option<i64>,
        reader: Option<&AuditReader>,
    ) -> Result<Vec<AuditEntry>> {
        self.with(|db| schools::audit_list(db, school, limit, before, reader))
    }
}

/// The activity log (`crate::activity`), as [`Store`](crate::Store) has it.
impl PgStore {
    /// See [`Store::add_activity`](crate::Store::add_activity).
    pub fn add_activity(
        &self,
        school: SchoolId,
        device: i64,
        first_seq: Option<i64>,
        events: &[lectern_proto::ActivityEvent],
    ) -> Result<usize> {
        self.with(|db| activity::add(db, school, device, first_seq, events))
    }

    /// See [`Store::activity`](crate::Store::activity).
    pub fn activity(&self, school: SchoolId, filter: &ActivityFilter) -> Result<Vec<ActivityRow>> {
        self.with(|db| activity::list(db, school, filter))
    }
}

/// Violations, report definitions and school documents (`crate::safety`),
/// as [`Store`](crate::Store) has them.
impl PgStore {
    /// See [`Store::add_violation`](crate::Store::add_violation).
    pub fn add_violation(&self, school: SchoolId, v: &Violation) -> Result<i64> {
        self.with(|db| safety::add_violation(db, school, v))
    }

    /// See [`Store::set_violation_screenshots`](crate::Store::set_violation_screenshots).
    pub fn set_violation_screenshots(&self, school: SchoolId, id: i64, n: u32) -> Result<()> {
        self.with(|db| safety::set_screenshots(db, school, id, n))
    }

    /// See [`Store::violation`](crate::Store::violation).
    pub fn violation(&self, school: SchoolId, id: i64) -> Result<Option<Violation>> {
        self.with(|db| safety::violation(db, school, id))
    }

    /// See [`Store::violations`](crate::Store::violations).
    pub fn violations(&self, school: SchoolId, filter: &ViolationFilter) -> Result<Vec<Violation>> {
        self.with(|db| safety::violations(db, school, filter))
    }

    /// See [`Store::reports`](crate::Store::reports).
    pub fn reports(&self, school: SchoolId) -> Result<Vec<ReportDef>> {
        self.with(|db| safety::reports(db, school))
    }

    /// See [`Store::create_report`](crate::Store::create_report).
    pub fn create_report(&self, school: SchoolId, r: &ReportDef) -> Result<ReportDef> {
        self.with(|db| safety::create_report(db, school, r))
    }

    /// See [`Store::delete_report`](crate::Store::delete_report).
    pub fn delete_report(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| safety::delete_report(db, school, id))
    }

    /// See [`Store::report_ran`](crate::Store::report_ran).
    pub fn report_ran(&self, school: SchoolId, id: i64, at: i64) -> Result<()> {
        self.with(|db| safety::report_ran(db, school, id, at))
    }

    /// See [`Store::document`](crate::Store::document).
    pub fn document(&self, school: SchoolId, name: &str) -> Result<Option<String>> {
        self.with(|db| safety::document(db, school, name))
    }

    /// See [`Store::set_document`](crate::Store::set_document).
    pub fn set_document(&self, school: SchoolId, name: &str, body: &str) -> Result<()> {
        self.with(|db| safety::set_document(db, school, name, body))
    }
}

/// Live-view screenshots (`crate::screenshots`), as [`Store`](crate::Store)
/// has them.
impl PgStore {
    /// See [`Store::add_screenshot`](crate::Store::add_screenshot).
    pub fn add_screenshot(&self, school: SchoolId, s: &NewScreenshot) -> Result<ScreenshotInfo> {
        self.with(|db| screenshots::add(db, school, s))
    }

    /// See [`Store::screenshots`](crate::Store::screenshots).
    pub fn screenshots(&self, school: SchoolId, device: i64) -> Result<Vec<ScreenshotInfo>> {
        self.with(|db| screenshots::list(db, school, device))
    }

    /// See [`Store::screenshot`](crate::Store::screenshot).
    pub fn screenshot(
        &self,
        school: SchoolId,
        device: i64,
        id: i64,
    ) -> Result<Option<(ScreenshotInfo, Vec<u8>)>> {
        self.with(|db| screenshots::get(db, school, device, id))
    }
}

/// Raised hands, chat, inventory and power schedules (`crate::requests`,
/// `crate::invpower`), as [`Store`](crate::Store) has them.
impl PgStore {
    /// See [`Store::raise_hand`](crate::Store::raise_hand).
    pub fn raise_hand(&self, school: SchoolId, h: &NewHelpRequest) -> Result<Option<HelpRequest>> {
        self.with(|db| requests::raise(db, school, h))
    }

    /// See [`Store::close_hand`](crate::Store::close_hand).
    pub fn close_hand(&self, school: SchoolId, c: &HandClose) -> Result<Option<HelpRequest>> {
        self.with(|db| requests::close(db, school, c))
    }

    /// See [`Store::help_request`](crate::Store::help_request).
    pub fn help_request(&self, school: SchoolId, id: i64) -> Result<Option<HelpRequest>> {
        self.with(|db| requests::get(db, school, id))
    }

    /// See [`Store::open_help_requests`](crate::Store::open_help_requests).
    pub fn open_help_requests(&self, school: SchoolId) -> Result<Vec<HelpRequest>> {
        self.with(|db| requests::open(db, school))
    }

    /// See [`Store::add_chat`](crate::Store::add_chat).
    pub fn add_chat(&self, school: SchoolId, msgs: &[NewChat]) -> Result<Vec<ChatMessage>> {
        self.with(|db| requests::add_chat(db, school, msgs))
    }

    /// See [`Store::chat_history`](crate::Store::chat_history).
    pub fn chat_history(
        &self,
        school: SchoolId,
        device: i64,
        thread: &str,
        limit: u32,
    ) -> Result<Vec<ChatMessage>> {
        self.with(|db| requests::chat(db, school, device, thread, limit))
    }

    /// See [`Store::put_inventory`](crate::Store::put_inventory).
    pub fn put_inventory(&self, school: SchoolId, row: &InventoryRow) -> Result<()> {
        self.with(|db| invpower::put_inventory(db, school, row))
    }

    /// See [`Store::inventory_hash`](crate::Store::inventory_hash).
    pub fn inventory_hash(&self, school: SchoolId, device: i64) -> Result<Option<(String, i64)>> {
        self.with(|db| invpower::inventory_hash(db, school, device))
    }

    /// See [`Store::inventories`](crate::Store::inventories).
    pub fn inventories(&self, school: SchoolId) -> Result<Vec<InventoryRow>> {
        self.with(|db| invpower::inventories(db, school))
    }

    /// See [`Store::inventory`](crate::Store::inventory).
    pub fn inventory(&self, school: SchoolId, device: i64) -> Result<Option<InventoryRow>> {
        self.with(|db| invpower::inventory(db, school, device))
    }

    /// See [`Store::power_schedules`](crate::Store::power_schedules).
    pub fn power_schedules(&self, school: SchoolId) -> Result<Vec<PowerSchedule>> {
        self.with(|db| invpower::power_schedules(db, school))
    }

    /// See [`Store::add_power_schedule`](crate::Store::add_power_schedule).
    pub fn add_power_schedule(&self, school: SchoolId, s: &PowerSchedule) -> Result<PowerSchedule> {
        self.with(|db| invpower::add_power_schedule(db, school, s))
    }

    /// See [`Store::delete_power_schedule`](crate::Store::delete_power_schedule).
    pub fn delete_power_schedule(&self, school: SchoolId, id: i64) -> Result<bool> {
        self.with(|db| invpower::delete_power_schedule(db, school, id))
    }

    /// See [`Store::claim_power_schedule`](crate::Store::claim_power_schedule).
    pub fn claim_power_schedule(&self, school: SchoolId, id: i64, day: &str) -> Result<bool> {
        self.with(|db| invpower::claim_power_schedule(db, school, id, day))
    }
}

/// Report totals (`crate::report_totals`), as [`Store`](crate::Store) has
/// them.
impl PgStore {
    /// See [`Store::violation_totals`](crate::Store::violation_totals).
    pub fn violation_totals(
        &self,
        school: SchoolId,
        scope: &ReportScope,
    ) -> Result<Vec<ViolationTotal>> {
        self.with(|db| report_totals::violations(db, school, scope))
    }

    /// See [`Store::website_totals`](crate::Store::website_totals).
    pub fn website_totals(
        &self,
        school: SchoolId,
        scope: &ReportScope,
    ) -> Result<Vec<WebsiteTotal>> {
        self.with(|db| report_totals::websites(db, school, scope))
    }

    /// See [`Store::activity_totals`](crate::Store::activity_totals).
    pub fn activity_totals(
        &self,
        school: SchoolId,
        scope: &ReportScope,
    ) -> Result<Vec<ActivityTotal>> {
        self.with(|db| report_totals::activity(db, school, scope))
    }
}
