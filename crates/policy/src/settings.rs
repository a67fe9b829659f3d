//! The settings catalogue: every setting a group can carry, its type, default
//! and meaning, and validation of values coming from admins.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// A setting's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingKey {
    /// Block all web access.
    InternetBlocked,
    /// `off`, `allow_list` or `block_list`.
    WebFilterMode,
    /// Domain patterns allowed in allow-list mode.
    AllowList,
    /// Domain patterns blocked in block-list mode.
    BlockList,
    /// Keep the screen locked.
    ScreenLocked,
    /// Disable printing.
    PrintingDisabled,
    /// Disable USB drives and other removable media.
    RemovableMediaDisabled,
    /// Mute sound output.
    SoundMuted,
    /// What happens when a teacher opens a live view.
    RemoteView,
    /// Whether thumbnails may be taken.
    ThumbnailsAllowed,
    /// Whether activity is logged.
    ActivityLogging,
    /// Whether keyword policies apply.
    KeywordPolicies,
    /// A browser that cannot tell who is using it shows the school's sign-in
    /// request instead of browsing.
    RequireSignIn,
    /// A browser that cannot tell who is using it offers the student sign-in
    /// (user name and picture or text password) and waits for it.
    StudentSignIn,
    /// A device registered with several schools lets the student switch.
    SchoolSwitch,
    /// `off`, `allow_list` or `block_list` for applications.
    AppMode,
    /// Applications that may run in allow-list mode.
    AppAllowList,
    /// Applications closed in block-list mode.
    AppBlockList,
}

/// A setting's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `true` / `false`.
    Bool,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// A list of domain patterns (`*` wildcards).
    Domains,
    /// A list of application names (see [`check_app_name`]).
    Apps,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Name.
    pub key: SettingKey,
    /// What the console shows instead of the key.
    pub label: &'static str,
    /// Value type.
    pub kind: Kind,
    /// What it does, for admins.
    pub description: &'static str,
}

/// Every setting, in display order.
pub const CATALOGUE: &[Spec] = &[
    Spec { key: SettingKey::InternetBlocked, label: "Internet blocked", kind: Kind::Bool, description: "Block all web access except the Lectern server." },
    Spec { key: SettingKey::WebFilterMode, label: "Web filter", kind: Kind::Enum(&["off", "allow_list", "block_list"]), description: "Web filter: off, only the allow list, or everything but the block list." },
    Spec { key: SettingKey::AllowList, label: "Allowed sites", kind: Kind::Domains, description: "Domain patterns reachable in allow-list mode, e.g. *.bbc.co.uk." },
    Spec { key: SettingKey::BlockList, label: "Blocked sites", kind: Kind::Domains, description: "Domain patterns blocked in block-list mode, e.g. *.games.example." },
    Spec { key: SettingKey::ScreenLocked, label: "Screen locked", kind: Kind::Bool, description: "Keep the screen locked." },
    Spec { key: SettingKey::PrintingDisabled, label: "Printing disabled", kind: Kind::Bool, description: "Disable printing." },
    Spec { key: SettingKey::RemovableMediaDisabled, label: "Removable media disabled", kind: Kind::Bool, description: "Disable USB drives and other removable media." },
    Spec { key: SettingKey::SoundMuted, label: "Sound muted", kind: Kind::Bool, description: "Mute sound output." },
    Spec { key: SettingKey::RemoteView, label: "Live view", kind: Kind::Enum(&["allow", "deny", "ask_then_allow", "ask_then_deny"]), description: "When a teacher opens a live view: allow, deny, or ask the student and allow/deny after 10 s without an answer." },
    Spec { key: SettingKey::ThumbnailsAllowed, label: "Screen thumbnails", kind: Kind::Bool, description: "Allow screen thumbnails in the console." },
    Spec { key: SettingKey::ActivityLogging, label: "Activity logging", kind: Kind::Bool, description: "Log applications and websites used." },
    Spec { key: SettingKey::KeywordPolicies, label: "Keyword policies", kind: Kind::Bool, description: "Apply keyword detection policies." },
    Spec { key: SettingKey::RequireSignIn, label: "Sign-in required", kind: Kind::Bool, description: "Browsers (the extension) that cannot identify the signed-in user show the school's sign-in request instead of browsing." },
    Spec { key: SettingKey::StudentSignIn, label: "Student sign-in", kind: Kind::Bool, description: "Browsers (the extension) that cannot identify their user ask the student to sign in with their user name and picture or text password (set on the People page) before browsing." },
    Spec { key: SettingKey::SchoolSwitch, label: "Students may switch school", kind: Kind::Bool, description: "A computer or Chromebook registered with several schools lets the student switch to another of them (on the sign-in screen or the extension's menu). Off keeps the device with this school." },
    Spec { key: SettingKey::AppMode, label: "Applications", kind: Kind::Enum(&["off", "allow_list", "block_list"]), description: "Applications: off, only the allowed applications, or all but the blocked ones." },
    Spec { key: SettingKey::AppAllowList, label: "Allowed applications", kind: Kind::Apps, description: "Applications that may run when only the allowed ones may: program names (firefox) or window classes, one a line." },
    Spec { key: SettingKey::AppBlockList, label: "Blocked applications", kind: Kind::Apps, description: "Applications closed when they open: program names (steam) or window classes, one a line." },
];

