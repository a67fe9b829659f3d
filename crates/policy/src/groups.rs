//! Groups and the resultant set of settings.
//!
//! A device with its current user belongs to every group that matches it. For
//! each setting, the value comes from the strongest matching group that sets it.
//! Strength is, in order:
//! 1. priority: High > Medium > Low;
//! 2. on equal priority, the more specific kind: restriction group > lesson >
//!    user group > computer group > Entire Network (a rule about a person is
//!    more deliberate than one about a room, and a room than everyone);
//! 3. on equal kind, the older group (lower id): settings do not change just
//!    because someone created a new group later.
//!
//! The order is total, so the result never depends on the order groups are
//! listed in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::hostname_matches;
use crate::settings::{SettingKey, SettingsMap, CATALOGUE};

/// A group's priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Weakest.
    Low,
    /// Middle.
    Medium,
    /// Strongest.
    High,
}

/// What a group is for; also the tie-break between equal priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    /// Built-in: every device and user.
    EntireNetwork,
    /// Computers by hostname pattern.
    Computer,
    /// Users by name or directory group.
    User,
    /// A running lesson's restrictions on its class (made by the server).
    Lesson,
    /// Built-in restriction groups (Internet Banned, …).
    Restriction,
}

/// A group member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Member {
    /// Computers whose hostname matches the pattern (`*` wildcards).
    Hostname(String),
    /// A user, by login name.
    User(String),
    /// Users in a directory group.
    DirectoryGroup(String),
}

/// A group with its settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: GroupKind,
    /// Priority.
    pub priority: Priority,
    /// Members (ignored for Entire Network).
    pub members: Vec<Member>,
    /// Settings this group sets.
    pub settings: SettingsMap,
}

/// Who settings are resolved for: a device, its current user, or both.
#[derive(Debug, Clone, Copy, Default)]
pub struct Subject<'a> {
    /// Device hostname.
    pub hostname: Option<&'a str>,
    /// User logged in, as the device reports it.
    pub user: Option<&'a str>,
    /// The user's other names (aliases of the same person): user members
    /// match any of them, so one person is one member whatever name they
    /// arrive under.
    pub aliases: &'a [String],
    /// The user's directory groups.
    pub directory_groups: &'a [String],
}

impl Member {
    /// Whether this member entry covers the subject.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        match self {
            Member::Hostname(p) => s.hostname.is_some_and(|h| hostname_matches(p, h)),
            Member::User(u) => {
                s.user.is_some_and(|n| n.eq_ignore_ascii_case(u))
                    || s.aliases.iter().any(|n| n.eq_ignore_ascii_case(u))
            }
            Member::DirectoryGroup(g) => {
                s.directory_groups.iter().any(|d| d.eq_ignore_ascii_case(g))
            }
        }
    }

    /// Checks a member for a group of `kind`.
    pub fn check(&self, kind: GroupKind) -> Result<(), String> {
        let (value, allowed) = match self {
            Member::Hostname(v) => (
                v,
                matches!(
                    kind,
                    GroupKind::Computer | GroupKind::Restriction | GroupKind::Lesson
                ),
            ),
            Member::User(v) | Member::DirectoryGroup(v) => (
                v,
                matches!(
                    kind,
                    GroupKind::User | GroupKind::Restriction | GroupKind::Lesson
                ),
            ),
        };
        if value.trim().is_empty() || value.chars().count() > 256 {
            return Err("member values must be 1 to 256 characters".into());
        }
        if value.chars().any(char::is_control) {
            return Err("member values must not contain control characters".into());
        }
        if !allowed {
            return Err(match kind {
                GroupKind::Computer => "computer groups hold hostname members".into(),
                GroupKind::User => "user groups hold user and directory_group members".into(),
                _ => {
                    "the Entire Network group has every device and user; it takes no members".into()
                }
            });
        }
        Ok(())
    }
}

impl Group {
    /// Whether the subject belongs to this group.
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        self.kind == GroupKind::EntireNetwork || self.members.iter().any(|m| m.matches(s))
    }

    /// The strength used to pick between groups that set the same setting.
    pub fn strength(&self) -> (Priority, GroupKind, std::cmp::Reverse<i64>) {
        (self.priority, self.kind, std::cmp::Reverse(self.id))
    }
}

/// Where a resolved value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    /// Group id.
    pub group_id: i64,
    /// Group name.
    pub group_name: String,
}

/// One resolved setting.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    /// Value.
    pub value: Value,
    /// The group it came from; `None` for the catalogue default.
    pub source: Option<Source>,
}

