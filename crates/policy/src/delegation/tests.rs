//! The delegation rule's examples, and a property test over a model of every
//! operation that can grant rights: no sequence of changes by a
//! non-administrator (or by accounts it creates) raises any account it controls
//! above what the actor held at the start, at any address.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::access::{rights_for, Access, AccessRule, Caller, Principal, Rights};

const ENTIRE: i64 = 1;

fn rule(p: Principal, features: &[&str], access: &[(i64, Access)], bypass: bool) -> AccessRule {
    AccessRule {
        id: 0,
        principal: p,
        features: features.iter().map(|s| s.to_string()).collect(),
        group_access: access.iter().copied().collect(),
        bypass_privacy: bypass,
    }
}

fn rights(features: &[&str], access: &[(i64, Access)], bypass: bool) -> Rights {
    Rights {
        all: false,
        features: features.iter().map(|s| s.to_string()).collect(),
        group_access: access.iter().copied().collect(),
        bypass_privacy: bypass,
    }
}

#[test]
fn covers_compares_features_access_and_bypass() {
    let held = rights(
        &["devices.view", "access.manage"],
        &[(7, Access::Control)],
        false,
    );
    let en = Some(ENTIRE);
    assert_eq!(
        covers(
            &held,
            &rights(&["devices.view"], &[(7, Access::View)], false),
            en
        ),
        Ok(())
    );
    assert_eq!(
        covers(&held, &rights(&["audit.view"], &[], false), en),
        Err(Excess::Feature("audit.view".into()))
    );
    assert_eq!(
        covers(&held, &rights(&[], &[(8, Access::View)], false), en),
        Err(Excess::Group {
            group: 8,
            wanted: Access::View,
            held: Access::None
        })
    );
    assert_eq!(
        covers(&held, &rights(&[], &[], true), en),
        Err(Excess::BypassPrivacy)
    );
    // View of every device covers view of any group, not control.
    let everywhere = rights(&[], &[(ENTIRE, Access::View)], false);
    assert_eq!(
        covers(&everywhere, &rights(&[], &[(9, Access::View)], false), en),
        Ok(())
    );
    assert!(covers(
        &everywhere,
        &rights(&[], &[(9, Access::Control)], false),
        en
    )
    .is_err());
    let admin = Rights {
        all: true,
        ..Rights::default()
    };
    assert_eq!(
        covers(&admin, &rights(&["x"], &[(3, Access::Control)], true), en),
        Ok(())
    );
    assert!(
        covers(&held, &admin, en).is_err(),
        "nobody but an admin covers an admin"
    );
}

