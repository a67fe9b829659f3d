use serde::{Deserialize, Serialize};

/// A school's id.
pub type SchoolId = i64;

/// A school.
#[derive(Debug, Clone, Serialize)]
pub struct School {
    /// Id.
    pub id: SchoolId,
    /// Display name.
    pub name: String,
}

/// What a console user may do. Finer access rights come with groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including enrollment and revocation.
    Admin,
    /// View and command devices.
    Teacher,
}

impl Role {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Teacher => "teacher",
        }
    }
    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "teacher" => Some(Role::Teacher),
            _ => None,
        }
    }
}

/// A console user.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// School.
    pub school_id: SchoolId,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
}

/// A live console session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub user: User,
    /// Token the console must echo in `X-CSRF-Token` on cookie-authenticated writes.
    pub csrf_token: String,
    /// Expiry, ms since epoch.
    pub expires_at: i64,
    /// Its user must set a new password before anything else (a password
    /// an administrator reset).
    pub must_change_password: bool,
}

/// An enrollment token's public record.
#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentToken {
    /// Id.
    pub id: i64,
    /// Admin's label.
    pub label: String,
    /// Enrollments left.
    pub uses_left: i64,
    /// Expiry, ms since epoch.
    pub expires_at: i64,
    /// Who made it.
    pub created_by: String,
    /// When, ms since epoch.
    pub created_at: i64,
}

/// Facts a device reports about itself.
#[derive(Debug, Clone, Default)]
pub struct NewDevice {
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Agent version.
    pub agent_version: String,
}

/// An enrolled device.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// Id.
    pub id: i64,
    /// School.
    pub school_id: SchoolId,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Agent version.
    pub agent_version: String,
    /// Last reported state, JSON.
    #[serde(skip)]
    pub state_json: String,
    /// Enrollment time, ms.
    pub enrolled_at: i64,
    /// Last connection, ms.
    pub last_seen: Option<i64>,
    /// Revocation time, ms.
    pub revoked_at: Option<i64>,
    /// A host name the device reported that differs from `hostname`, waiting
    /// for an administrator to accept it.
    pub reported_name: Option<String>,
}

/// Outcome of checking a device credential.
#[derive(Debug, Clone)]
pub enum DeviceAuth {
    /// Good credential.
    Ok(Device),
    /// No such device, or wrong secret (not distinguished, on purpose).
    Unknown,
    /// The device was revoked.
    Revoked,
}

/// A command target's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    /// Sent, not yet acknowledged.
    Pending,
    /// Acknowledged as done.
    Done,
    /// Acknowledged as failed, or lost.
    Failed,
    /// The device was offline when the command was sent.
    Offline,
}

impl TargetStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetStatus::Pending => "pending",
            TargetStatus::Done => "done",
            TargetStatus::Failed => "failed",
            TargetStatus::Offline => "offline",
        }
    }
    fn parse(s: &str) -> TargetStatus {
        match s {
            "done" => TargetStatus::Done,
            "failed" => TargetStatus::Failed,
            "offline" => TargetStatus::Offline,
            _ => TargetStatus::Pending,
        }
    }
    pub(crate) fn from_db(s: &str) -> TargetStatus {
        Self::parse(s)
    }
}

/// One device's outcome for a command.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// Device.
    pub device_id: i64,
    /// Status.
    pub status: TargetStatus,
    /// Reason for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Last change, ms since epoch.
    pub updated_at: i64,
}

/// A change to one target's outcome.
#[derive(Debug, Clone)]
pub struct TargetUpdate {
    /// Command.
    pub command_id: i64,
    /// Device.
    pub device_id: i64,
    /// New status.
    pub status: TargetStatus,
    /// Reason for a failure.
    pub reason: Option<String>,
    /// When, ms since epoch.
    pub at: i64,
}

/// A command and its outcomes.
#[derive(Debug, Clone, Serialize)]
pub struct CommandRecord {
    /// Id.
    pub id: i64,
    /// Who sent it.
    pub actor: String,
    /// The command, as sent.
    pub command: serde_json::Value,
    /// When, ms since epoch.
    pub created_at: i64,
    /// Per-device outcome.
    pub targets: Vec<Target>,
}

/// An audit entry to write.
#[derive(Debug, Clone)]
pub struct NewAudit {
    /// School.
    pub school_id: SchoolId,
    /// User name (or `system`, or the name tried in a failed login).
    pub actor: String,
    /// Client address.
    pub address: Option<String>,
    /// What was done, e.g. `login`, `command.lock`.
    pub action: String,
    /// Free-form detail.
    pub detail: String,
    /// Devices concerned.
    pub devices: Vec<i64>,
    /// Command, for command entries.
    pub command_id: Option<i64>,
    /// `ok`, `denied`, `failed`, …
    pub outcome: String,
}

/// Who reads the audit log, when not an administrator: they see entries
/// about devices they may view (every device the entry names), and entries
/// naming no device only when they are their own actions. Their own actions
/// are always theirs to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditReader {
    /// Their user name (the entries' actor).
    pub username: String,
    /// The devices they may view.
    pub devices: Vec<i64>,
}

/// A stored audit entry.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Id.
    pub id: i64,
    /// When, ms since epoch.
    pub at: i64,
    /// Who.
    pub actor: String,
    /// From where.
    pub address: Option<String>,
    /// What.
    pub action: String,
    /// Detail.
    pub detail: String,
    /// Devices concerned.
    pub devices: Vec<i64>,
    /// Command, for command entries.
    pub command_id: Option<i64>,
    /// Outcome when written.
    pub outcome: String,
}
