//! Lectern's persistence. The server talks to a [`Store`]; [`SqliteStore`] is the
//! embedded default (one SQLite file in WAL mode, migrations embedded and run on
//! open). Every row is scoped by a school id.
//!
//! ```
//! use lectern_store::{SqliteStore, Store, Role};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(&dir.path().join("lectern.db")).unwrap();
//! let school = store.create_school("Hillside").unwrap();
//! store.create_user(school, "admin", "correct horse", Role::Admin).unwrap();
//! assert!(store.verify_password(school, "admin", "correct horse").unwrap().is_some());
//! assert!(store.verify_password(school, "admin", "wrong").unwrap().is_none());
//! ```

/// [`Store`]'s sub-store accessors, the same on every engine: each engine's
/// store implements every sub-store itself.
macro_rules! sub_store_accessors {
    () => {
        fn files(&self) -> &dyn crate::files::FilesStore {
            self
        }

        fn auditset(&self) -> &dyn crate::auditset::AuditSetStore {
            self
        }

        fn accounts(&self) -> &dyn crate::accounts::AccountsStore {
            self
        }

        fn devadmin(&self) -> &dyn crate::devadmin::DevAdminStore {
            self
        }

        fn timetable(&self) -> &dyn crate::timetable::TimetableStore {
            self
        }

        fn roster(&self) -> &dyn crate::roster::RosterStore {
            self
        }

        fn directory_sync(&self) -> &dyn crate::directory::DirectoryStore {
            self
        }

        fn aup(&self) -> &dyn crate::aup::AupStore {
            self
        }

        fn kwpolicy(&self) -> &dyn crate::kwpolicy::KwPolicyStore {
            self
        }

        fn mail(&self) -> &dyn crate::mail::MailStore {
            self
        }

        fn dashboard(&self) -> &dyn crate::dashboard::DashboardStore {
            self
        }

        fn review(&self) -> &dyn crate::review::ReviewStore {
            self
        }

        fn retro(&self) -> &dyn crate::retro::RetroStore {
            self
        }

        fn school_codes(&self) -> &dyn crate::schoolcode::SchoolCodeStore {
            self
        }

        fn grants(&self) -> &dyn crate::grants::GrantStore {
            self
        }

        fn students(&self) -> &dyn crate::students::StudentStore {
            self
        }
    };
}

pub mod accounts;
mod activity;
pub mod auditset;
pub mod aup;
pub mod dashboard;
pub mod devadmin;
pub mod directory;
pub mod files;
mod fleet;
pub mod grants;
mod groups;
mod invpower;
pub mod kwpolicy;
pub mod mail;
mod maintenance;
mod people;
pub mod pg;
pub use pg::PgStore;
mod report_totals;
mod requests;
pub mod retro;
pub mod review;
pub mod roster;
mod safety;
pub mod school_restore;
pub mod schoolcode;
mod schools;
mod screenshots;
mod secrets;
pub mod students;
pub mod timetable;

use lectern_policy::access::AccessRule;
use lectern_policy::groups::Group;
mod sql;
mod sqlite;
mod types;

pub use activity::{ActivityFilter, ActivityRow};
pub use groups::{builtin_groups, GroupRecord, Lesson};
pub use invpower::{InventoryRow, PowerSchedule};
pub use maintenance::{schools_in, verify_database, Retained, SchoolExport};
pub use people::{Alias, AliasKind, Person};
pub use report_totals::{ActivityTotal, ReportScope, ViolationTotal, WebsiteTotal};
pub use requests::{
    chat_thread, ChatMessage, HandClose, HandOutcome, HelpRequest, NewChat, NewHelpRequest,
};
pub use safety::{ReportDef, ReportKind, Violation, ViolationFilter};
pub use screenshots::{
    NewScreenshot, ScreenshotInfo, SCREENSHOTS_PER_DEVICE, SCREENSHOT_BYTES_PER_SCHOOL,
};
pub use secrets::{
    generated_password, hash_secret, printable_secret, random_token, ENROLLMENT_TOKEN_PREFIX,
    PASSWORD_PREFIX,
};
pub use sqlite::SqliteStore;
pub use types::*;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// A unique name is already taken.
    #[error("{0} already exists")]
    Exists(String),
    /// Password hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Stored data could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// PostgreSQL failed (cluster mode).
    #[error("PostgreSQL: {}", pg_detail(.0))]
    Postgres(#[from] postgres::Error),
}