#[test]
fn the_attacks_from_the_issue_are_refused() {
    let rules = vec![
        rule(
            Principal::User("mgr".into()),
            &["access.manage", "groups.manage", "directory.manage"],
            &[(5, Access::Control)],
            false,
        ),
        rule(
            Principal::DirectoryGroup("Admins".into()),
            &["audit.view"],
            &[(ENTIRE, Access::Control)],
            true,
        ),
        rule(
            Principal::User("head".into()),
            &["reports.manage"],
            &[],
            false,
        ),
        rule(
            Principal::User("ms.khan".into()),
            &["command.lock"],
            &[(5, Access::Control)],
            false,
        ),
    ];
    let held = account_rights(&rules, "mgr", &[], false);
    let g = Granter {
        username: "mgr",
        held: &held,
        entire_network: Some(ENTIRE),
    };
    // Joining a powerful directory group: never oneself, nor anyone else.
    assert_eq!(
        g.may_set_memberships(&rules, "MGR", &[], &["admins".into()]),
        Err(Refusal::OwnMemberships)
    );
    assert_eq!(
        g.may_set_memberships(&rules, "mgr", &[], &[]),
        Err(Refusal::OwnMemberships)
    );
    assert!(matches!(
        g.may_set_memberships(&rules, "bob", &[], &["ADMINS".into()]),
        Err(Refusal::DirectoryGroup {
            excess: Excess::Feature(_),
            ..
        })
    ));
    assert!(
        g.may_set_memberships(&rules, "bob", &["Admins".into()], &[])
            .is_err(),
        "nor take it away"
    );
    assert_eq!(
        g.may_set_memberships(
            &rules,
            "bob",
            &["Admins".into()],
            &["admins".into(), "Year 9".into()]
        ),
        Ok(())
    );
    // A rule granting oneself everything.
    let all = rule(
        Principal::User("mgr".into()),
        &["audit.view"],
        &[(ENTIRE, Access::Control)],
        true,
    );
    assert!(matches!(
        g.may_write_rule(None, &all),
        Err(Refusal::RuleGrants(_))
    ));
    let within = rule(
        Principal::User("ms.khan".into()),
        &["access.manage"],
        &[(5, Access::View)],
        false,
    );
    assert_eq!(g.may_write_rule(None, &within), Ok(()));
    let mut theirs = rules[1].clone();
    theirs.id = 2;
    assert!(matches!(
        g.may_delete_rule(&theirs),
        Err(Refusal::ExistingRule { id: 2, .. })
    ));
    assert!(
        g.may_write_rule(Some(&theirs), &within).is_err(),
        "cannot rewrite a rule above oneself"
    );
    // An account that rules already name, or whose directory groups carry rights.
    assert!(matches!(
        g.may_create_account(&rules, "HEAD", &[], false),
        Err(Refusal::Account { .. })
    ));
    assert!(g
        .may_create_account(&rules, "new", &["admins".into()], false)
        .is_err());
    assert_eq!(
        g.may_create_account(&rules, "new", &[], true),
        Err(Refusal::AdminOnly)
    );
    assert_eq!(
        g.may_create_account(&rules, "new", &["Year 9".into()], false),
        Ok(())
    );
    // Group 5 is controlled by rules: moving computers into it needs control of every computer.
    assert_eq!(
        g.may_change_members(&rules, 5),
        Err(Refusal::GroupMembers {
            group: 5,
            wanted: Access::Control,
            held: Access::None
        })
    );
    assert_eq!(
        g.may_change_members(&rules, 6),
        Ok(()),
        "no rule gives access to group 6"
    );
    // Rights at one computer are not rights to grant.
    let desk = vec![rule(
        Principal::Computer("10.0.0.0/8".into()),
        &["access.manage", "audit.view"],
        &[],
        false,
    )];
    let held = account_rights(&desk, "mgr", &[], false);
    let g = Granter {
        username: "mgr",
        held: &held,
        entire_network: Some(ENTIRE),
    };
    assert!(g
        .may_write_rule(
            None,
            &rule(Principal::User("mgr".into()), &["audit.view"], &[], false)
        )
        .is_err());
}

#[test]
fn administrators_may_do_anything() {
    let rules = vec![rule(
        Principal::DirectoryGroup("x".into()),
        &["audit.view"],
        &[(3, Access::Control)],
        true,
    )];
    let admin = Rights {
        all: true,
        bypass_privacy: true,
        ..Rights::default()
    };
    let g = Granter {
        username: "root",
        held: &admin,
        entire_network: Some(ENTIRE),
    };
    assert_eq!(
        g.may_set_memberships(&rules, "root", &[], &["x".into()]),
        Ok(())
    );
    assert_eq!(
        g.may_create_account(&rules, "a", &["x".into()], true),
        Ok(())
    );
    assert_eq!(g.may_change_members(&rules, 3), Ok(()));
    assert_eq!(g.may_control_group(None), Ok(()));
    assert_eq!(g.may_write_rule(Some(&rules[0]), &rules[0]), Ok(()));
}

