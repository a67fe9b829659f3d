//! Console access rights: who may use which feature, on which groups.
//!
//! Principals are console users, the computers a console is used from (IP
//! address or CIDR), and directory groups. Every rule that matches a caller
//! applies; they merge by union of features, the highest access per group, and
//! "bypass client privacy" if any rule grants it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Every feature a rule can grant: commands and admin areas.
pub const FEATURES: &[(&str, &str)] = &[
    ("devices.view", "See devices, their state and thumbnails"),
    (
        "devices.manage",
        "Revoke devices and manage enrollment tokens",
    ),
    ("command.message", "Send messages"),
    ("command.launch_url", "Open websites on devices"),
    (
        "command.meeting",
        "Invite devices to a video meeting (the link opens on each)",
    ),
    ("command.lock", "Lock and unlock screens"),
    ("command.internet", "Block and unblock the internet"),
    ("command.logout", "Log devices out"),
    ("command.tabs", "See and close browser tabs"),
    (
        "command.web_filter",
        "Set web allow and block lists on devices",
    ),
    (
        "activity.view",
        "Read activity logs, violations and their screenshots",
    ),
    (
        "violations.review",
        "Review violations: set their status, assign them to staff who may read them, and add notes",
    ),
    ("keywords.manage", "Edit the keyword library"),
    (
        "reports.manage",
        "Create, run and download scheduled reports",
    ),
    ("live_view", "Open a device's live view"),
    (
        "command.remote_control",
        "Take control of a device's mouse and keyboard",
    ),
    ("command.broadcast", "Broadcast a screen to devices"),
    ("groups.view", "See groups and resultant settings"),
    (
        "groups.manage",
        "Create, edit and delete groups (members of groups that access rules cover need that access to Entire Network)",
    ),
    (
        "directory.manage",
        "Set other users' directory groups (never one's own; only groups whose access rules grant no more than one holds); see the directory settings, test them and run directory syncs (changing the connection is for administrators)",
    ),
    (
        "access.manage",
        "Manage access rules and console users (granting at most one's own rights)",
    ),
    ("lessons.manage", "Start and end lessons"),
    ("audit.view", "Read the audit log"),
    (
        "command.chat",
        "Answer raised hands and chat with students",
    ),
    (
        "school.look",
        "Set the school's name and logo shown on student screens",
    ),
    (
        "inventory.view",
        "See devices' inventory (hardware, system, packages) and export it",
    ),
    (
        "command.power",
        "Shut down, restart, log off and wake devices, and schedule power-offs of groups",
    ),
    (
        "command.files",
        "Send files to devices and collect files back",
    ),
    (
        "command.exams",
        "Run exams: lock devices to allowed applications and sites, hand out and collect papers",
    ),
    (
        "settings.manage",
        "Change the school's settings (retention, keyword actions, thumbnails, backups, login limits); administrators also download backups",
    ),
    (
        "timetable.manage",
        "Edit the periods of the school day and cancel anyone's room booking",
    ),
    (
        "rooms.book",
        "Book rooms (computer groups one can see) for periods of the timetable",
    ),
    (
        "roster.manage",
        "Import OneRoster class rosters (writing teachers' access to their classes also needs access.manage, within one's own rights)",
    ),
    (
        "aup.manage",
        "Write acceptable use policies, publish new versions and see who accepted them",
    ),
    (
        "students.passwords",
        "Set and reset the sign-in passwords (pictures or text) of students in groups one controls",
    ),
];