impl SettingKey {
    /// The catalogue entry.
    pub fn spec(self) -> &'static Spec {
        CATALOGUE
            .iter()
            .find(|s| s.key == self)
            .expect("every key is in the catalogue")
    }

    /// The name used in JSON.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<SettingKey> {
        serde_json::from_value(Value::String(name.to_string())).ok()
    }

    /// Value when no group sets it: permissive, except that activity logging,
    /// keyword policies and thumbnails are on, as schools expect.
    pub fn default_value(self) -> Value {
        match self.spec().kind {
            Kind::Bool => json!(matches!(
                self,
                SettingKey::ThumbnailsAllowed
                    | SettingKey::ActivityLogging
                    | SettingKey::KeywordPolicies
            )),
            Kind::Enum(values) => json!(values[0]),
            Kind::Domains | Kind::Apps => json!([]),
        }
    }
}

/// Settings a group sets; keys it leaves out are "not set".
pub type SettingsMap = BTreeMap<SettingKey, Value>;

/// Why settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Not in the catalogue.
    #[error("unknown setting {0:?}")]
    Unknown(String),
    /// Wrong type or value.
    #[error("setting {key:?} {problem}")]
    Invalid {
        /// Which setting.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// Not a JSON object.
    #[error("settings must be a JSON object")]
    NotAnObject,
}

/// Most patterns in one list.
pub const MAX_DOMAINS: usize = 5000;

/// Checks a domain pattern: letters, digits, `-`, `.` and `*`; returns it lower-cased.
pub fn check_domain_pattern(p: &str) -> Result<String, String> {
    let p = p.trim().trim_end_matches('.').to_lowercase();
    if p.is_empty() || p.len() > 253 {
        return Err("patterns must be 1 to 253 characters".into());
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '*')))
    {
        return Err(format!(
            "pattern {p:?} has the character {c:?}; use a domain like *.example.org"
        ));
    }
    if p.contains("..") {
        return Err(format!("pattern {p:?} has an empty label"));
    }
    Ok(p)
}

/// Checks a list of domain patterns, each entry whole: an entry with a space
/// (`bad pattern!`) is one bad entry, never split into two. The error names
/// the entry by its line (1-based), as the console's list editor shows them.
pub fn check_domain_list<S: AsRef<str>>(list: &[S]) -> Result<Vec<String>, String> {
    list.iter()
        .enumerate()
        .map(|(i, p)| check_domain_pattern(p.as_ref()).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Most names in one application list.
pub const MAX_APPS: usize = 200;
/// Longest application name, in characters.
pub const MAX_APP_NAME: usize = 64;

/// Checks an application name (an executable's base name or a window's
/// WM_CLASS): 1 to 64 characters, no path separators, spaces or control
/// characters; returns it lower-cased, as matching ignores case.
pub fn check_app_name(name: &str) -> Result<String, String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_APP_NAME {
        return Err(format!("names must be 1 to {MAX_APP_NAME} characters"));
    }
    if let Some(c) = n
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || matches!(c, '/' | '\\'))
    {
        return Err(format!(
            "name {n:?} has the character {c:?}; use a program name like firefox, without a path"
        ));
    }
    Ok(n.to_lowercase())
}