#[test]
fn group_settings_members_and_priority_need_control_of_the_group() {
    let held = rights(
        &["groups.manage"],
        &[(3, Access::Control), (4, Access::View)],
        false,
    );
    let g = Granter {
        username: "t",
        held: &held,
        entire_network: Some(ENTIRE),
    };
    assert_eq!(g.may_control_group(Some(3)), Ok(()));
    let refused = |group, held| Err(Refusal::GroupControl { group, held });
    assert_eq!(g.may_control_group(Some(4)), refused(4, Access::View));
    assert_eq!(g.may_control_group(Some(5)), refused(5, Access::None));
    assert_eq!(
        g.may_control_group(Some(ENTIRE)),
        refused(ENTIRE, Access::None)
    );
    // A new group: only control of Entire Network covers it.
    assert_eq!(
        g.may_control_group(None),
        Err(Refusal::NewGroup { held: Access::None })
    );
    let everywhere = rights(&["groups.manage"], &[(ENTIRE, Access::Control)], false);
    let it = Granter {
        held: &everywhere,
        ..g
    };
    for group in [Some(3), Some(5), Some(ENTIRE), None] {
        assert_eq!(it.may_control_group(group), Ok(()));
    }
    assert_eq!(
        Refusal::GroupControl {
            group: 4,
            held: Access::View
        }
        .code(),
        "group_control_needed"
    );
}

#[test]
fn refusals_have_distinct_codes_and_readable_messages() {
    let r = Refusal::GroupMembers {
        group: 4,
        wanted: Access::Control,
        held: Access::View,
    };
    assert_eq!(r.code(), "group_access_beyond_your_rights");
    assert_eq!(
        r.to_string(),
        "access rules give control access to group 4, so changing its members needs control access to Entire Network (you have view)"
    );
    let e = Refusal::RuleGrants(Excess::Feature("audit.view".into()));
    assert_eq!(
        e.to_string(),
        "this rule would grant the \"audit.view\" right, which you do not hold"
    );
}

// ---- The model ----

/// Account names: the first four exist at the start ("actor" acts); the rest
/// can be created (directory entries may name them before they exist). "Carol"
/// differs from "carol" only in case, as rules compare names.
const NAMES: &[&str] = &["actor", "alice", "bob", "carol", "dave", "erin", "Carol"];
const EXISTING: usize = 4;
const DIRS: &[&str] = &["staff", "IT", "year9"];
const COMPUTERS: &[&str] = &["10.0.0.5", "10.0.0.0/8", "192.168.1.9"];
const FEATURES_USED: &[&str] = &[
    "devices.view",
    "command.lock",
    "access.manage",
    "directory.manage",
    "groups.manage",
    "audit.view",
];
/// Groups 2 to 4 can be edited, deleted and recreated; 1 is Entire Network.
const GROUPS: std::ops::RangeInclusive<i64> = 2..=4;
const DEVICES: u8 = 6;

