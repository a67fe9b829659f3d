//! The server's view of groups, lessons, directory memberships and access
//! rules: a snapshot reloaded after every change, from which each device's
//! resultant settings and each console user's rights are computed.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use lectern_policy::access::{rights_for, AccessRule, Caller, Rights};
use lectern_policy::groups::{
    resolve, values_json, Group, GroupKind, Member, Priority, Resultant, Subject,
};
use lectern_proto::Policy;
use lectern_store::{now_ms, GroupRecord, Lesson, Person, SchoolId, Store};

/// A synthetic High priority group per running exam over its devices (by
/// their enrolled names), carrying the exam's lock-down. Their ids lie below
/// every lesson's, so on equal strength an exam wins over a lesson.
fn exam_groups(store: &dyn Store, school: SchoolId) -> lectern_store::Result<Vec<Group>> {
    let running: Vec<_> = store
        .files()
        .exams(school)?
        .into_iter()
        .filter(|e| e.status == "running")
        .collect();
    if running.is_empty() {
        return Ok(Vec::new());
    }
    let names: HashMap<i64, String> = store
        .list_devices(school)?
        .into_iter()
        .map(|d| (d.id, d.hostname))
        .collect();
    Ok(running
        .iter()
        .map(|e| Group {
            id: -(1_i64 << 40) - e.id,
            name: format!("Exam: {}", e.name),
            kind: GroupKind::Lesson,
            priority: Priority::High,
            members: e
                .devices
                .iter()
                .filter_map(|d| names.get(d))
                // A name with a wildcard would match other computers too.
                .filter(|h| !h.contains('*'))
                .map(|h| Member::Hostname(h.clone()))
                .collect(),
            settings: crate::exams::restrictions(e),
        })
        .collect())
}

/// Everything resolution needs, loaded from the store.
#[derive(Default)]
struct Snapshot {
    groups: Vec<GroupRecord>,
    lessons: Vec<Lesson>,
    directory: HashMap<String, Vec<String>>,
    rules: Vec<AccessRule>,
    people: Vec<Person>,
    /// Every alias, lower-cased, to its person's index in `people`.
    by_name: HashMap<String, usize>,
    /// One synthetic group per running exam (its lock-down).
    exams: Vec<Group>,
    /// Read from the store (not the empty default).
    loaded: bool,
}

/// The names and directory groups a reported user resolves to.
struct Names {
    /// The person's names, or just the reported one.
    names: Vec<String>,
    /// The directory groups of all those names, without duplicates.
    directory_groups: Vec<String>,
    /// The person, if the name is an alias of one.
    person: Option<PersonRef>,
}

/// The person a reported user name resolves to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PersonRef {
    /// The person's id.
    pub id: i64,
    /// The name consoles show.
    pub display_name: String,
}

impl Snapshot {
    /// Resolves a reported user name through the aliases: a person's names
    /// and the directory groups of any of them.
    fn names(&self, user: Option<&str>) -> Names {
        let Some(user) = user else {
            return Names {
                names: Vec::new(),
                directory_groups: Vec::new(),
                person: None,
            };
        };
        let person = self
            .by_name
            .get(&user.to_lowercase())
            .map(|&i| &self.people[i]);
        let names: Vec<String> = match person {
            Some(p) => p.names().map(str::to_string).collect(),
            None => vec![user.to_string()],
        };
        Names {
            directory_groups: self.directory_of(&names),
            person: person.map(|p| PersonRef {
                id: p.id,
                display_name: p.display_name.clone(),
            }),
            names,
        }
    }

    /// The directory groups of any of `names`, each once (case-insensitively).
    fn directory_of(&self, names: &[String]) -> Vec<String> {
        let mut seen = BTreeSet::new();
        names
            .iter()
            .filter_map(|n| self.directory.get(&n.to_lowercase()))
            .flatten()
            .filter(|g| seen.insert(g.to_lowercase()))
            .cloned()
            .collect()
    }
}

/// Cached policy inputs.
#[derive(Default)]
pub struct Policies {
    snap: RwLock<Snapshot>,
    /// Held from the delegation check of a change to rules, directory
    /// memberships, group members or accounts until the change is stored and
    /// reloaded, so that every check sees the rights as they will be.
    changes: Arc<tokio::sync::Mutex<()>>,
}