/// Checks a list of application names, naming a bad entry by its line.
pub fn check_app_list<S: AsRef<str>>(list: &[S]) -> Result<Vec<String>, String> {
    list.iter()
        .enumerate()
        .map(|(i, n)| check_app_name(n.as_ref()).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Validates one value for `key`, returning it normalized.
pub fn validate_value(key: SettingKey, v: &Value) -> Result<Value, SettingsError> {
    let bad = |problem: String| SettingsError::Invalid {
        key: key.name(),
        problem,
    };
    match key.spec().kind {
        Kind::Bool => v
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| bad("must be true or false".into())),
        Kind::Enum(values) => match v.as_str() {
            Some(s) if values.contains(&s) => Ok(json!(s)),
            _ => Err(bad(format!("must be one of {values:?}"))),
        },
        Kind::Domains => {
            let list = v
                .as_array()
                .ok_or_else(|| bad("must be a list of domain patterns".into()))?;
            if list.len() > MAX_DOMAINS {
                return Err(bad(format!("has more than {MAX_DOMAINS} patterns")));
            }
            let strings = list
                .iter()
                .map(|item| item.as_str())
                .collect::<Option<Vec<&str>>>()
                .ok_or_else(|| bad("must be a list of strings".into()))?;
            let mut out = check_domain_list(&strings).map_err(bad)?;
            out.sort();
            out.dedup();
            Ok(json!(out))
        }
        Kind::Apps => {
            let list = v
                .as_array()
                .ok_or_else(|| bad("must be a list of application names".into()))?;
            if list.len() > MAX_APPS {
                return Err(bad(format!("has more than {MAX_APPS} applications")));
            }
            let strings = list
                .iter()
                .map(|item| item.as_str())
                .collect::<Option<Vec<&str>>>()
                .ok_or_else(|| bad("must be a list of strings".into()))?;
            let mut out = check_app_list(&strings).map_err(bad)?;
            out.sort();
            out.dedup();
            Ok(json!(out))
        }
    }
}

/// Parses and validates a JSON object of settings.
pub fn parse_settings(v: &Value) -> Result<SettingsMap, SettingsError> {
    let obj = v.as_object().ok_or(SettingsError::NotAnObject)?;
    let mut out = SettingsMap::new();
    for (name, value) in obj {
        let key = SettingKey::parse(name).ok_or_else(|| SettingsError::Unknown(name.clone()))?;
        out.insert(key, validate_value(key, value)?);
    }
    Ok(out)
}

/// What the console shows for `key`'s enum value instead of the value
/// itself (the application mode names its lists after applications, not sites).
pub fn value_label_for(key: SettingKey, value: &str) -> &'static str {
    match (key, value) {
        (SettingKey::AppMode, "allow_list") => "Only allowed applications",
        (SettingKey::AppMode, "block_list") => "All but blocked applications",
        _ => value_label(value),
    }
}

/// What the console shows for an enum value instead of the value itself.
pub fn value_label(value: &str) -> &'static str {
    match value {
        "off" => "Off",
        "allow_list" => "Only allowed sites",
        "block_list" => "All but blocked sites",
        "allow" => "Allow",
        "deny" => "Deny",
        "ask_then_allow" => "Ask the student, then allow",
        "ask_then_deny" => "Ask the student, then deny",
        _ => "",
    }
}