fn addresses() -> Vec<Option<IpAddr>> {
    vec![
        None,
        Some("10.0.0.5".parse().unwrap()),
        Some("10.9.9.9".parse().unwrap()),
        Some("192.168.1.9".parse().unwrap()),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    /// Act as the i-th account the actor controls.
    ActAs(usize),
    CreateRule(AccessRule),
    UpdateRule(usize, AccessRule),
    DeleteRule(usize),
    SetMemberships(usize, Vec<String>),
    CreateAccount(usize),
    SetMembers(i64, BTreeSet<u8>),
    DeleteGroup(i64),
    /// Recreate a deleted group (SQLite may give it the old id again).
    CreateGroup(i64, BTreeSet<u8>),
}

#[derive(Debug, Clone)]
struct World {
    rules: Vec<AccessRule>,
    next_rule: i64,
    directory: BTreeMap<String, Vec<String>>,
    /// Devices per group; Entire Network holds them all and is not listed.
    members: BTreeMap<i64, BTreeSet<u8>>,
    accounts: BTreeSet<String>,
    /// Accounts whose password the actor knows.
    controlled: Vec<String>,
    acting: usize,
}

/// Effective rights as a user experiences them: features, bypass, and access
/// to each device.
#[derive(Debug, PartialEq)]
struct Effective {
    features: BTreeSet<String>,
    bypass: bool,
    devices: Vec<Access>,
}

impl Effective {
    fn within(&self, other: &Effective) -> bool {
        self.features.is_subset(&other.features)
            && (!self.bypass || other.bypass)
            && self.devices.iter().zip(&other.devices).all(|(a, b)| a <= b)
    }
}

impl World {
    fn dirs(&self, user: &str) -> Vec<String> {
        self.directory
            .get(&user.to_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    fn effective(&self, user: &str, address: Option<IpAddr>) -> Effective {
        let dirs = self.dirs(user);
        let r = rights_for(
            &self.rules,
            &Caller {
                username: user,
                address,
                directory_groups: &dirs,
                admin: false,
            },
        );
        let devices = (0..DEVICES)
            .map(|d| {
                std::iter::once(ENTIRE)
                    .chain(
                        self.members
                            .iter()
                            .filter(|(_, m)| m.contains(&d))
                            .map(|(g, _)| *g),
                    )
                    .filter_map(|g| r.group_access.get(&g).copied())
                    .max()
                    .unwrap_or_default()
            })
            .collect();
        Effective {
            features: r.features,
            bypass: r.bypass_privacy,
            devices,
        }
    }

    fn groups_exist(&self, r: &AccessRule) -> bool {
        r.group_access
            .keys()
            .all(|g| *g == ENTIRE || self.members.contains_key(g))
    }

    /// Applies `op` as the acting account if the delegation rule allows it.
    /// Returns whether it was applied.
    fn apply(&mut self, op: &Op) -> bool {
        let who = self.controlled[self.acting].clone();
        let held = account_rights(&self.rules, &who, &self.dirs(&who), false);
        let g = Granter {
            username: &who,
            held: &held,
            entire_network: Some(ENTIRE),
        };
        match op {
            Op::ActAs(i) => {
                self.acting = i % self.controlled.len();
                true
            }
            // The API refuses rules naming groups that do not exist.
            Op::CreateRule(r) | Op::UpdateRule(_, r) if !self.groups_exist(r) => false,
            Op::CreateRule(r) => {
                let ok = g.may_write_rule(None, r).is_ok();
                if ok {
                    let mut r = r.clone();
                    r.id = self.next_rule;
                    self.next_rule += 1;
                    self.rules.push(r);
                }
                ok
            }
            Op::UpdateRule(i, r) if !self.rules.is_empty() => {
                let i = i % self.rules.len();
                let ok = g.may_write_rule(Some(&self.rules[i]), r).is_ok();
                if ok {
                    let id = self.rules[i].id;
                    self.rules[i] = AccessRule { id, ..r.clone() };
                }
                ok
            }
            Op::DeleteRule(i) if !self.rules.is_empty() => {
                let i = i % self.rules.len();
                let ok = g.may_delete_rule(&self.rules[i]).is_ok();
                if ok {
                    self.rules.remove(i);
                }
                ok
            }
            Op::SetMemberships(u, groups) => {
                let user = NAMES[u % NAMES.len()];
                let ok = g
                    .may_set_memberships(&self.rules, user, &self.dirs(user), groups)
                    .is_ok();
                if ok {
                    self.directory.insert(user.to_lowercase(), groups.clone());
                }
                ok
            }
            Op::CreateAccount(u) => {
                let user = NAMES[u % NAMES.len()];
                let ok = !self.accounts.contains(user)
                    && g.may_create_account(&self.rules, user, &self.dirs(user), false)
                        .is_ok();
                if ok {
                    self.accounts.insert(user.to_string());
                    self.controlled.push(user.to_string());
                }
                ok
            }
            Op::SetMembers(group, devices) if self.members.contains_key(group) => {
                let ok = g.may_change_members(&self.rules, *group).is_ok();
                if ok {
                    self.members.insert(*group, devices.clone());
                }
                ok
            }
            Op::DeleteGroup(group) if self.members.contains_key(group) => {
                // As the store does: a deleted group leaves no access behind.
                self.members.remove(group);
                for r in &mut self.rules {
                    r.group_access.remove(group);
                }
                true
            }
            Op::CreateGroup(group, devices) if !self.members.contains_key(group) => {
                self.members.insert(*group, devices.clone());
                true
            }
            _ => false,
        }
    }
}

fn principal() -> impl Strategy<Value = Principal> {
    prop_oneof![
        (0..NAMES.len()).prop_map(|i| Principal::User(NAMES[i].to_string())),
        (0..DIRS.len()).prop_map(|i| Principal::DirectoryGroup(DIRS[i].to_string())),
        (0..COMPUTERS.len()).prop_map(|i| Principal::Computer(COMPUTERS[i].to_string())),
    ]
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        Just(Access::None),
        Just(Access::View),
        Just(Access::Control)
    ]
}

fn any_rule() -> impl Strategy<Value = AccessRule> {
    (
        principal(),
        proptest::sample::subsequence(FEATURES_USED.to_vec(), 0..=FEATURES_USED.len()),
        proptest::collection::btree_map(1i64..=4, access(), 0..3),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(principal, f, group_access, bypass_privacy)| AccessRule {
            id: 0,
            principal,
            features: f.into_iter().map(str::to_string).collect(),
            group_access,
            bypass_privacy,
        })
}

fn dir_list() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(DIRS.to_vec(), 0..=DIRS.len()).prop_map(|v| {
        // Sometimes in another case: memberships compare without case.
        v.into_iter()
            .map(|d| {
                if d.len() % 2 == 0 {
                    d.to_uppercase()
                } else {
                    d.to_string()
                }
            })
            .collect()
    })
}

fn devices() -> impl Strategy<Value = BTreeSet<u8>> {
    proptest::collection::btree_set(0..DEVICES, 0..=DEVICES as usize)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0usize..4).prop_map(Op::ActAs),
        3 => any_rule().prop_map(Op::CreateRule),
        2 => (any::<usize>(), any_rule()).prop_map(|(i, r)| Op::UpdateRule(i, r)),
        1 => any::<usize>().prop_map(Op::DeleteRule),
        3 => (any::<usize>(), dir_list()).prop_map(|(u, d)| Op::SetMemberships(u, d)),
        2 => any::<usize>().prop_map(Op::CreateAccount),
        2 => (GROUPS, devices()).prop_map(|(g, d)| Op::SetMembers(g, d)),
        1 => (GROUPS).prop_map(Op::DeleteGroup),
        1 => (GROUPS, devices()).prop_map(|(g, d)| Op::CreateGroup(g, d)),
    ]
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec(any_rule(), 0..8),
        proptest::collection::btree_map(0..NAMES.len(), dir_list(), 0..NAMES.len()),
        proptest::collection::btree_map(GROUPS, devices(), 0..=3),
    )
        .prop_map(|(mut rules, dirs, members)| {
            for (i, r) in rules.iter_mut().enumerate() {
                r.id = i as i64 + 1;
                r.group_access
                    .retain(|g, _| *g == ENTIRE || members.contains_key(g));
            }
            World {
                next_rule: rules.len() as i64 + 1,
                rules,
                directory: dirs
                    .into_iter()
                    .map(|(u, d)| (NAMES[u].to_lowercase(), d))
                    .collect(),
                members,
                accounts: NAMES[..EXISTING].iter().map(|s| s.to_string()).collect(),
                controlled: vec!["actor".into()],
                acting: 0,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the actor (a non-administrator, holding any rights, and acting
    /// through any account it creates) does, no account it controls ever holds,
    /// at any address, more than the actor held there at the start.
    #[test]
    fn no_sequence_of_changes_raises_the_actor(mut w in world(), ops in proptest::collection::vec(op(), 1..40)) {
        let start: Vec<Effective> = addresses().into_iter().map(|a| w.effective("actor", a)).collect();
        for op in &ops {
            w.apply(op);
            for account in &w.controlled {
                for (a, before) in addresses().into_iter().zip(&start) {
                    let now = w.effective(account, a);
                    prop_assert!(now.within(before), "{account} at {a:?} rose from {before:?} to {now:?} after {op:?}\nworld: {w:?}");
                }
            }
        }
    }

    /// The rule is not "refuse everything": an actor holding a right can hand
    /// any part of it to someone else.
    #[test]
    fn any_part_of_ones_rights_can_be_granted(r in any_rule(), to in principal()) {
        let mut own = r.clone();
        own.principal = Principal::User("actor".into());
        let rules = vec![own];
        let held = account_rights(&rules, "actor", &[], false);
        let g = Granter { username: "actor", held: &held, entire_network: Some(ENTIRE) };
        let part = AccessRule { principal: to, features: r.features.iter().take(2).cloned().collect(), ..r };
        prop_assert_eq!(g.may_write_rule(None, &part), Ok(()));
    }
}