/// What PostgreSQL said, with its code (the client's own text is only "db
/// error" for every refusal).
fn pg_detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl StoreError {
    /// A transaction lost to a concurrent one (PostgreSQL's serializable
    /// isolation, or a deadlock it broke): running it again may succeed.
    pub(crate) fn retryable(&self) -> bool {
        use postgres::error::SqlState;
        matches!(self, StoreError::Postgres(e)
            if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                || e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED))
    }

    /// A row broke a constraint (a unique name taken, on PostgreSQL; any
    /// constraint, on SQLite, which says no more).
    pub(crate) fn taken(&self) -> bool {
        match self {
            StoreError::Db(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            StoreError::Postgres(e) => {
                e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}

/// Result alias for store calls.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything the server persists. Implementations must be safe to share between
/// threads; calls are synchronous, so async callers run them on a blocking thread.
pub trait Store: Send + Sync + 'static {
    /// Creates a school and returns its id.
    fn create_school(&self, name: &str) -> Result<SchoolId>;
    /// The first school (an on-premise server holds exactly one).
    fn first_school(&self) -> Result<Option<School>>;
    /// A school by id.
    fn school(&self, id: SchoolId) -> Result<Option<School>>;
    /// Every school, by id: what the housekeeping jobs go through.
    fn schools(&self) -> Result<Vec<School>>;
    /// The schools with an enabled local account of this user name, by id:
    /// how a sign-in that names no school finds its school on a server of
    /// several.
    fn schools_with_user(&self, username: &str) -> Result<Vec<SchoolId>>;

    /// Creates a console user with an Argon2-hashed password.
    fn create_user(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<i64>;
    /// Returns the user when the password is right, `None` otherwise (also for unknown users).
    fn verify_password(
        &self,
        school: SchoolId,
        username: &str,
        password: &str,
    ) -> Result<Option<User>>;
    /// Starts a console session; returns the bearer token (shown once) and the session.
    fn create_session(&self, user: &User, ttl_ms: i64) -> Result<(String, Session)>;
    /// Looks up a live session by its token.
    fn session(&self, token: &str) -> Result<Option<Session>>;
    /// Ends a session.
    fn delete_session(&self, token: &str) -> Result<()>;

    /// Creates an enrollment token usable `uses` times until `expires_at` (ms).
    fn create_enrollment_token(
        &self,
        school: SchoolId,
        label: &str,
        uses: i64,
        expires_at: i64,
        created_by: &str,
    ) -> Result<(String, EnrollmentToken)>;
    /// Lists enrollment tokens (without their secret values).
    fn list_enrollment_tokens(&self, school: SchoolId) -> Result<Vec<EnrollmentToken>>;
    /// Consumes one use of `token` and creates a device; `None` if the token is
    /// unknown, used up or expired.
    fn enroll_device(&self, token: &str, info: &NewDevice) -> Result<Option<(Device, String)>>;
    /// Checks a device credential.
    fn authenticate_device(&self, device_id: i64, secret: &str) -> Result<DeviceAuth>;
    /// Updates facts and state reported by a connected device. The host name
    /// it reports does not rename it: a name other than its own is recorded as
    /// `reported_name` (and cleared when it reports its own name again).
    fn touch_device(&self, device_id: i64, info: &NewDevice, state_json: &str) -> Result<()>;
    /// Records a connected device's state (who is logged in, what is
    /// locked) as it changes: what the other nodes of a cluster read it by.
    fn save_device_state(&self, device_id: i64, state_json: &str) -> Result<()>;
    /// Makes a device's reported name its name; returns (old, new), or `None`
    /// when no such device in this school or no different name was reported.
    fn accept_device_name(
        &self,
        school: SchoolId,
        device_id: i64,
    ) -> Result<Option<(String, String)>>;
    /// Lists a school's devices (revoked ones included, flagged).
    fn list_devices(&self, school: SchoolId) -> Result<Vec<Device>>;
    /// Revokes a device; false if no such device in this school.
    fn revoke_device(&self, school: SchoolId, device_id: i64) -> Result<bool>;

    /// Records a command and each target's initial status; returns its id.
    fn create_command(
        &self,
        school: SchoolId,
        actor: &str,
        body_json: &str,
        targets: &[(i64, TargetStatus)],
    ) -> Result<CommandRecord>;
    /// Applies many target outcomes in one transaction.
    fn update_targets(&self, updates: &[TargetUpdate]) -> Result<()>;
    /// A command with every target's outcome.
    fn command(&self, school: SchoolId, id: i64) -> Result<Option<CommandRecord>>;

    /// Appends an audit entry.
    fn audit(&self, entry: &NewAudit) -> Result<i64>;
    /// Newest-first audit entries with id below `before` (all when `None`),
    /// only those `reader` may read when given (see [`AuditReader`]).
    fn audit_list(
        &self,
        school: SchoolId,
        limit: i64,
        before: Option<i64>,
        reader: Option<&AuditReader>,
    ) -> Result<Vec<AuditEntry>>;

    /// Console users.
    fn list_users(&self, school: SchoolId) -> Result<Vec<User>>;

    /// Every group of the school, built-in ones included.
    fn list_groups(&self, school: SchoolId) -> Result<Vec<GroupRecord>>;
    /// One group.
    fn get_group(&self, school: SchoolId, id: i64) -> Result<Option<GroupRecord>>;
    /// Creates a group (its `id` is ignored).
    fn create_group(&self, school: SchoolId, group: &Group) -> Result<GroupRecord>;
    /// Replaces a group's name, priority, members and settings (kind is fixed).
    fn update_group(&self, school: SchoolId, group: &Group) -> Result<Option<GroupRecord>>;
    /// Deletes a group that is not built in.
    fn delete_group(&self, school: SchoolId, id: i64) -> Result<bool>;

    /// Every user's directory groups.
    fn directory(&self, school: SchoolId) -> Result<Vec<(String, Vec<String>)>>;
    /// Replaces a user's directory groups.
    fn set_directory_groups(
        &self,
        school: SchoolId,
        username: &str,
        groups: &[String],
    ) -> Result<()>;

    /// People with their aliases, by display name.
    fn list_people(&self, school: SchoolId) -> Result<Vec<Person>>;
    /// One person.
    fn get_person(&self, school: SchoolId, id: i64) -> Result<Option<Person>>;
    /// Creates (`id == 0`) or replaces a person and their aliases; a name another
    /// person holds is [`StoreError::Exists`]. `None`: no such person.
    fn save_person(&self, school: SchoolId, person: &Person) -> Result<Option<Person>>;
    /// Deletes a person and their aliases.
    fn delete_person(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// A console user's stored preferences (JSON the server validated), if any.
    fn preferences(&self, school: SchoolId, user_id: i64) -> Result<Option<String>>;
    /// Replaces a console user's preferences with what `update` makes of the
    /// stored ones, in one step (two concurrent updates never lose either's
    /// change); returns what was stored.
    fn update_preferences(
        &self,
        school: SchoolId,
        user_id: i64,
        update: &dyn Fn(Option<String>) -> String,
    ) -> Result<String>;
    /// Access rules.
    fn access_rules(&self, school: SchoolId) -> Result<Vec<AccessRule>>;
    /// Creates (id 0) or replaces an access rule; `None` if the id is unknown.
    fn save_access_rule(&self, school: SchoolId, rule: &AccessRule) -> Result<Option<AccessRule>>;
    /// Deletes an access rule.
    fn delete_access_rule(&self, school: SchoolId, id: i64) -> Result<bool>;

    /// Records a lesson (its `id` is ignored).
    fn create_lesson(&self, school: SchoolId, lesson: &Lesson) -> Result<Lesson>;
    /// Lessons running or ended since `since` (ms), newest first.
    fn lessons_since(&self, school: SchoolId, since: i64) -> Result<Vec<Lesson>>;
    /// Ends a running lesson at `at`; returns it (unchanged if it had ended).
    fn end_lesson(&self, school: SchoolId, id: i64, at: i64) -> Result<Option<Lesson>>;

    /// Increments and returns a named counter (e.g. the policy version).
    fn bump_counter(&self, school: SchoolId, name: &str) -> Result<u64>;

    /// Stores a device's activity events in one transaction; with `first_seq`
    /// they are numbered from it and ones already stored are skipped. Returns
    /// how many were new.
    fn add_activity(
        &self,
        school: SchoolId,
        device: i64,
        first_seq: Option<i64>,
        events: &[lectern_proto::ActivityEvent],
    ) -> Result<usize>;
    /// Activity events matching `filter`, newest first.
    fn activity(&self, school: SchoolId, filter: &ActivityFilter) -> Result<Vec<ActivityRow>>;

    /// Stores a violation; returns its id.
    fn add_violation(&self, school: SchoolId, v: &Violation) -> Result<i64>;
    /// Records how many screenshots a violation has.
    fn set_violation_screenshots(&self, school: SchoolId, id: i64, n: u32) -> Result<()>;
    /// One violation.
    fn violation(&self, school: SchoolId, id: i64) -> Result<Option<Violation>>;

    /// Keeps a live-view screenshot, pruning the device's and the school's
    /// oldest beyond [`SCREENSHOTS_PER_DEVICE`] and [`SCREENSHOT_BYTES_PER_SCHOOL`].
    fn add_screenshot(&self, school: SchoolId, s: &NewScreenshot) -> Result<ScreenshotInfo>;
    /// A device's screenshots, newest first.
    fn screenshots(&self, school: SchoolId, device: i64) -> Result<Vec<ScreenshotInfo>>;
    /// One of a device's screenshots with its JPEG.
    fn screenshot(
        &self,
        school: SchoolId,
        device: i64,
        id: i64,
    ) -> Result<Option<(ScreenshotInfo, Vec<u8>)>>;
    /// Violations matching `filter`, newest first.
    fn violations(&self, school: SchoolId, filter: &ViolationFilter) -> Result<Vec<Violation>>;

    /// Scheduled reports.
    fn reports(&self, school: SchoolId) -> Result<Vec<ReportDef>>;
    /// Creates a report definition.
    fn create_report(&self, school: SchoolId, r: &ReportDef) -> Result<ReportDef>;
    /// Deletes a report definition.
    fn delete_report(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// Records a report's run time.
    fn report_ran(&self, school: SchoolId, id: i64, at: i64) -> Result<()>;
    /// Violations per (user, category) in a report's scope, counted in SQL
    /// over the whole period.
    fn violation_totals(
        &self,
        school: SchoolId,
        scope: &ReportScope,
    ) -> Result<Vec<ViolationTotal>>;
    /// Web visits per (website host, user) in a report's scope, over the whole
    /// period.
    fn website_totals(&self, school: SchoolId, scope: &ReportScope) -> Result<Vec<WebsiteTotal>>;
    /// Activity events per (device, kind) in a report's scope, over the whole
    /// period.
    fn activity_totals(&self, school: SchoolId, scope: &ReportScope) -> Result<Vec<ActivityTotal>>;

    /// A named school document (e.g. `keyword_library`).
    fn document(&self, school: SchoolId, name: &str) -> Result<Option<String>>;
    /// Replaces a named school document.
    fn set_document(&self, school: SchoolId, name: &str, body: &str) -> Result<()>;

    /// Writes a consistent snapshot of the database to `dest`, which must not
    /// exist or must be empty (so a caller may create it first with the mode it wants).
    fn backup_to(&self, dest: &std::path::Path) -> Result<()>;

    /// Writes a copy of the database holding only `school`'s rows to `dest`
    /// (which must not exist or must be empty): what one school of a
    /// shared server takes away as its own backup.
    fn export_school(&self, school: SchoolId, dest: &std::path::Path) -> Result<SchoolExport>;
    /// Deletes rows older than `cutoff` (ms); for violations, also returns their ids.
    fn purge_before(
        &self,
        school: SchoolId,
        what: Retained,
        cutoff: i64,
    ) -> Result<(usize, Vec<i64>)>;

    /// Stores a raised hand; `None` if the device already has one open.
    fn raise_hand(&self, school: SchoolId, h: &NewHelpRequest) -> Result<Option<HelpRequest>>;
    /// Closes a device's open help request; `None` if none was open.
    fn close_hand(&self, school: SchoolId, c: &HandClose) -> Result<Option<HelpRequest>>;
    /// One help request.
    fn help_request(&self, school: SchoolId, id: i64) -> Result<Option<HelpRequest>>;
    /// Open help requests, oldest first.
    fn open_help_requests(&self, school: SchoolId) -> Result<Vec<HelpRequest>>;
    /// Stores chat messages (one transaction); returns them with ids.
    fn add_chat(&self, school: SchoolId, msgs: &[NewChat]) -> Result<Vec<ChatMessage>>;
    /// The last `limit` messages of a device's chat thread, oldest first.
    fn chat_history(
        &self,
        school: SchoolId,
        device: i64,
        thread: &str,
        limit: u32,
    ) -> Result<Vec<ChatMessage>>;
    /// Stores (replaces) a device's inventory report.
    fn put_inventory(&self, school: SchoolId, row: &InventoryRow) -> Result<()>;
    /// The hash of a device's stored report and when it arrived.
    fn inventory_hash(&self, school: SchoolId, device: i64) -> Result<Option<(String, i64)>>;
    /// Every stored report of the school, by device id.
    fn inventories(&self, school: SchoolId) -> Result<Vec<InventoryRow>>;
    /// One device's stored report.
    fn inventory(&self, school: SchoolId, device: i64) -> Result<Option<InventoryRow>>;
    /// The school's power schedules, by time of day.
    fn power_schedules(&self, school: SchoolId) -> Result<Vec<PowerSchedule>>;
    /// Adds a power schedule.
    fn add_power_schedule(&self, school: SchoolId, s: &PowerSchedule) -> Result<PowerSchedule>;
    /// Deletes a power schedule; false if there was none.
    fn delete_power_schedule(&self, school: SchoolId, id: i64) -> Result<bool>;
    /// Marks a schedule run on `day`; false if it already ran then.
    fn claim_power_schedule(&self, school: SchoolId, id: i64, day: &str) -> Result<bool>;
    /// Sent files, collections and exams.
    fn files(&self) -> &dyn files::FilesStore;
    /// Per-school settings overrides and the filtered audit search.
    fn auditset(&self) -> &dyn auditset::AuditSetStore;
    /// Console accounts: disable, delete, roles, passwords.
    fn accounts(&self) -> &dyn accounts::AccountsStore;
    /// Enrollment tokens with rooms, device rename and deletion, and the
    /// public availability switch.
    fn devadmin(&self) -> &dyn devadmin::DevAdminStore;
    /// Periods, room bookings and scheduled lessons.
    fn timetable(&self) -> &dyn timetable::TimetableStore;
    /// Rostered classes and their imports.
    fn roster(&self) -> &dyn roster::RosterStore;
    /// LDAP / Active Directory configuration, accounts and sync runs.
    fn directory_sync(&self) -> &dyn directory::DirectoryStore;
    /// Acceptable use policies and acceptances.
    fn aup(&self) -> &dyn aup::AupStore;
    /// Keyword libraries, their assignment to groups, violations' libraries.
    fn kwpolicy(&self) -> &dyn kwpolicy::KwPolicyStore;
    /// Safeguarding mail: SMTP settings, alert rules, digests.
    fn mail(&self) -> &dyn mail::MailStore;
    /// The safeguarding dashboard's figures.
    fn dashboard(&self) -> &dyn dashboard::DashboardStore;
    /// The review workflow of violations: status, assignee, notes, history.
    fn review(&self) -> &dyn review::ReviewStore;
    /// Retrospective keyword scans and the violations they find.
    fn retro(&self) -> &dyn retro::RetroStore;
    /// Each school's code for registering devices.
    fn school_codes(&self) -> &dyn schoolcode::SchoolCodeStore;
    /// The schools a user may act in besides their own (trust administrators).
    fn grants(&self) -> &dyn grants::GrantStore;
    /// Students' picture and text passwords for shared devices.
    fn students(&self) -> &dyn students::StudentStore;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
