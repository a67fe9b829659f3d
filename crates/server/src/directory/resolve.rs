//! From what the directory listed to who is in which group (nested groups
//! followed, cycles safe), and from that to what a sync would change. No I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use lectern_store::directory::{DirAccount, SyncWrite};
use serde::Serialize;

/// A user as the directory listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirUser {
    /// Distinguished name.
    pub dn: String,
    /// Login name.
    pub name: String,
    /// `memberOf` values (AD, or OpenLDAP's overlay).
    pub member_of: Vec<String>,
    /// Disabled (AD flag, or OpenLDAP's filter or OU).
    pub disabled: bool,
}

/// A group as the directory listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGroup {
    /// Distinguished name.
    pub dn: String,
    /// Its `cn`: the name groups and rules use.
    pub name: String,
    /// `member` / `uniqueMember` values: users and groups.
    pub members: Vec<String>,
    /// `memberOf` values (AD): the groups this group is in.
    pub member_of: Vec<String>,
}

/// Everything one read of the directory returned.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Users.
    pub users: Vec<DirUser>,
    /// Groups.
    pub groups: Vec<DirGroup>,
}

/// A DN compared the way directories do for our purposes: case and the
/// spaces around separators do not matter.
pub fn norm_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| rdn.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

impl Snapshot {
    /// Each known group's direct parents (the groups listing it as a member,
    /// or named in its `memberOf`), by normalised DN, for users and groups.
    fn parents(&self) -> HashMap<String, Vec<String>> {
        let known: HashSet<String> = self.groups.iter().map(|g| norm_dn(&g.dn)).collect();
        let mut parents: HashMap<String, Vec<String>> = HashMap::new();
        for g in &self.groups {
            let gdn = norm_dn(&g.dn);
            for m in &g.members {
                parents.entry(norm_dn(m)).or_default().push(gdn.clone());
            }
            for p in g.member_of.iter().map(|p| norm_dn(p)) {
                if known.contains(&p) {
                    parents.entry(gdn.clone()).or_default().push(p);
                }
            }
        }
        for u in &self.users {
            for p in u.member_of.iter().map(|p| norm_dn(p)) {
                if known.contains(&p) {
                    parents.entry(norm_dn(&u.dn)).or_default().push(p);
                }
            }
        }
        parents
    }

    /// Every user's groups by name, directly or through nested groups: a user
    /// in A, which is in B, is in B. Each group is visited once per user, so
    /// cycles end. Disabled users are included (with their groups).
    pub fn memberships(&self) -> BTreeMap<String, BTreeSet<String>> {
        let parents = self.parents();
        let names: HashMap<String, &str> = self
            .groups
            .iter()
            .map(|g| (norm_dn(&g.dn), g.name.as_str()))
            .collect();
        let mut out = BTreeMap::new();
        for u in &self.users {
            let mut seen: HashSet<String> = HashSet::new();
            let mut todo = vec![norm_dn(&u.dn)];
            while let Some(dn) = todo.pop() {
                for p in parents.get(&dn).into_iter().flatten() {
                    if seen.insert(p.clone()) {
                        todo.push(p.clone());
                    }
                }
            }
            let groups = seen
                .iter()
                .filter_map(|dn| names.get(dn).map(|n| n.to_string()))
                .collect();
            out.insert(u.name.clone(), groups);
        }
        out
    }
}

/// One user's membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipChange {
    /// The user.
    pub username: String,
    /// Groups joined.
    pub added: Vec<String>,
    /// Groups left.
    pub removed: Vec<String>,
}

/// What a sync changes (or, in a dry run, would change).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Users the directory lists.
    pub users: usize,
    /// Groups the directory lists.
    pub groups: usize,
    /// Accounts the directory lists that were not known before.
    pub added: Vec<String>,
    /// Known accounts the directory no longer lists: they lose their groups
    /// and console access.
    pub removed: Vec<String>,
    /// Accounts the directory now marks disabled: they lose their groups and
    /// console access.
    pub disabled: Vec<String>,
    /// Disabled accounts the directory lists as enabled again.
    pub enabled: Vec<String>,
    /// Group changes of enabled accounts.
    pub memberships: Vec<MembershipChange>,
    /// Directory accounts whose name a local console account holds: left
    /// alone (no groups from the directory), as sign-in leaves them to the
    /// local account.
    pub local_names: Vec<String>,
}

impl Plan {
    /// Whether the sync changes nothing.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.disabled.is_empty()
            && self.enabled.is_empty()
            && self.memberships.is_empty()
    }
}