/// The catalogue as JSON for the API: key, type, values, default, description.
pub fn catalogue_json() -> Value {
    Value::Array(
        CATALOGUE
            .iter()
            .map(|s| {
                let (ty, values) = match s.kind {
                    Kind::Bool => ("bool", None),
                    Kind::Enum(v) => ("enum", Some(v)),
                    Kind::Domains => ("domains", None),
                    Kind::Apps => ("apps", None),
                };
                let mut o = json!({"key": s.key.name(), "label": s.label, "type": ty, "default": s.key.default_value(), "description": s.description});
                if let Some(v) = values {
                    o["values"] = json!(v);
                    let labels: serde_json::Map<String, Value> =
                        v.iter().map(|v| (v.to_string(), json!(value_label_for(s.key, v)))).collect();
                    o["value_labels"] = Value::Object(labels);
                }
                o
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_and_enum_value_has_a_human_label() {
        for spec in CATALOGUE {
            assert!(
                !spec.label.is_empty() && !spec.label.contains('_'),
                "{:?}",
                spec.key
            );
            if let Kind::Enum(values) = spec.kind {
                for v in values {
                    assert!(!value_label_for(spec.key, v).is_empty(), "{v}");
                }
            }
        }
    }

    #[test]
    fn a_list_entry_with_a_space_is_refused_whole_naming_its_line() {
        let e = check_domain_list(&["example.org", "bad pattern!", "ok.org"]).unwrap_err();
        assert!(e.starts_with("line 2: "), "{e}");
        assert!(e.contains("\"bad pattern!\""), "the whole entry: {e}");
        assert_eq!(
            check_domain_list(&[" Example.ORG. ", "*.bbc.co.uk"]).unwrap(),
            ["example.org", "*.bbc.co.uk"]
        );
        let e = parse_settings(&json!({"block_list": ["a.org", "b.org", "bad pattern!"]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3: ") && e.contains("\"bad pattern!\""),
            "{e}"
        );
    }

    #[test]
    fn valid_settings_parse_and_normalize() {
        let m = parse_settings(&json!({
            "internet_blocked": true,
            "web_filter_mode": "allow_list",
            "allow_list": ["*.BBC.co.uk", "example.org.", "example.org"],
            "remote_view": "ask_then_deny"
        }))
        .unwrap();
        assert_eq!(
            m[&SettingKey::AllowList],
            json!(["*.bbc.co.uk", "example.org"])
        );
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn unknown_and_ill_typed_settings_are_refused() {
        assert_eq!(
            parse_settings(&json!({"format_disk": true})),
            Err(SettingsError::Unknown("format_disk".into()))
        );
        for bad in [
            json!({"internet_blocked": "yes"}),
            json!({"web_filter_mode": "sometimes"}),
            json!({"allow_list": "example.org"}),
            json!({"allow_list": [1]}),
            json!({"block_list": ["exa mple.org"]}),
            json!({"block_list": ["a..b"]}),
            json!({"remote_view": true}),
        ] {
            let e = parse_settings(&bad).unwrap_err();
            assert!(matches!(e, SettingsError::Invalid { .. }), "{bad}: {e}");
        }
        assert_eq!(parse_settings(&json!([])), Err(SettingsError::NotAnObject));
    }

    #[test]
    fn catalogue_covers_every_key_with_a_valid_default() {
        let cat = catalogue_json();
        assert_eq!(cat.as_array().unwrap().len(), CATALOGUE.len());
        for s in CATALOGUE {
            assert_eq!(
                validate_value(s.key, &s.key.default_value()).unwrap(),
                s.key.default_value()
            );
            assert_eq!(SettingKey::parse(&s.key.name()), Some(s.key));
        }
        assert_eq!(SettingKey::RemoteView.default_value(), json!("allow"));
        assert_eq!(SettingKey::ActivityLogging.default_value(), json!(true));
        assert_eq!(SettingKey::SoundMuted.default_value(), json!(false));
    }

    #[test]
    fn application_lists_are_checked_and_normalized() {
        let m = parse_settings(&json!({
            "app_mode": "block_list",
            "app_block_list": ["Steam", " xterm ", "steam", "org.gnome.Chess"],
            "app_allow_list": []
        }))
        .unwrap();
        assert_eq!(
            m[&SettingKey::AppBlockList],
            json!(["org.gnome.chess", "steam", "xterm"])
        );
        for bad in [
            json!({"app_mode": "sometimes"}),
            json!({"app_block_list": "xterm"}),
            json!({"app_block_list": ["/usr/bin/xterm"]}),
            json!({"app_block_list": ["two words"]}),
            json!({"app_block_list": ["tab\there"]}),
            json!({"app_block_list": [""]}),
            json!({"app_block_list": ["x".repeat(65)]}),
            json!({"app_allow_list": (0..201).map(|i| format!("app{i}")).collect::<Vec<_>>()}),
        ] {
            let e = parse_settings(&bad).unwrap_err();
            assert!(matches!(e, SettingsError::Invalid { .. }), "{bad}: {e}");
        }
        let e = check_app_list(&["xterm", "a\\b"]).unwrap_err();
        assert!(e.starts_with("line 2: "), "{e}");
        assert!(
            check_app_name(&"é".repeat(64)).is_ok(),
            "64 characters, not bytes"
        );
        let cat = catalogue_json();
        let mode = cat
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "app_mode")
            .unwrap();
        assert_eq!(mode["label"], "Applications");
        assert_eq!(
            mode["value_labels"]["allow_list"],
            "Only allowed applications"
        );
    }
}
