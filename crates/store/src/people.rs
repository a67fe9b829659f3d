//! People and their aliases: one identity per person, whatever names they
//! arrive under. Directory sync and rosters add aliases of their own kinds;
//! resolution only ever looks at the values.

use crate::sql::{in_tx, Sql};
use serde::{Deserialize, Serialize};

use crate::{now_ms, Result, SchoolId, StoreError};

/// Where a name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasKind {
    /// A login name on a desktop (what the agent reports).
    OsLogin,
    /// An e-mail address (what a browser signed in to a school account reports).
    Email,
    /// A name in the school's directory.
    Directory,
    /// An id on a class roster.
    Roster,
}

impl AliasKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AliasKind::OsLogin => "os_login",
            AliasKind::Email => "email",
            AliasKind::Directory => "directory",
            AliasKind::Roster => "roster",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "os_login" => AliasKind::OsLogin,
            "email" => AliasKind::Email,
            "directory" => AliasKind::Directory,
            "roster" => AliasKind::Roster,
            _ => return None,
        })
    }
}

/// One of a person's names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// Where the name comes from.
    pub kind: AliasKind,
    /// The name (compared case-insensitively).
    pub value: String,
}

/// A person with every name they are known by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Id (0 before it is stored).
    pub id: i64,
    /// The name consoles show.
    pub display_name: String,
    /// Their names, sorted by kind then value.
    pub aliases: Vec<Alias>,
}

impl Person {
    /// Every name of this person.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.aliases.iter().map(|a| a.value.as_str())
    }
}

fn alias_kind(kind: &str) -> Result<AliasKind> {
    AliasKind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("alias kind {kind:?}")))
}

pub(crate) fn list_people(db: &mut dyn Sql, school: SchoolId) -> Result<Vec<Person>> {
    let mut people: Vec<Person> = db
        .query(
            "SELECT id, display_name FROM people WHERE school_id = ?1 ORDER BY display_name, id",
            &[&school],
        )?
        .iter()
        .map(|r| {
            Ok(Person {
                id: r.get(0)?,
                display_name: r.get(1)?,
                aliases: Vec::new(),
            })
        })
        .collect::<Result<_>>()?;
    let rows = db.query(
        "SELECT person_id, kind, value FROM person_aliases WHERE school_id = ?1
         ORDER BY person_id, kind, value",
        &[&school],
    )?;
    let index: std::collections::HashMap<i64, usize> =
        people.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    for row in rows {
        let (pid, kind, value): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let kind = alias_kind(&kind)?;
        if let Some(&i) = index.get(&pid) {
            people[i].aliases.push(Alias { kind, value });
        }
    }
    for p in &mut people {
        p.aliases.sort();
    }
    Ok(people)
}

