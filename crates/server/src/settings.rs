//! Per-school settings (issue 14): the values a school changes on its
//! settings page rather than in `server.toml`: retention, what each keyword
//! severity does, thumbnail size and rate, the nightly backup, login limits.
//!
//! `server.toml` (or the built-in default) gives each setting's server value;
//! a school's override (store table `school_settings`) replaces it for that
//! school only, and "reset" removes the override. The values in force are
//! cached per school and applied at once where they live in memory (the
//! hub's thumbnail request, the login limiter); retention, backups and
//! keyword actions read the cache each time they run.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use lectern_store::auditset::SettingRow;
use lectern_store::SchoolId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{KeywordAction, ServerConfig};
use crate::limiter::{Backoff, LoginPolicy};
use crate::state::Shared;

/// The values in force for one school.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effective {
    /// Days to keep activity, chat and closed help requests (0: for ever).
    pub activity_days: u32,
    /// Days to keep violations and their screenshots (0: for ever).
    pub violation_days: u32,
    /// Days to keep the audit log (0: for ever).
    pub audit_days: u32,
    /// What a match of severity 1 to 5 does.
    pub keyword_actions: [KeywordAction; 5],
    /// Thumbnail width asked of devices, pixels.
    pub thumbnail_width: u32,
    /// Milliseconds between thumbnails.
    pub thumbnail_interval_ms: u32,
    /// Local time of the nightly backup, `HH:MM`; empty: none.
    pub backup_time: String,
    /// Nightly backups kept.
    pub backup_keep: usize,
    /// Failed logins of one name from one address before any wait.
    pub login_free_attempts: u32,
    /// Minutes after a name's last failure before its failures are forgotten.
    pub login_window_mins: u32,
    /// The longest wait after failed logins of one name from one address
    /// (the lockout), seconds.
    pub login_lockout_secs: u32,
    /// The share of one core a retrospective keyword scan may use, percent.
    pub retro_cpu_percent: u32,
    /// Days of history rescanned at once when terms are added or changed;
    /// 0 only offers the rescan on the Keywords page.
    pub retro_auto_days: u32,
}

impl Effective {
    /// The login limiter's settings: the school's values for one name from
    /// one address and the window; the wider tiers (a name from anywhere, an
    /// address) keep the built-in values, never shorter than the school's.
    pub fn login_policy(&self) -> LoginPolicy {
        let d = LoginPolicy::default();
        let lockout = Duration::from_secs(self.login_lockout_secs.into());
        LoginPolicy {
            pair: Backoff {
                free: self.login_free_attempts,
                base: d.pair.base,
                max: lockout,
            },
            user: Backoff {
                free: d.user.free.max(self.login_free_attempts),
                max: d.user.max.max(lockout),
                ..d.user
            },
            address: d.address,
            forget_after: Duration::from_secs(u64::from(self.login_window_mins) * 60),
        }
    }
}

/// How a setting's value is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// A whole number between `min` and `max`.
    Number {
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// `HH:MM`, or empty.
    Time,
    /// Five of `log`, `screenshot`, `alert`, `lock`.
    Actions,
}

/// One setting a school may change.
#[derive(Debug, Serialize)]
pub struct Def {
    /// Key (the field of [`Effective`]).
    pub key: &'static str,
    /// Its label on the page.
    pub label: &'static str,
    /// What it does, on the page.
    pub help: &'static str,
    /// Its check.
    #[serde(flatten)]
    pub kind: Kind,
}

const fn num(min: u32, max: u32) -> Kind {
    Kind::Number { min, max }
}

/// Every setting, in the page's order.
pub const DEFS: &[Def] = &[
    Def { key: "activity_days", label: "Keep activity, chat and help requests (days)", help: "0 keeps them for ever.", kind: num(0, 3650) },
    Def { key: "violation_days", label: "Keep violations and their screenshots (days)", help: "0 keeps them for ever.", kind: num(0, 3650) },
    Def { key: "audit_days", label: "Keep the audit log (days)", help: "0 keeps it for ever.", kind: num(0, 3650) },
    Def { key: "keyword_actions", label: "What each keyword severity does", help: "Log records the match; screenshot adds evidence; alert also tells consoles at once; lock also locks the computer.", kind: Kind::Actions },
    Def { key: "thumbnail_width", label: "Thumbnail width (pixels)", help: "Width of the pictures in the classroom grid.", kind: num(80, 1920) },
    Def { key: "thumbnail_interval_ms", label: "Time between thumbnails (milliseconds)", help: "Lower is livelier and uses more network.", kind: num(250, 60_000) },
    Def { key: "backup_time", label: "Nightly backup time", help: "Local time, like 00:05; empty: no nightly backups.", kind: Kind::Time },
    Def { key: "backup_keep", label: "Nightly backups kept", help: "Older ones are deleted.", kind: num(1, 365) },
    Def { key: "login_free_attempts", label: "Failed sign-ins before a wait", help: "Per user name and address; each further failure doubles the wait.", kind: num(1, 20) },
    Def { key: "login_window_mins", label: "Forget failed sign-ins after (minutes)", help: "Counted from the last failure.", kind: num(1, 1440) },
    Def { key: "login_lockout_secs", label: "Longest wait after failed sign-ins (seconds)", help: "The lockout a guesser reaches.", kind: num(1, 3600) },
    Def { key: "retro_cpu_percent", label: "Keyword rescans: most CPU (percent of one core)", help: "A rescan of stored activity pauses between chunks to stay within this share.", kind: num(RETRO_CPU_MIN, RETRO_CPU_MAX) },
    Def { key: "retro_auto_days", label: "Rescan history when terms change (days)", help: "New or changed terms are looked for in this many days of stored activity at once; 0 only offers a rescan.", kind: num(0, 3650) },
];