/// Every school's [`Policies`], by school. A school's are loaded when the
/// server starts ([`crate::state::AppState::reload_policies`]), and again
/// after each change; a school not loaded yet has none (no groups, no
/// rules, so no rights), never another school's.
#[derive(Default)]
pub struct SchoolPolicies {
    by_school: RwLock<HashMap<SchoolId, Arc<Policies>>>,
}

impl SchoolPolicies {
    /// The school's policies.
    pub fn of(&self, school: SchoolId) -> Arc<Policies> {
        let known = self
            .by_school
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&school)
            .cloned();
        known.unwrap_or_else(|| {
            self.by_school
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry(school)
                .or_default()
                .clone()
        })
    }

    /// Whether the school's policies were loaded (asking adds no entry).
    pub fn loaded(&self, school: SchoolId) -> bool {
        self.by_school
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&school)
            .is_some_and(|p| p.read().loaded)
    }

    /// The schools whose policies were loaded.
    pub fn schools(&self) -> Vec<SchoolId> {
        self.by_school
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, p)| p.read().loaded)
            .map(|(s, _)| *s)
            .collect()
    }
}

/// A resolution's result: the settings and the groups the subject is in.
pub struct Resolution {
    /// Every setting with its source.
    pub resultant: Resultant,
    /// Ids of the stored groups that matched (lessons excluded).
    pub groups: Vec<i64>,
    /// The user's directory groups (those of any of the person's names).
    pub directory_groups: Vec<String>,
    /// The person the user name resolved to, if any.
    pub person: Option<PersonRef>,
}

