//! Which keyword libraries apply to a device and its user: each library is
//! enabled or disabled per group, and the strongest group the subject is in
//! that says anything about a library decides, exactly as a setting is
//! resolved ([`Group::strength`]: priority, then kind, then the older group).
//! A library no matching group mentions does not apply.

use serde::Serialize;

use crate::groups::Group;

/// A library enabled (or disabled) for a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryGrant {
    /// The library.
    pub library_id: i64,
    /// The group.
    pub group_id: i64,
    /// False: turned off for the group's members.
    pub enabled: bool,
}

/// A library that applies, and the grant that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedLibrary {
    /// The library.
    pub library_id: i64,
    /// The deciding group.
    pub group_id: i64,
    /// Its name.
    pub group_name: String,
    /// The deciding grant's index in the list given.
    #[serde(skip)]
    pub grant: usize,
}

/// The libraries that apply to a subject in the groups `matching`, the one
/// decided by the strongest group first (then by library id). Grants for
/// groups not in `matching` are ignored.
pub fn resolve_libraries(matching: &[&Group], grants: &[LibraryGrant]) -> Vec<AppliedLibrary> {
    let strength = |gid: i64| matching.iter().find(|g| g.id == gid).map(|g| g.strength());
    let mut best: std::collections::BTreeMap<i64, (usize, &Group)> = Default::default();
    for (i, grant) in grants.iter().enumerate() {
        let Some(s) = strength(grant.group_id) else {
            continue;
        };
        let group = matching.iter().find(|g| g.id == grant.group_id).copied();
        let Some(group) = group else { continue };
        match best.get(&grant.library_id) {
            Some((_, g)) if g.strength() >= s => {}
            _ => {
                best.insert(grant.library_id, (i, group));
            }
        }
    }
    let mut out: Vec<(&Group, AppliedLibrary)> = best
        .into_iter()
        .filter(|(_, (i, _))| grants[*i].enabled)
        .map(|(lib, (i, g))| {
            (
                g,
                AppliedLibrary {
                    library_id: lib,
                    group_id: g.id,
                    group_name: g.name.clone(),
                    grant: i,
                },
            )
        })
        .collect();
    out.sort_by(|a, b| {
        b.0.strength()
            .cmp(&a.0.strength())
            .then(a.1.library_id.cmp(&b.1.library_id))
    });
    out.into_iter().map(|(_, a)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::{GroupKind, Priority};

    fn group(id: i64, kind: GroupKind, priority: Priority) -> Group {
        Group {
            id,
            name: format!("g{id}"),
            kind,
            priority,
            members: Vec::new(),
            settings: Default::default(),
        }
    }

    fn grant(library_id: i64, group_id: i64, enabled: bool) -> LibraryGrant {
        LibraryGrant {
            library_id,
            group_id,
            enabled,
        }
    }

    #[test]
    fn strongest_group_decides_each_library() {
        let en = group(1, GroupKind::EntireNetwork, Priority::Medium);
        let pupils = group(5, GroupKind::User, Priority::Medium);
        let lab = group(7, GroupKind::Computer, Priority::High);
        let matching = [&en, &pupils, &lab];
        let grants = [
            grant(10, 1, true),  // default everywhere
            grant(10, 5, false), // ... but off for pupils
            grant(11, 5, true),  // pupils' pack
            grant(12, 7, true),  // lab pack
            grant(13, 99, true), // a group the subject is not in
        ];
        let got = resolve_libraries(&matching, &grants);
        let ids: Vec<(i64, i64)> = got.iter().map(|a| (a.library_id, a.group_id)).collect();
        // Lab (High) first, then the user group.
        assert_eq!(ids, vec![(12, 7), (11, 5)]);
        assert_eq!(got[1].grant, 2);
        // Outside the user group the default applies again.
        let got = resolve_libraries(&[&en, &lab], &grants);
        let ids: Vec<i64> = got.iter().map(|a| a.library_id).collect();
        assert_eq!(ids, vec![12, 10]);
    }

    #[test]
    fn grant_order_does_not_matter() {
        let en = group(1, GroupKind::EntireNetwork, Priority::Medium);
        let a = group(5, GroupKind::User, Priority::Medium);
        let b = group(6, GroupKind::User, Priority::Medium);
        let grants = vec![grant(10, 5, true), grant(10, 6, false), grant(10, 1, true)];
        let mut rev = grants.clone();
        rev.reverse();
        let m = [&en, &a, &b];
        let x: Vec<_> = resolve_libraries(&m, &grants)
            .into_iter()
            .map(|a| (a.library_id, a.group_id))
            .collect();
        let y: Vec<_> = resolve_libraries(&m, &rev)
            .into_iter()
            .map(|a| (a.library_id, a.group_id))
            .collect();
        // The older group (5) wins on equal strength, whatever the order.
        assert_eq!(x, vec![(10, 5)]);
        assert_eq!(x, y);
    }
}
