//! Schools on one server, for its operator (issue 16): adding a school
//! with its first administrator and code, and granting a user of one school
//! the right to act in others (a trust-level administrator). These run
//! from the command line (`lectern-server school …`, `trust …`) by whoever
//! owns the data directory, never from the console: no console user can
//! make a school or widen their own reach. Each change is audited in the
//! schools it touches.

use lectern_proto::schoolcode;
use lectern_store::{now_ms, NewAudit, Role, School, SchoolId, Store};
use rand::RngCore;

/// A new, unused school code for `school` (replacing any before), in the
/// form people type (`7KQ2M-XH4PD`); `None` when no free one was found.
pub fn new_school_code(
    store: &dyn Store,
    school: SchoolId,
    by: &str,
) -> lectern_store::Result<Option<String>> {
    // 50 random bits: another school holding the same code is rare enough
    // that a few tries always find a free one.
    for _ in 0..8 {
        let mut bytes = [0u8; 7];
        rand::rng().fill_bytes(&mut bytes);
        let code = schoolcode::from_random(bytes);
        if store
            .school_codes()
            .set_school_code(school, Some(&code), by, now_ms())?
        {
            return Ok(Some(schoolcode::display(&code)));
        }
    }
    Ok(None)
}

/// What [`add_school`] made.
#[derive(Debug)]
pub struct NewSchool {
    /// The school.
    pub school: School,
    /// Its code for registering devices.
    pub code: String,
    /// The administrator's password, when it was generated.
    pub generated_password: Option<String>,
}

/// Adds a school with its first administrator and a school code. Its
/// groups, settings and libraries are the defaults until its administrator
/// changes them; a running server reads it on its first sign-in or device.
pub fn add_school(
    store: &dyn Store,
    name: &str,
    admin: &str,
    password: Option<String>,
) -> anyhow::Result<NewSchool> {
    let name = name.trim();
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 120,
        "the school's name must be 1 to 120 characters"
    );
    anyhow::ensure!(
        store.schools()?.iter().all(|s| s.name != name),
        "a school named {name:?} exists already"
    );
    let generated_password = password.is_none().then(lectern_store::generated_password);
    let password = password
        .or_else(|| generated_password.clone())
        .unwrap_or_default();
    anyhow::ensure!(
        password.chars().count() >= 8,
        "the admin password must be at least 8 characters"
    );
    let id = store.create_school(name)?;
    store.create_user(id, admin, &password, Role::Admin)?;
    let code = new_school_code(store, id, "cli")?
        .ok_or_else(|| anyhow::anyhow!("no free school code after 8 tries"))?;
    store.audit(&cli_audit(
        id,
        "school.create",
        format!("{name}, admin {admin}"),
    ))?;
    Ok(NewSchool {
        school: School {
            id,
            name: name.to_string(),
        },
        code,
        generated_password,
    })
}

/// Lets the user `username` of school `home` act in `school` with `role`.
pub fn grant(
    store: &dyn Store,
    home: SchoolId,
    username: &str,
    school: SchoolId,
    role: Role,
) -> anyhow::Result<()> {
    let user = user_id(store, home, username)?;
    anyhow::ensure!(
        store.grants().grant_school(user, school, role, "cli")?,
        "school {school} does not exist or is {username}'s own"
    );
    let detail = format!(
        "{username} of school {home} may act here as {}",
        role.as_str()
    );
    store.audit(&cli_audit(school, "school.grant", detail))?;
    let detail = format!("{username} may act in school {school} as {}", role.as_str());
    store.audit(&cli_audit(home, "school.grant", detail))?;
    Ok(())
}

/// Takes a grant back; the user's sessions in that school end.
pub fn revoke(
    store: &dyn Store,
    home: SchoolId,
    username: &str,
    school: SchoolId,
) -> anyhow::Result<()> {
    let user = user_id(store, home, username)?;
    anyhow::ensure!(
        store.grants().revoke_school(user, school)?,
        "{username} has no grant for school {school}"
    );
    let detail = format!("{username} of school {home}");
    store.audit(&cli_audit(school, "school.revoke", detail))?;
    Ok(())
}

fn user_id(store: &dyn Store, school: SchoolId, username: &str) -> anyhow::Result<i64> {
    Ok(store
        .accounts()
        .account(school, username)?
        .ok_or_else(|| anyhow::anyhow!("school {school} has no user {username:?}"))?
        .id)
}

fn cli_audit(school: SchoolId, action: &str, detail: String) -> NewAudit {
    NewAudit {
        school_id: school,
        actor: "cli".into(),
        address: None,
        action: action.into(),
        detail,
        devices: vec![],
        command_id: None,
        outcome: "ok".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_school_is_added_with_its_admin_and_code_and_a_user_is_granted_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = lectern_store::SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let trust = store.create_school("Trust Office").unwrap();
        store
            .create_user(trust, "ann", "password-1", Role::Admin)
            .unwrap();
        let hill = add_school(&store, " Hill Primary ", "head", None).unwrap();
        assert_eq!(hill.school.name, "Hill Primary");
        assert!(hill.generated_password.is_some());
        assert_eq!(hill.code.len(), 11, "{}", hill.code);
        let canonical = schoolcode::normalize(&hill.code).unwrap();
        let row = store.school_codes().school_code(hill.school.id).unwrap();
        assert_eq!(row.unwrap().code, canonical);
        // One name, one school; a short password is refused.
        assert!(add_school(&store, "Hill Primary", "x", None).is_err());
        assert!(add_school(&store, "Dale", "x", Some("short".into())).is_err());

        grant(&store, trust, "ann", hill.school.id, Role::Admin).unwrap();
        assert!(grant(&store, trust, "nobody", hill.school.id, Role::Admin).is_err());
        assert!(grant(&store, trust, "ann", trust, Role::Admin).is_err());
        let ann = store.accounts().account(trust, "ann").unwrap().unwrap();
        assert_eq!(store.grants().schools_of(ann.id).unwrap().len(), 2);
        revoke(&store, trust, "ann", hill.school.id).unwrap();
        assert!(revoke(&store, trust, "ann", hill.school.id).is_err());
    }
}