pub(crate) fn get_person(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<Option<Person>> {
    let Some(found) = db.query_opt(
        "SELECT display_name FROM people WHERE school_id = ?1 AND id = ?2",
        &[&school, &id],
    )?
    else {
        return Ok(None);
    };
    let mut aliases = db
        .query(
            "SELECT kind, value FROM person_aliases WHERE school_id = ?1 AND person_id = ?2",
            &[&school, &id],
        )?
        .iter()
        .map(|r| {
            Ok(Alias {
                kind: alias_kind(&r.get::<String>(0)?)?,
                value: r.get(1)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    aliases.sort();
    Ok(Some(Person {
        id,
        display_name: found.get(0)?,
        aliases,
    }))
}

/// Creates (`person.id == 0`) or replaces a person with their aliases, in one
/// transaction. A name another person already holds is refused with
/// [`StoreError::Exists`] and nothing changes. `None`: no such person.
pub(crate) fn save_person(
    db: &mut dyn Sql,
    school: SchoolId,
    person: &Person,
) -> Result<Option<Person>> {
    let saved = in_tx(db, |db| {
        let id: i64 = if person.id == 0 {
            db.insert_id(
                "INSERT INTO people (school_id, display_name, created_at) VALUES (?1, ?2, ?3)
                 RETURNING id",
                &[&school, &person.display_name, &now_ms()],
            )?
        } else {
            let n = db.execute(
                "UPDATE people SET display_name = ?3 WHERE school_id = ?1 AND id = ?2",
                &[&school, &person.id, &person.display_name],
            )?;
            if n == 0 {
                return Ok(None);
            }
            db.execute(
                "DELETE FROM person_aliases WHERE school_id = ?1 AND person_id = ?2",
                &[&school, &person.id],
            )?;
            person.id
        };
        for a in &person.aliases {
            let added = db.execute(
                "INSERT INTO person_aliases (school_id, person_id, kind, value) VALUES (?1, ?2, ?3, ?4)",
                &[&school, &id, &a.kind.as_str(), &a.value],
            );
            match added {
                Ok(_) => {}
                Err(e) if e.taken() => {
                    return Err(StoreError::Exists(format!("the name {:?}", a.value)))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Some(id))
    })?;
    match saved {
        Some(id) => get_person(db, school, id),
        None => Ok(None),
    }
}

pub(crate) fn delete_person(db: &mut dyn Sql, school: SchoolId, id: i64) -> Result<bool> {
    in_tx(db, |db| {
        db.execute(
            "DELETE FROM person_aliases WHERE school_id = ?1 AND person_id = ?2",
            &[&school, &id],
        )?;
        Ok(db.execute(
            "DELETE FROM people WHERE school_id = ?1 AND id = ?2",
            &[&school, &id],
        )? > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, Store};

    fn store() -> (tempfile::TempDir, SqliteStore, SchoolId) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let school = s.create_school("Test School").unwrap();
        (dir, s, school)
    }

    fn alias(kind: AliasKind, value: &str) -> Alias {
        Alias {
            kind,
            value: value.into(),
        }
    }

    fn person(name: &str, aliases: Vec<Alias>) -> Person {
        Person {
            id: 0,
            display_name: name.into(),
            aliases,
        }
    }

    #[test]
    fn people_keep_their_aliases_and_update_whole() {
        let (_d, s, school) = store();
        let zoe = s
            .save_person(
                school,
                &person(
                    "Zoe Ng",
                    vec![
                        alias(AliasKind::OsLogin, "zoe"),
                        alias(AliasKind::Email, "zoe@school.example"),
                    ],
                ),
            )
            .unwrap()
            .unwrap();
        assert!(zoe.id > 0);
        assert_eq!(zoe.aliases.len(), 2);
        let mut changed = zoe.clone();
        changed.display_name = "Zoë Ng".into();
        changed.aliases = vec![alias(AliasKind::Roster, "R-17")];
        let after = s.save_person(school, &changed).unwrap().unwrap();
        assert_eq!(after.display_name, "Zoë Ng");
        assert_eq!(after.aliases, vec![alias(AliasKind::Roster, "R-17")]);
        assert_eq!(s.list_people(school).unwrap(), vec![after.clone()]);
        let mut ghost = after.clone();
        ghost.id = 999;
        assert!(s.save_person(school, &ghost).unwrap().is_none());
        assert!(s.delete_person(school, after.id).unwrap());
        assert!(s.list_people(school).unwrap().is_empty());
        assert!(!s.delete_person(school, after.id).unwrap());
    }

    #[test]
    fn a_name_belongs_to_one_person_per_school_whatever_its_case() {
        let (_d, s, school) = store();
        let other_school = s.create_school("Other").unwrap();
        s.save_person(
            school,
            &person("Zoe", vec![alias(AliasKind::OsLogin, "zoe")]),
        )
        .unwrap()
        .unwrap();
        let clash = s.save_person(
            school,
            &person(
                "Imposter",
                vec![
                    alias(AliasKind::Email, "imp@school.example"),
                    alias(AliasKind::Directory, "ZOE"),
                ],
            ),
        );
        assert!(matches!(clash, Err(StoreError::Exists(_))), "{clash:?}");
        // Nothing of the refused person was kept.
        assert_eq!(s.list_people(school).unwrap().len(), 1);
        // Another school may use the same name for its own pupil.
        s.save_person(
            other_school,
            &person("Zoe B", vec![alias(AliasKind::OsLogin, "zoe")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.list_people(other_school).unwrap().len(), 1);
        // Schools never see each other's people.
        let theirs = s.list_people(other_school).unwrap()[0].id;
        assert!(s.get_person(school, theirs).unwrap().is_none());
        assert!(!s.delete_person(school, theirs).unwrap());
    }

    #[test]
    fn activity_and_violations_record_the_person_of_the_reported_name() {
        let (_d, s, school) = store();
        let zoe = s
            .save_person(
                school,
                &person(
                    "Zoe Ng",
                    vec![alias(AliasKind::Email, "zoe@school.example")],
                ),
            )
            .unwrap()
            .unwrap();
        let event = |user: &str| lectern_proto::ActivityEvent {
            kind: "web".into(),
            url: Some("https://example.org/".into()),
            user: Some(user.into()),
            at: 1,
            ..Default::default()
        };
        s.add_activity(
            school,
            1,
            None,
            &[event("ZOE@school.example"), event("sam")],
        )
        .unwrap();
        let rows = s
            .activity(
                school,
                &crate::ActivityFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        let of = |u: &str| rows.iter().find(|r| r.user.as_deref() == Some(u)).unwrap();
        assert_eq!(of("ZOE@school.example").person_id, Some(zoe.id));
        assert_eq!(of("ZOE@school.example").person.as_deref(), Some("Zoe Ng"));
        assert_eq!(of("sam").person_id, None);
        let v = crate::Violation {
            id: 0,
            device_id: 1,
            user: Some("zoe@school.example".into()),
            term: "t".into(),
            category: "c".into(),
            severity: 3,
            matched: "t".into(),
            context: "t".into(),
            source: "text".into(),
            action: "log".into(),
            screenshots: 0,
            at: 1,
            // What a caller claims is ignored: the store looks the name up.
            person_id: Some(999),
            person: Some("Someone else".into()),
            retrospective: false,
        };
        let id = s.add_violation(school, &v).unwrap();
        let stored = s.violation(school, id).unwrap().unwrap();
        assert_eq!(stored.person_id, Some(zoe.id));
        assert_eq!(stored.person.as_deref(), Some("Zoe Ng"));
        // The reported name is kept as reported.
        assert_eq!(stored.user.as_deref(), Some("zoe@school.example"));
    }
}