impl Policies {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snap.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Reloads everything from the store (call on a blocking thread).
    pub fn reload(&self, store: &dyn Store, school: SchoolId) -> lectern_store::Result<()> {
        let now = now_ms();
        let mut snap = Snapshot {
            groups: store.list_groups(school)?,
            // Lessons that ended are irrelevant; future ones matter for timers.
            lessons: store
                .lessons_since(school, now)?
                .into_iter()
                .filter(|l| l.ended_at.is_none())
                .collect(),
            directory: store
                .directory(school)?
                .into_iter()
                .map(|(u, g)| (u.to_lowercase(), g))
                .collect(),
            rules: store.access_rules(school)?,
            people: store.list_people(school)?,
            by_name: HashMap::new(),
            exams: exam_groups(store, school)?,
            loaded: true,
        };
        snap.by_name = snap
            .people
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.names().map(move |n| (n.to_lowercase(), i)))
            .collect();
        *self.snap.write().unwrap_or_else(|p| p.into_inner()) = snap;
        Ok(())
    }

    /// Takes over another instance's snapshot.
    pub fn replace(&self, other: Policies) {
        let snap = other.snap.into_inner().unwrap_or_else(|p| p.into_inner());
        *self.snap.write().unwrap_or_else(|p| p.into_inner()) = snap;
    }

    /// A user's directory groups.
    pub fn directory_groups(&self, user: &str) -> Vec<String> {
        self.read()
            .directory
            .get(&user.to_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// Stored groups plus one synthetic group per running lesson.
    fn effective_groups(snap: &Snapshot, now: i64) -> Vec<Group> {
        let mut out: Vec<Group> = snap.groups.iter().map(|g| g.group.clone()).collect();
        for l in snap.lessons.iter().filter(|l| l.active_at(now)) {
            let Some(class) = snap.groups.iter().find(|g| g.group.id == l.group_id) else {
                continue;
            };
            let members = if class.group.kind == GroupKind::EntireNetwork {
                vec![Member::Hostname("*".into())]
            } else {
                class.group.members.clone()
            };
            out.push(Group {
                // Negative ids keep lessons apart from stored groups.
                id: -l.id,
                name: format!("Lesson: {}", class.group.name),
                kind: GroupKind::Lesson,
                priority: Priority::High,
                members,
                settings: l.restrictions.clone(),
            });
        }
        out.extend(snap.exams.iter().cloned());
        out
    }

    /// Whether `user` (a name a device reports) is an automatic login
    /// identifier: an OS login or e-mail alias on someone's profile. Such a
    /// device already knows whose session it is, so it never asks for the
    /// student sign-in.
    pub fn is_automatic_identifier(&self, user: &str) -> bool {
        use lectern_store::AliasKind;
        let snap = self.read();
        let Some(&i) = snap.by_name.get(&user.to_lowercase()) else {
            return false;
        };
        snap.people[i].aliases.iter().any(|a| {
            matches!(a.kind, AliasKind::OsLogin | AliasKind::Email)
                && a.value.eq_ignore_ascii_case(user)
        })
    }

    /// Resolves settings for a device (hostname) and/or user. The user name
    /// is resolved through the aliases: user groups and directory memberships
    /// match any name of the same person.
    pub fn resolve(&self, hostname: Option<&str>, user: Option<&str>) -> Resolution {
        let snap = self.read();
        let Names {
            names,
            directory_groups,
            person,
        } = snap.names(user);
        let subject = Subject {
            hostname,
            user,
            aliases: &names,
            directory_groups: &directory_groups,
        };
        let groups = Self::effective_groups(&snap, now_ms());
        let resultant = resolve(&groups, &subject);
        let matched = snap
            .groups
            .iter()
            .filter(|g| g.group.matches(&subject))
            .map(|g| g.group.id)
            .collect();
        Resolution {
            resultant,
            groups: matched,
            directory_groups,
            person,
        }
    }

    /// Whether a device (its hostname and current user, with that user's
    /// aliases and directory groups) matches any of `members`: what a group
    /// with these members would hold now.
    pub fn members_match(&self, members: &[Member], hostname: &str, user: Option<&str>) -> bool {
        let snap = self.read();
        let names = snap.names(user);
        let subject = Subject {
            hostname: Some(hostname),
            user,
            aliases: &names.names,
            directory_groups: &names.directory_groups,
        };
        members.iter().any(|m| m.matches(&subject))
    }

    /// The earliest moment a lesson starts or ends after `now`, if any.
    pub fn next_lesson_change(&self, now: i64) -> Option<i64> {
        self.read()
            .lessons
            .iter()
            .flat_map(|l| [l.starts_at, l.ends_at])
            .filter(|t| *t > now)
            .min()
    }

    /// When the earliest lesson now running over this device (its hostname
    /// and user) is due to end, if one is running: a student's answer to a
    /// live-view question holds until then at the latest.
    pub fn lesson_end(&self, hostname: &str, user: Option<&str>, now: i64) -> Option<i64> {
        let snap = self.read();
        let names = snap.names(user);
        let subject = Subject {
            hostname: Some(hostname),
            user,
            aliases: &names.names,
            directory_groups: &names.directory_groups,
        };
        snap.lessons
            .iter()
            .filter(|l| l.active_at(now))
            .filter(|l| {
                snap.groups
                    .iter()
                    .any(|g| g.group.id == l.group_id && g.group.matches(&subject))
            })
            .map(|l| l.ends_at)
            .min()
    }

    /// The id of the earliest-started lesson running now over this device
    /// (its hostname and user), if any: chat history is kept per lesson.
    pub fn running_lesson(&self, hostname: &str, user: Option<&str>, now: i64) -> Option<i64> {
        let snap = self.read();
        let names = snap.names(user);
        let subject = Subject {
            hostname: Some(hostname),
            user,
            aliases: &names.names,
            directory_groups: &names.directory_groups,
        };
        snap.lessons
            .iter()
            .filter(|l| l.active_at(now))
            .filter(|l| {
                snap.groups
                    .iter()
                    .any(|g| g.group.id == l.group_id && g.group.matches(&subject))
            })
            .min_by_key(|l| (l.starts_at, l.id))
            .map(|l| l.id)
    }

    /// A console user's rights.
    pub fn rights(&self, username: &str, address: Option<IpAddr>, admin: bool) -> Rights {
        let snap = self.read();
        let dirs = snap
            .directory
            .get(&username.to_lowercase())
            .cloned()
            .unwrap_or_default();
        rights_for(
            &snap.rules,
            &Caller {
                username,
                address,
                directory_groups: &dirs,
                admin,
            },
        )
    }

    /// Waits for other rights-changing requests to finish; see `changes`.
    pub async fn lock_changes(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.changes.clone().lock_owned().await
    }

    /// The access rules.
    pub fn rules(&self) -> Vec<AccessRule> {
        self.read().rules.clone()
    }

    /// The Entire Network group's id.
    pub fn entire_network(&self) -> Option<i64> {
        self.read()
            .groups
            .iter()
            .find(|g| g.group.kind == GroupKind::EntireNetwork)
            .map(|g| g.group.id)
    }

    /// Whether a stored group has this id.
    pub fn group_exists(&self, id: i64) -> bool {
        self.read().groups.iter().any(|g| g.group.id == id)
    }

    /// What a console user's account may grant: the rules for its name and its
    /// directory groups, wherever it logs in from.
    pub fn account_rights(&self, username: &str, admin: bool) -> Rights {
        let snap = self.read();
        let dirs = snap
            .directory
            .get(&username.to_lowercase())
            .cloned()
            .unwrap_or_default();
        lectern_policy::delegation::account_rights(&snap.rules, username, &dirs, admin)
    }

    /// The person a reported user name is an alias of.
    pub fn person_for(&self, user: &str) -> Option<PersonRef> {
        self.read().names(Some(user)).person
    }

    /// The person holding `name` as an alias, whole.
    pub fn person_named(&self, name: &str) -> Option<Person> {
        let snap = self.read();
        snap.by_name
            .get(&name.to_lowercase())
            .map(|&i| snap.people[i].clone())
    }

    /// The stored groups a user known by all of `names` is in (by user
    /// members or the directory groups of any of the names; no device).
    pub fn groups_of_names(&self, names: &[String]) -> BTreeSet<i64> {
        let snap = self.read();
        let dirs = snap.directory_of(names);
        let subject = Subject {
            hostname: None,
            user: None,
            aliases: names,
            directory_groups: &dirs,
        };
        snap.groups
            .iter()
            .filter(|g| g.group.kind != GroupKind::EntireNetwork && g.group.matches(&subject))
            .map(|g| g.group.id)
            .collect()
    }

    /// The group's current record.
    pub fn group(&self, id: i64) -> Option<GroupRecord> {
        self.read()
            .groups
            .iter()
            .find(|g| g.group.id == id)
            .cloned()
    }
}

/// Turns a resultant into the policy sent to agents.
pub fn to_policy(r: &Resultant, version: u64) -> Policy {
    let mut v = values_json(r);
    v["version"] = serde_json::json!(version);
    serde_json::from_value(v).unwrap_or_else(|e| {
        tracing::error!("resultant does not fit the policy type: {e}");
        Policy {
            version,
            ..Policy::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lectern_policy::settings::SettingKey;
    use serde_json::json;

    #[test]
    fn resultant_converts_to_a_policy() {
        let groups = vec![Group {
            id: 1,
            name: "g".into(),
            kind: GroupKind::EntireNetwork,
            priority: Priority::Low,
            members: vec![],
            settings: [
                (SettingKey::SoundMuted, json!(true)),
                (SettingKey::RemoteView, json!("ask_then_deny")),
                (SettingKey::SchoolSwitch, json!(true)),
            ]
            .into(),
        }];
        let p = to_policy(&resolve(&groups, &Subject::default()), 9);
        assert_eq!(p.version, 9);
        assert!(p.sound_muted);
        assert!(p.school_switch, "a school lets its devices switch");
        assert!(
            !Policy::default().school_switch,
            "and none does unless told"
        );
        assert_eq!(p.remote_view, lectern_proto::RemoteView::AskThenDeny);
        assert!(p.thumbnails_allowed && p.activity_logging);
    }

    #[test]
    fn lesson_end_is_that_of_the_running_lessons_over_the_device() {
        let group = |id, pattern: &str| GroupRecord {
            group: Group {
                id,
                name: format!("g{id}"),
                kind: GroupKind::Computer,
                priority: Priority::Low,
                members: vec![Member::Hostname(pattern.into())],
                settings: Default::default(),
            },
            builtin: false,
        };
        let lesson = |id, group_id, ends_at, ended_at| Lesson {
            id,
            group_id,
            teacher: "t".into(),
            restrictions: Default::default(),
            starts_at: 0,
            ends_at,
            ended_at,
        };
        let p = Policies::default();
        *p.snap.write().unwrap() = Snapshot {
            groups: vec![group(1, "LAB-*"), group(2, "ART-*")],
            lessons: vec![
                lesson(1, 1, 5_000, None),
                lesson(2, 1, 3_000, None),
                lesson(3, 2, 2_000, None),
                lesson(4, 1, 1_500, Some(100)),
            ],
            ..Snapshot::default()
        };
        assert_eq!(p.lesson_end("LAB-01", None, 1_000), Some(3_000));
        assert_eq!(p.lesson_end("ART-01", Some("amy"), 1_000), Some(2_000));
        assert_eq!(p.lesson_end("GYM-01", None, 1_000), None);
        assert_eq!(p.lesson_end("LAB-01", None, 6_000), None, "all over");
    }
}