/// Every setting's resolved value for a subject.
pub type Resultant = BTreeMap<SettingKey, Resolved>;

/// Resolves every catalogue setting for `subject` from `groups`.
pub fn resolve(groups: &[Group], subject: &Subject<'_>) -> Resultant {
    let mut matching: Vec<&Group> = groups.iter().filter(|g| g.matches(subject)).collect();
    matching.sort_by_key(|g| std::cmp::Reverse(g.strength()));
    CATALOGUE
        .iter()
        .map(|spec| {
            let r = matching
                .iter()
                .find_map(|g| {
                    g.settings.get(&spec.key).map(|v| Resolved {
                        value: v.clone(),
                        source: Some(Source {
                            group_id: g.id,
                            group_name: g.name.clone(),
                        }),
                    })
                })
                .unwrap_or_else(|| Resolved {
                    value: spec.key.default_value(),
                    source: None,
                });
            (spec.key, r)
        })
        .collect()
}

/// The values alone, as a JSON object keyed by setting name.
pub fn values_json(r: &Resultant) -> Value {
    Value::Object(r.iter().map(|(k, v)| (k.name(), v.value.clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn group(
        id: i64,
        kind: GroupKind,
        priority: Priority,
        members: Vec<Member>,
        settings: Value,
    ) -> Group {
        Group {
            id,
            name: format!("g{id}"),
            kind,
            priority,
            members,
            settings: crate::settings::parse_settings(&settings).unwrap(),
        }
    }

    fn subject() -> Subject<'static> {
        Subject {
            hostname: Some("IT01-PC05"),
            user: Some("amy"),
            aliases: &[],
            directory_groups: &[],
        }
    }

    #[test]
    fn highest_priority_wins_and_defaults_fill_the_rest() {
        let groups = vec![
            group(
                1,
                GroupKind::EntireNetwork,
                Priority::Low,
                vec![],
                json!({"sound_muted": true, "remote_view": "ask_then_allow"}),
            ),
            group(
                2,
                GroupKind::Computer,
                Priority::Medium,
                vec![Member::Hostname("IT01*".into())],
                json!({"sound_muted": false}),
            ),
            group(
                3,
                GroupKind::User,
                Priority::High,
                vec![Member::User("AMY".into())],
                json!({"internet_blocked": true}),
            ),
            group(
                4,
                GroupKind::Computer,
                Priority::High,
                vec![Member::Hostname("IT02*".into())],
                json!({"internet_blocked": false}),
            ),
        ];
        let r = resolve(&groups, &subject());
        assert_eq!(r[&SettingKey::SoundMuted].value, json!(false));
        assert_eq!(
            r[&SettingKey::SoundMuted].source.as_ref().unwrap().group_id,
            2
        );
        assert_eq!(r[&SettingKey::InternetBlocked].value, json!(true));
        assert_eq!(r[&SettingKey::RemoteView].value, json!("ask_then_allow"));
        assert_eq!(
            r[&SettingKey::PrintingDisabled],
            Resolved {
                value: json!(false),
                source: None
            }
        );
        assert_eq!(r.len(), CATALOGUE.len());
    }

    #[test]
    fn ties_go_to_the_more_specific_kind_then_the_older_group() {
        let groups = vec![
            group(
                5,
                GroupKind::Computer,
                Priority::High,
                vec![Member::Hostname("*".into())],
                json!({"sound_muted": true}),
            ),
            group(
                9,
                GroupKind::User,
                Priority::High,
                vec![Member::User("amy".into())],
                json!({"sound_muted": false}),
            ),
            group(
                7,
                GroupKind::Computer,
                Priority::Medium,
                vec![Member::Hostname("*".into())],
                json!({"printing_disabled": true}),
            ),
            group(
                6,
                GroupKind::Computer,
                Priority::Medium,
                vec![Member::Hostname("*".into())],
                json!({"printing_disabled": false}),
            ),
            group(
                2,
                GroupKind::Restriction,
                Priority::High,
                vec![Member::User("amy".into())],
                json!({"internet_blocked": true}),
            ),
            group(
                8,
                GroupKind::Lesson,
                Priority::High,
                vec![Member::Hostname("IT01*".into())],
                json!({"internet_blocked": false}),
            ),
        ];
        let r = resolve(&groups, &subject());
        assert_eq!(
            r[&SettingKey::SoundMuted].source.as_ref().unwrap().group_id,
            9,
            "user beats computer"
        );
        assert_eq!(
            r[&SettingKey::PrintingDisabled]
                .source
                .as_ref()
                .unwrap()
                .group_id,
            6,
            "older wins"
        );
        assert_eq!(
            r[&SettingKey::InternetBlocked].value,
            json!(true),
            "restriction beats lesson"
        );
    }

    #[test]
    fn user_members_match_any_name_of_the_person() {
        let names = vec!["zoe@school.example".to_string(), "ZOE".to_string()];
        let s = Subject {
            hostname: None,
            user: Some("zoe@school.example"),
            aliases: &names,
            directory_groups: &[],
        };
        assert!(Member::User("zoe".into()).matches(&s), "the OS login alias");
        assert!(Member::User("Zoe@School.Example".into()).matches(&s));
        assert!(!Member::User("zo".into()).matches(&s));
        let alone = Subject { aliases: &[], ..s };
        assert!(
            !Member::User("zoe".into()).matches(&alone),
            "no alias, no match"
        );
    }

    #[test]
    fn members_match_users_directory_groups_and_hostnames() {
        let dirs = vec!["Year 9".to_string()];
        let s = Subject {
            hostname: None,
            user: Some("bob"),
            aliases: &[],
            directory_groups: &dirs,
        };
        assert!(Member::DirectoryGroup("year 9".into()).matches(&s));
        assert!(
            !Member::Hostname("*".into()).matches(&s),
            "no device, no hostname match"
        );
        assert!(Member::Hostname("x".into()).check(GroupKind::User).is_err());
        assert!(Member::User("x".into()).check(GroupKind::Computer).is_err());
        assert!(Member::User("x".into())
            .check(GroupKind::Restriction)
            .is_ok());
        assert!(Member::User(" ".into()).check(GroupKind::User).is_err());
    }

    fn arb_group(id: i64) -> impl Strategy<Value = Group> {
        let kinds = prop_oneof![
            Just(GroupKind::Computer),
            Just(GroupKind::User),
            Just(GroupKind::Restriction),
            Just(GroupKind::EntireNetwork)
        ];
        let prios = prop_oneof![
            Just(Priority::Low),
            Just(Priority::Medium),
            Just(Priority::High)
        ];
        let settings = proptest::collection::btree_map(
            prop_oneof![
                Just(SettingKey::SoundMuted),
                Just(SettingKey::InternetBlocked),
                Just(SettingKey::PrintingDisabled)
            ],
            any::<bool>().prop_map(Value::Bool),
            0..3,
        );
        let members = proptest::collection::vec(
            prop_oneof![
                "(IT0[12]\\*|\\*|LAB\\*)".prop_map(Member::Hostname),
                "(amy|bob)".prop_map(Member::User),
            ],
            0..3,
        );
        (kinds, prios, members, settings).prop_map(move |(kind, priority, members, settings)| {
            Group {
                id,
                name: format!("g{id}"),
                kind,
                priority,
                members,
                settings,
            }
        })
    }

    fn arb_groups() -> impl Strategy<Value = Vec<Group>> {
        (0usize..8).prop_flat_map(|n| (0..n as i64).map(arb_group).collect::<Vec<_>>())
    }

    proptest! {
        #[test]
        fn order_of_groups_does_not_matter(groups in arb_groups(), seed in any::<u64>()) {
            let mut shuffled = groups.clone();
            // Deterministic shuffle from the seed.
            let n = shuffled.len();
            for i in (1..n).rev() {
                shuffled.swap(i, (seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64) % (i as u64 + 1)) as usize);
            }
            shuffled.reverse();
            prop_assert_eq!(resolve(&groups, &subject()), resolve(&shuffled, &subject()));
        }

        #[test]
        fn a_weaker_group_changes_nothing_already_set(groups in arb_groups(), extra in arb_group(100)) {
            // The extra group is weaker than every other: Low priority, the least
            // specific kind that can still match, and the newest id.
            let mut weak = extra;
            weak.priority = Priority::Low;
            weak.kind = GroupKind::EntireNetwork;
            let before = resolve(&groups, &subject());
            let mut with = groups.clone();
            with.push(weak.clone());
            let after = resolve(&with, &subject());
            for (k, r) in &before {
                if r.source.is_some() {
                    prop_assert_eq!(&after[k], r);
                } else if let Some(v) = weak.settings.get(k) {
                    prop_assert_eq!(&after[k].value, v);
                } else {
                    prop_assert_eq!(&after[k], r);
                }
            }
        }
    }
}