/// Compares the directory with what the store holds: `accounts` seen before,
/// `current` memberships (user name, any case, to groups) and the names of
/// `local` console accounts (which the directory never feeds).
pub fn plan(
    snap: &Snapshot,
    accounts: &[DirAccount],
    current: &[(String, Vec<String>)],
    local: &[String],
) -> (Plan, SyncWrite) {
    let local: HashSet<String> = local.iter().map(|n| n.to_lowercase()).collect();
    let known: HashMap<String, &DirAccount> = accounts
        .iter()
        .map(|a| (a.username.to_lowercase(), a))
        .collect();
    let current: HashMap<String, BTreeSet<String>> = current
        .iter()
        .map(|(u, g)| (u.to_lowercase(), g.iter().cloned().collect()))
        .collect();
    let groups = snap.memberships();
    let mut p = Plan {
        users: snap.users.len(),
        groups: snap.groups.len(),
        ..Default::default()
    };
    let mut w = SyncWrite::default();
    let mut listed = HashSet::new();
    for u in &snap.users {
        let key = u.name.to_lowercase();
        if !listed.insert(key.clone()) {
            continue; // the same login twice: the first entry wins
        }
        if local.contains(&key) {
            p.local_names.push(u.name.clone());
            continue;
        }
        let was = known.get(&key);
        let was_off = was.is_some_and(|a| a.disabled);
        match (was, u.disabled) {
            (None, _) => p.added.push(u.name.clone()),
            (Some(_), true) if !was_off => p.disabled.push(u.name.clone()),
            (Some(_), false) if was_off => p.enabled.push(u.name.clone()),
            _ => {}
        }
        let want: BTreeSet<String> = match u.disabled {
            true => BTreeSet::new(),
            false => groups.get(&u.name).cloned().unwrap_or_default(),
        };
        let have = current.get(&key).cloned().unwrap_or_default();
        if want != have && !u.disabled {
            p.memberships.push(MembershipChange {
                username: u.name.clone(),
                added: want.difference(&have).cloned().collect(),
                removed: have.difference(&want).cloned().collect(),
            });
        }
        w.accounts.push((
            u.name.clone(),
            u.dn.clone(),
            u.disabled,
            want.into_iter().collect(),
        ));
    }
    for a in accounts {
        if !listed.contains(&a.username.to_lowercase()) {
            if !a.missing {
                p.removed.push(a.username.clone());
            }
            w.missing.push(a.username.clone());
        }
    }
    w.groups = snap
        .groups
        .iter()
        .map(|g| (g.name.clone(), g.dn.clone()))
        .collect();
    (p, w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, disabled: bool) -> DirUser {
        DirUser {
            dn: format!("uid={name},ou=people,dc=s"),
            name: name.into(),
            member_of: vec![],
            disabled,
        }
    }

    fn group(name: &str, members: &[&str]) -> DirGroup {
        DirGroup {
            dn: format!("cn={name},ou=groups,dc=s"),
            name: name.into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            member_of: vec![],
        }
    }

    #[test]
    fn nested_groups_are_followed_and_cycles_end() {
        let snap = Snapshot {
            users: vec![user("amy", false), user("bob", false)],
            groups: vec![
                group("Teachers", &["UID=amy, ou=people,dc=s"]),
                group("Staff", &["cn=Teachers,ou=groups,dc=s"]),
                // A cycle: Staff is in Everyone, Everyone in Staff.
                group("Everyone", &["cn=Staff,ou=groups,dc=s"]),
                group("Loop", &["cn=Everyone,ou=groups,dc=s"]),
            ],
        };
        let mut snap = snap;
        snap.groups[1].members.push("cn=Loop,ou=groups,dc=s".into());
        let m = snap.memberships();
        let amy: Vec<_> = m["amy"].iter().cloned().collect();
        assert_eq!(amy, ["Everyone", "Loop", "Staff", "Teachers"]);
        assert!(m["bob"].is_empty());
    }

    #[test]
    fn ad_member_of_counts_for_users_and_groups() {
        let mut u = user("amy", false);
        u.member_of = vec!["cn=Teachers,ou=groups,dc=s".into()];
        let mut t = group("Teachers", &[]);
        t.member_of = vec!["cn=Staff,ou=groups,dc=s".into()];
        let snap = Snapshot {
            users: vec![u],
            groups: vec![t, group("Staff", &[])],
        };
        assert_eq!(snap.memberships()["amy"].len(), 2);
    }

    #[test]
    fn plan_reports_every_kind_of_change() {
        let snap = Snapshot {
            users: vec![
                user("amy", false),
                user("bob", true),
                user("cat", false),
                user("eve", false),
            ],
            groups: vec![group("Staff", &["uid=amy,ou=people,dc=s"])],
        };
        let acc = |n: &str, disabled: bool| DirAccount {
            username: n.into(),
            dn: String::new(),
            disabled,
            missing: false,
            user_id: None,
        };
        let accounts = [acc("amy", true), acc("bob", false), acc("dan", false)];
        let current = [("dan".to_string(), vec!["Staff".to_string()])];
        let (p, w) = plan(&snap, &accounts, &current, &["Eve".to_string()]);
        assert_eq!(p.added, ["cat"]);
        assert_eq!(p.disabled, ["bob"]);
        assert_eq!(p.enabled, ["amy"]);
        assert_eq!(p.removed, ["dan"]);
        assert_eq!(p.memberships.len(), 1);
        assert_eq!(p.memberships[0].added, ["Staff"]);
        assert_eq!(w.missing, ["dan"]);
        assert_eq!(p.local_names, ["eve"]);
        assert_eq!(w.accounts.len(), 3);
    }
}