/// What a user cannot do without each feature, as the end of the sentence
/// "You can't …": the console and the API's refusals word a missing right
/// from this table only, so a feature added to [`FEATURES`] needs one line
/// here too (a test checks that every feature has one).
pub const FEATURE_REFUSALS: &[(&str, &str)] = &[
    ("devices.view", "see these computers"),
    (
        "devices.manage",
        "remove computers or manage enrollment tokens",
    ),
    ("command.message", "send messages to these computers"),
    ("command.launch_url", "open websites on these computers"),
    ("command.meeting", "invite these computers to a meeting"),
    ("command.lock", "lock or unlock these computers"),
    (
        "command.internet",
        "block or allow the internet on these computers",
    ),
    ("command.logout", "log students out of these computers"),
    (
        "command.tabs",
        "see or close browser tabs on these computers",
    ),
    ("command.web_filter", "set web lists on these computers"),
    ("activity.view", "read activity logs or violations"),
    (
        "violations.review",
        "review violations (status, assignee, notes)",
    ),
    ("keywords.manage", "edit the keyword library"),
    ("reports.manage", "create, run or download reports"),
    ("live_view", "watch these computers' screens"),
    ("command.remote_control", "take control of these computers"),
    ("command.broadcast", "show a screen on these computers"),
    ("groups.view", "see groups or resultant settings"),
    ("groups.manage", "create, edit or delete groups"),
    ("directory.manage", "change which groups people belong to"),
    ("access.manage", "manage access rules or console users"),
    ("lessons.manage", "start or end lessons"),
    ("audit.view", "read the audit log"),
    (
        "command.chat",
        "answer raised hands or chat with these computers",
    ),
    (
        "school.look",
        "change the school's name or logo on student screens",
    ),
    ("inventory.view", "see these computers' inventory"),
    (
        "command.power",
        "shut down, restart, log off or wake these computers",
    ),
    (
        "command.files",
        "send files to or collect files from these computers",
    ),
    ("command.exams", "run exams on these computers"),
    ("settings.manage", "change the school's settings"),
    (
        "timetable.manage",
        "change the timetable's periods or others' bookings",
    ),
    ("rooms.book", "book rooms"),
    ("roster.manage", "import class rosters"),
    (
        "aup.manage",
        "write acceptable use policies or see who accepted them",
    ),
    (
        "students.passwords",
        "set or reset these students' sign-in passwords",
    ),
];

/// The refusal phrase for `feature` (see [`FEATURE_REFUSALS`]).
pub fn refusal_phrase(feature: &str) -> Option<&'static str> {
    FEATURE_REFUSALS
        .iter()
        .find(|(k, _)| *k == feature)
        .map(|(_, p)| *p)
}

/// The sentence shown when the caller lacks `feature`.
pub fn refusal_sentence(feature: &str) -> String {
    match refusal_phrase(feature) {
        Some(p) => format!("You can't {p}. Ask your administrator."),
        None => "You don't have the right to do this. Ask your administrator.".into(),
    }
}

/// The access to some group a feature is useless without: commands need
/// control of some devices, seeing and watching need at least view. The
/// console shows a feature's pages and buttons only when the user holds it
/// with that access somewhere; the server still checks each device.
pub fn access_needed(feature: &str) -> Access {
    if feature.starts_with("command.") {
        Access::Control
    } else if ["devices.view", "live_view", "inventory.view", "rooms.book"].contains(&feature) {
        Access::View
    } else {
        Access::None
    }
}

/// The feature a command needs.
pub fn command_feature(cmd: &lectern_proto::Command) -> &'static str {
    use lectern_proto::Command::*;
    match cmd {
        Message { .. } | ClearMessage => "command.message",
        LaunchUrl { .. } => "command.launch_url",
        Lock { .. } | Unlock => "command.lock",
        BlockInternet | UnblockInternet => "command.internet",
        Logout => "command.logout",
        CloseTab { .. } | CloseAllTabs => "command.tabs",
        SetWebFilter { .. } => "command.web_filter",
        Power { .. } | CancelPower => "command.power",
        Meeting { .. } => "command.meeting",
    }
}

/// Access to a group's devices.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Not visible.
    #[default]
    None,
    /// Visible, not controllable.
    View,
    /// Visible and controllable.
    Control,
}

/// Who a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Principal {
    /// A console user name.
    User(String),
    /// The console computer's address: an IP or a CIDR block.
    Computer(String),
    /// A directory group of the console user.
    DirectoryGroup(String),
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRule {
    /// Id (0 before it is stored).
    #[serde(default)]
    pub id: i64,
    /// Who.
    pub principal: Principal,
    /// Features granted.
    #[serde(default)]
    pub features: BTreeSet<String>,
    /// Access per group id.
    #[serde(default)]
    pub group_access: BTreeMap<i64, Access>,
    /// May open live views without asking the student.
    #[serde(default)]
    pub bypass_privacy: bool,
}