/// The smallest CPU share a school may give rescans, percent.
pub const RETRO_CPU_MIN: u32 = 5;
/// The largest, percent (one whole core).
pub const RETRO_CPU_MAX: u32 = 100;
/// The built-in CPU share of rescans, percent.
pub const RETRO_CPU_DEFAULT: u32 = 25;

/// Where a setting's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// The built-in default.
    Default,
    /// `server.toml`.
    ServerToml,
    /// Set for this school on the settings page.
    School {
        /// Who set it.
        set_by: String,
        /// When (ms since epoch).
        set_at: i64,
    },
}

/// A setting as the page shows it.
#[derive(Debug, Serialize)]
pub struct Shown {
    /// Its definition.
    #[serde(flatten)]
    pub def: &'static Def,
    /// The value in force.
    pub value: Value,
    /// The value "reset" goes back to.
    pub server_value: Value,
    /// Where `value` comes from.
    #[serde(flatten)]
    pub source: Source,
}

/// The server's values (`server.toml` or defaults) as a JSON object.
fn server_values(c: &ServerConfig) -> Map<String, Value> {
    let login = LoginPolicy::default();
    let v = serde_json::json!({
        "activity_days": c.activity_days,
        "violation_days": c.violation_days,
        "audit_days": c.audit_days,
        "keyword_actions": c.keyword_actions,
        "thumbnail_width": c.thumbnail_width,
        "thumbnail_interval_ms": c.thumbnail_interval_ms,
        "backup_time": c.backup_time,
        "backup_keep": c.backup_keep,
        "login_free_attempts": login.pair.free,
        "login_window_mins": login.forget_after.as_secs() / 60,
        "login_lockout_secs": login.pair.max.as_secs(),
        "retro_cpu_percent": RETRO_CPU_DEFAULT,
        "retro_auto_days": 0,
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Checks one value against its setting; the error says what is allowed.
pub fn check(def: &Def, v: &Value) -> Result<(), String> {
    match def.kind {
        Kind::Number { min, max } => match v.as_u64() {
            Some(n) if (u64::from(min)..=u64::from(max)).contains(&n) => Ok(()),
            _ => Err(format!("must be a whole number from {min} to {max}")),
        },
        Kind::Time => match v.as_str() {
            Some("") => Ok(()),
            Some(t) if chrono::NaiveTime::parse_from_str(t, "%H:%M").is_ok() && t.len() == 5 => {
                Ok(())
            }
            _ => Err("must be a time like 00:05, or empty for no nightly backups".into()),
        },
        Kind::Actions => serde_json::from_value::<[KeywordAction; 5]>(v.clone())
            .map(drop)
            .map_err(|_| {
                "must be five actions (severity 1 to 5), each log, screenshot, alert or lock".into()
            }),
    }
}

/// The definition of `key`.
pub fn def(key: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.key == key)
}

/// The values in force from the server's values and a school's stored
/// overrides. A stored value that no longer passes its check (an older
/// build's, a hand-edited row) is ignored and the server's value applies.
pub fn effective(c: &ServerConfig, rows: &[SettingRow]) -> Effective {
    let mut values = server_values(c);
    for r in rows {
        let Some(d) = def(&r.key) else { continue };
        match serde_json::from_str::<Value>(&r.value) {
            Ok(v) if check(d, &v).is_ok() => {
                values.insert(r.key.clone(), v);
            }
            _ => {
                tracing::warn!(key = %r.key, "ignoring a stored school setting that fails its check")
            }
        }
    }
    serde_json::from_value(Value::Object(values)).unwrap_or_else(|e| {
        tracing::error!("school settings do not make a whole: {e}");
        from_config(c)
    })
}

/// The server's values alone.
pub fn from_config(c: &ServerConfig) -> Effective {
    let login = LoginPolicy::default();
    Effective {
        activity_days: c.activity_days,
        violation_days: c.violation_days,
        audit_days: c.audit_days,
        keyword_actions: c.keyword_actions,
        thumbnail_width: c.thumbnail_width,
        thumbnail_interval_ms: c.thumbnail_interval_ms,
        backup_time: c.backup_time.clone(),
        backup_keep: c.backup_keep,
        login_free_attempts: login.pair.free,
        login_window_mins: (login.forget_after.as_secs() / 60) as u32,
        login_lockout_secs: login.pair.max.as_secs() as u32,
        retro_cpu_percent: RETRO_CPU_DEFAULT,
        retro_auto_days: 0,
    }
}

/// Every setting with its value in force and where it comes from.
pub fn shown(c: &ServerConfig, rows: &[SettingRow]) -> Vec<Shown> {
    let server = server_values(c);
    let defaults = server_values(&ServerConfig::default());
    let now = serde_json::to_value(effective(c, rows)).unwrap_or_default();
    DEFS.iter()
        .map(|d| {
            let server_value = server.get(d.key).cloned().unwrap_or_default();
            let stored = rows.iter().find(|r| r.key == d.key).filter(|r| {
                serde_json::from_str::<Value>(&r.value).is_ok_and(|v| check(d, &v).is_ok())
            });
            let source = match stored {
                Some(r) => Source::School {
                    set_by: r.set_by.clone(),
                    set_at: r.set_at,
                },
                None if defaults.get(d.key) != Some(&server_value) => Source::ServerToml,
                None => Source::Default,
            };
            Shown {
                def: d,
                value: now.get(d.key).cloned().unwrap_or_default(),
                server_value,
                source,
            }
        })
        .collect()
}

/// The values in force per school, cached; see [`reload`].
#[derive(Default)]
pub struct SchoolSettings {
    cache: RwLock<HashMap<SchoolId, Arc<Effective>>>,
}

impl SchoolSettings {
    /// The values in force for `school` (the server's until [`reload`] ran).
    pub fn get(&self, st: &crate::state::AppState, school: SchoolId) -> Arc<Effective> {
        let cached = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&school)
            .cloned();
        cached.unwrap_or_else(|| Arc::new(from_config(&st.config)))
    }

    fn put(&self, school: SchoolId, e: Effective) {
        self.cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(school, Arc::new(e));
    }
}

/// Reads `school`'s overrides, caches the values in force and applies those
/// kept in memory (the thumbnails asked of its devices, its login limits).
pub async fn reload(st: &Shared, school: SchoolId) -> Result<Arc<Effective>, crate::api::ApiError> {
    let rows = st.db(move |s| s.auditset().school_settings(school)).await?;
    let e = effective(&st.config, &rows);
    st.hub
        .set_thumbnails(school, e.thumbnail_width, e.thumbnail_interval_ms);
    st.limiter.set_policy(school, e.login_policy());
    st.student_limiter.set_policy(school, e.login_policy());
    st.settings.put(school, e);
    Ok(st.settings.get(st, school))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, value: &str) -> SettingRow {
        SettingRow {
            key: key.into(),
            value: value.into(),
            set_by: "ann".into(),
            set_at: 7,
        }
    }

    #[test]
    fn every_setting_has_a_server_value_and_defaults_pass_their_checks() {
        let c = ServerConfig::default();
        let server = server_values(&c);
        for d in DEFS {
            let v = server
                .get(d.key)
                .unwrap_or_else(|| panic!("{} has no server value", d.key));
            assert_eq!(check(d, v), Ok(()), "{}", d.key);
        }
        assert_eq!(server.len(), DEFS.len());
        assert_eq!(effective(&c, &[]), from_config(&c));
        assert_eq!(
            from_config(&c).login_policy().pair.free,
            LoginPolicy::default().pair.free
        );
    }

    #[test]
    fn overrides_apply_and_bad_stored_values_are_ignored() {
        let c = ServerConfig {
            audit_days: 7,
            ..Default::default()
        };
        let rows = [
            row("activity_days", "5"),
            row("backup_time", "\"25:00\""),
            row("unknown", "1"),
        ];
        let e = effective(&c, &rows);
        assert_eq!((e.activity_days, e.audit_days), (5, 7));
        assert_eq!(e.backup_time, c.backup_time);
        let s = shown(&c, &rows);
        let by = |k: &str| s.iter().find(|x| x.def.key == k).unwrap();
        assert!(matches!(by("activity_days").source, Source::School { .. }));
        assert_eq!(by("audit_days").source, Source::ServerToml);
        assert_eq!(by("backup_time").source, Source::Default);
        assert_eq!(by("audit_days").server_value, Value::from(7));
    }

    #[test]
    fn checks_name_what_is_allowed() {
        let d = def("backup_keep").unwrap();
        assert!(check(d, &Value::from(0))
            .unwrap_err()
            .contains("from 1 to 365"));
        assert!(check(d, &Value::from("3")).is_err());
        assert!(check(d, &Value::from(3.5)).is_err());
        let t = def("backup_time").unwrap();
        assert!(check(t, &Value::from("7:00")).is_err());
        assert!(check(t, &Value::from("07:00")).is_ok());
        let a = def("keyword_actions").unwrap();
        assert!(check(a, &serde_json::json!(["log", "log", "log", "log"])).is_err());
        assert!(check(a, &serde_json::json!(["log", "log", "log", "log", "nuke"])).is_err());
        assert!(check(a, &serde_json::json!(["lock", "log", "log", "log", "log"])).is_ok());
    }
}