/// The console user asking.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// User name.
    pub username: &'a str,
    /// Where the console runs.
    pub address: Option<IpAddr>,
    /// The user's directory groups.
    pub directory_groups: &'a [String],
    /// Administrators have every right.
    pub admin: bool,
}

/// A caller's merged rights.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rights {
    /// Everything (administrators).
    pub all: bool,
    /// Features.
    pub features: BTreeSet<String>,
    /// Access per group id.
    pub group_access: BTreeMap<i64, Access>,
    /// Live view without asking.
    pub bypass_privacy: bool,
}

impl Principal {
    /// Whether this principal covers the caller.
    pub fn matches(&self, c: &Caller<'_>) -> bool {
        match self {
            Principal::User(u) => u.eq_ignore_ascii_case(c.username),
            Principal::DirectoryGroup(g) => {
                c.directory_groups.iter().any(|d| d.eq_ignore_ascii_case(g))
            }
            Principal::Computer(net) => c.address.is_some_and(|a| address_matches(net, a)),
        }
    }
}

fn address_matches(net: &str, a: IpAddr) -> bool {
    if let Ok(n) = net.parse::<ipnet::IpNet>() {
        return n.contains(&a);
    }
    net.parse::<IpAddr>().is_ok_and(|ip| ip == a)
}

impl AccessRule {
    /// Checks the rule's fields.
    pub fn validate(&self) -> Result<(), String> {
        let value = match &self.principal {
            Principal::User(v) | Principal::DirectoryGroup(v) => v,
            Principal::Computer(v) => {
                if v.parse::<ipnet::IpNet>().is_err() && v.parse::<IpAddr>().is_err() {
                    return Err(format!(
                        "computer principal {v:?} is not an IP address or CIDR block"
                    ));
                }
                v
            }
        };
        if value.trim().is_empty() || value.len() > 256 {
            return Err("principal value must be 1 to 256 characters".into());
        }
        if let Some(f) = self
            .features
            .iter()
            .find(|f| !FEATURES.iter().any(|(k, _)| k == f))
        {
            return Err(format!("unknown feature {f:?}"));
        }
        Ok(())
    }
}

/// Merges every rule that matches `caller`.
pub fn rights_for(rules: &[AccessRule], caller: &Caller<'_>) -> Rights {
    let mut r = Rights {
        all: caller.admin,
        bypass_privacy: caller.admin,
        ..Rights::default()
    };
    for rule in rules.iter().filter(|rule| rule.principal.matches(caller)) {
        r.features.extend(rule.features.iter().cloned());
        for (g, a) in &rule.group_access {
            let e = r.group_access.entry(*g).or_default();
            *e = (*e).max(*a);
        }
        r.bypass_privacy |= rule.bypass_privacy;
    }
    r
}

impl Rights {
    /// Whether the feature is granted.
    pub fn allows(&self, feature: &str) -> bool {
        self.all || self.features.contains(feature)
    }

    /// Whether the feature is granted together with the group access it
    /// needs ([`access_needed`]) on at least one group: what the console
    /// offers. The server still checks every request and device.
    pub fn usable(&self, feature: &str) -> bool {
        if self.all {
            return true;
        }
        let needed = access_needed(feature);
        self.allows(feature)
            && (needed == Access::None || self.group_access.values().any(|a| *a >= needed))
    }

    /// Access to a device that belongs to `groups` (its computer groups, Entire
    /// Network, and its user's groups): the highest any of them grants.
    pub fn device_access(&self, groups: &[i64]) -> Access {
        if self.all {
            return Access::Control;
        }
        groups
            .iter()
            .filter_map(|g| self.group_access.get(g))
            .copied()
            .max()
            .unwrap_or(Access::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(p: Principal, features: &[&str], access: &[(i64, Access)], bypass: bool) -> AccessRule {
        AccessRule {
            id: 0,
            principal: p,
            features: features.iter().map(|s| s.to_string()).collect(),
            group_access: access.iter().copied().collect(),
            bypass_privacy: bypass,
        }
    }

    #[test]
    fn rules_merge_across_principals() {
        let dirs = vec!["Science".to_string()];
        let caller = Caller {
            username: "ms.khan",
            address: Some("10.1.2.3".parse().unwrap()),
            directory_groups: &dirs,
            admin: false,
        };
        let rules = vec![
            rule(
                Principal::User("MS.KHAN".into()),
                &["devices.view"],
                &[(7, Access::View)],
                false,
            ),
            rule(
                Principal::Computer("10.1.0.0/16".into()),
                &["command.lock"],
                &[(7, Access::Control)],
                false,
            ),
            rule(
                Principal::DirectoryGroup("science".into()),
                &["live_view"],
                &[(8, Access::View)],
                true,
            ),
            rule(
                Principal::User("someone".into()),
                &["audit.view"],
                &[(9, Access::Control)],
                false,
            ),
            rule(
                Principal::Computer("10.9.9.9".into()),
                &["groups.manage"],
                &[],
                false,
            ),
        ];
        let r = rights_for(&rules, &caller);
        assert!(r.allows("devices.view") && r.allows("command.lock") && r.allows("live_view"));
        assert!(!r.allows("audit.view") && !r.allows("groups.manage"));
        assert!(r.bypass_privacy);
        assert_eq!(
            r.device_access(&[7]),
            Access::Control,
            "highest access wins"
        );
        assert_eq!(r.device_access(&[8, 1]), Access::View);
        assert_eq!(r.device_access(&[9]), Access::None);
        let admin = rights_for(
            &[],
            &Caller {
                admin: true,
                ..caller
            },
        );
        assert!(admin.allows("anything") && admin.device_access(&[]) == Access::Control);
    }

    #[test]
    fn rules_are_validated() {
        assert!(
            rule(Principal::Computer("not-an-ip".into()), &[], &[], false)
                .validate()
                .is_err()
        );
        assert!(
            rule(Principal::Computer("fd00::/8".into()), &[], &[], false)
                .validate()
                .is_ok()
        );
        assert!(
            rule(Principal::User("x".into()), &["format_disk"], &[], false)
                .validate()
                .is_err()
        );
        assert!(rule(Principal::User("".into()), &[], &[], false)
            .validate()
            .is_err());
    }

    #[test]
    fn a_right_is_usable_only_with_the_group_access_it_needs() {
        let r = rights_for(
            &[rule(
                Principal::User("t".into()),
                &[
                    "devices.view",
                    "command.lock",
                    "live_view",
                    "reports.manage",
                ],
                &[(7, Access::View)],
                false,
            )],
            &Caller {
                username: "t",
                address: None,
                directory_groups: &[],
                admin: false,
            },
        );
        assert!(r.usable("devices.view") && r.usable("live_view") && r.usable("reports.manage"));
        assert!(r.allows("command.lock") && !r.usable("command.lock"));
        assert!(!r.usable("groups.view"));
        let mut control = r.clone();
        control.group_access.insert(8, Access::Control);
        assert!(control.usable("command.lock"));
        let mut none = r.clone();
        none.group_access.clear();
        assert!(!none.usable("devices.view") && none.usable("reports.manage"));
    }

    #[test]
    fn every_feature_has_a_refusal_sentence() {
        for (f, _) in FEATURES {
            let p = refusal_phrase(f).unwrap_or_else(|| panic!("{f} has no refusal phrase"));
            assert!(!p.contains('.') && !p.is_empty(), "{f}: {p:?}");
        }
        for (f, _) in FEATURE_REFUSALS {
            assert!(FEATURES.iter().any(|(k, _)| k == f), "{f} is not a feature");
        }
        assert_eq!(
            refusal_sentence("command.launch_url"),
            "You can't open websites on these computers. Ask your administrator."
        );
    }
}
