//! The schools one device is registered with (issue 16 point 2): a
//! computer shared by two schools (a trust's sixth-form centre, a library
//! lent to a primary school) holds a credential for each, connects to one
//! at a time, and the student switches from the sign-in screen where the
//! school they are in allows it.
//!
//! On disk, the first registration is the state directory itself
//! (`credential.json`, `policy.json`, `events/`, `keywords.json`), as a
//! device registered with one school has always had it; the school of
//! line `n` of the school code file (n ≥ 2) is `schools/<n>/` beneath it,
//! with the same files. So one school's stored policy, keyword library and
//! activity waiting to be sent never reach another school's server, and a
//! line registers once: a school that makes a new code (the old one stops
//! working, its computers stay registered) changes nothing here when the
//! line is updated. `active-school` names the directory in use.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::StoredCredential;

/// Most schools one device registers with: a handful is what sharing
/// looks like, and the sign-in screen lists them all.
pub const MAX_SCHOOLS: usize = 4;

/// Where further registrations live, under the state directory.
const SUBDIR: &str = "schools";
/// Names the registration in use.
const ACTIVE_FILE: &str = "active-school";
/// In a line's directory: the hash of its code when the server refused it
/// for good (not tried again until the line changes).
const REFUSED_FILE: &str = "refused-code";
/// In a registration's directory: which credential its school refused for
/// good (revoked, or no longer known), as a hash of its server, device id
/// and secret. Only that credential: registering again there makes the
/// school usable again (even if a restored server hands out the same id).
const DROPPED_FILE: &str = "refused-device";

/// One school this device is registered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Its state directory (the policy, queue and keyword files go here).
    pub dir: PathBuf,
    /// Its credential.
    pub credential: StoredCredential,
}

/// The registrations under one state directory.
#[derive(Debug, Clone)]
pub struct Schools {
    root: PathBuf,
}

impl Schools {
    /// The registrations under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Schools {
            root: state_dir.to_path_buf(),
        }
    }

    /// Every registration: the first (the state directory) first, then the
    /// others in the order they were added. Unreadable ones are skipped
    /// (and logged): the device keeps working with the rest.
    pub fn all(&self) -> Vec<Registration> {
        let mut dirs = vec![(0, self.root.clone())];
        if let Ok(entries) = std::fs::read_dir(self.root.join(SUBDIR)) {
            for e in entries.flatten() {
                if let Some(n) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) {
                    dirs.push((n, e.path()));
                }
            }
        }
        dirs.sort();
        dirs.into_iter()
            .filter(|(_, d)| StoredCredential::path(d).exists())
            .filter_map(|(_, dir)| match StoredCredential::load(&dir) {
                Ok(credential) => Some(Registration { dir, credential }),
                Err(e) => {
                    tracing::error!("skipping the registration in {}: {e:#}", dir.display());
                    None
                }
            })
            .collect()
    }

    /// The registration in use: the one `active-school` names, else the
    /// first; one whose school refused this device is passed over while
    /// another is usable.
    pub fn active(&self) -> Option<Registration> {
        let all = self.all();
        let named = std::fs::read_to_string(self.root.join(ACTIVE_FILE))
            .ok()
            .map(|s| self.root.join(s.trim()));
        let named = named.and_then(|d| all.iter().find(|r| r.dir == d).cloned());
        named
            .clone()
            .filter(|r| !self.is_dropped(r))
            .or_else(|| all.iter().find(|r| !self.is_dropped(r)).cloned())
            .or(named)
            .or_else(|| all.into_iter().next())
    }

    /// Notes that `r`'s school refused this device for good: it is no
    /// longer offered, nor used while another school is.
    pub fn drop_registration(&self, r: &Registration) -> anyhow::Result<()> {
        write_atomic(
            &r.dir.join(DROPPED_FILE),
            credential_hash(&r.credential).as_bytes(),
        )
    }

    /// Whether `r`'s school refused this very credential for good.
    pub fn is_dropped(&self, r: &Registration) -> bool {
        std::fs::read_to_string(r.dir.join(DROPPED_FILE))
            .is_ok_and(|t| t.trim() == credential_hash(&r.credential))
    }

    /// Uses the registration of the school called `name` from now on (the
    /// first of that name whose school has not refused it, else the first
    /// of that name); `None` if there is none.
    pub fn activate(&self, name: &str) -> anyhow::Result<Option<Registration>> {
        let named: Vec<Registration> = self
            .all()
            .into_iter()
            .filter(|r| r.credential.school == name)
            .collect();
        let Some(r) = named
            .iter()
            .find(|r| !self.is_dropped(r))
            .or(named.first())
            .cloned()
        else {
            return Ok(None);
        };
        let rel = r
            .dir
            .strip_prefix(&self.root)
            .map_or_else(|_| PathBuf::from("."), Path::to_path_buf);
        let rel = if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel
        };
        write_atomic(
            &self.root.join(ACTIVE_FILE),
            rel.to_string_lossy().as_bytes(),
        )?;
        Ok(Some(r))
    }

    /// The names of the schools other than `active`'s, each once, in order
    /// (not those that refused this device).
    pub fn others(&self, active: &Registration) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in self.all().into_iter().filter(|r| !self.is_dropped(r)) {
            let name = r.credential.school;
            if name != active.credential.school && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// The directory of the school of line `line` (2 or more) of the
    /// school code file.
    fn line_dir(&self, line: usize) -> PathBuf {
        self.root.join(SUBDIR).join(line.to_string())
    }

    /// Whether line `line`'s school is registered.
    pub fn has_line(&self, line: usize) -> bool {
        StoredCredential::path(&self.line_dir(line)).exists()
    }

    /// Keeps `credential` as the registration of line `line` (2 or more).
    pub fn add_line(
        &self,
        line: usize,
        credential: &StoredCredential,
    ) -> anyhow::Result<Registration> {
        anyhow::ensure!(
            (2..=MAX_SCHOOLS).contains(&line),
            "line {line}: a computer takes {MAX_SCHOOLS} schools at most"
        );
        let dir = self.line_dir(line);
        credential.save(&dir)?;
        let _ = std::fs::remove_file(dir.join(REFUSED_FILE));
        Ok(Registration {
            dir,
            credential: credential.clone(),
        })
    }

    /// Whether `code` (canonical) on line `line` was refused for good.
    pub fn refused(&self, line: usize, code: &str) -> bool {
        std::fs::read_to_string(self.line_dir(line).join(REFUSED_FILE))
            .is_ok_and(|t| t.trim() == code_hash(code))
    }

    /// Remembers that the server refused `code` on line `line` for good.
    pub fn refuse(&self, line: usize, code: &str) -> anyhow::Result<()> {
        write_atomic(
            &self.line_dir(line).join(REFUSED_FILE),
            code_hash(code).as_bytes(),
        )
    }
}

/// What identifies one credential (never kept in clear beside it twice).
fn credential_hash(c: &StoredCredential) -> String {
    let mut h = Sha256::new();
    for part in [
        c.server.as_bytes(),
        &c.device_id.to_le_bytes(),
        c.secret.as_bytes(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// A code is a credential of sorts (it registers devices): only its hash
/// is kept.
fn code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = crate::platform::create_private_file(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The codes in a school code file, by line (blank lines and `#` comments
/// do not count): the first registers the computer when no token does,
/// each further one adds a school. A line that is not a code is `None`
/// (and logged), so the lines after it keep their numbers.
pub fn codes_in(text: &str) -> Vec<Option<String>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match lectern_proto::schoolcode::normalize(l) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("{l:?} in the school code file is not a code: {e}");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(school: &str, device_id: i64) -> StoredCredential {
        StoredCredential {
            server: "s:1".into(),
            fingerprint: "ab".into(),
            school: school.into(),
            device_id,
            secret: "z".into(),
        }
    }

    #[test]
    fn the_first_school_stays_where_it_was_and_each_line_gets_its_own_directory() {
        let dir = tempfile::tempdir().unwrap();
        let s = Schools::new(dir.path());
        assert_eq!(s.active(), None);
        cred("Hill", 1).save(dir.path()).unwrap();
        let hill = s.active().unwrap();
        assert_eq!(hill.dir, dir.path(), "a one-school device is as before");
        assert!(!s.has_line(2));
        let oak = s.add_line(2, &cred("Oak", 7)).unwrap();
        assert_eq!(oak.dir, dir.path().join("schools/2"));
        assert!(s.has_line(2));
        assert_eq!(
            s.add_line(3, &cred("Elm", 9)).unwrap().dir,
            dir.path().join("schools/3")
        );
        assert_eq!(
            s.all()
                .iter()
                .map(|r| r.credential.device_id)
                .collect::<Vec<_>>(),
            [1, 7, 9]
        );
        assert_eq!(s.active().unwrap(), hill, "the first until one is chosen");
        assert_eq!(s.others(&hill), ["Oak", "Elm"]);

        assert_eq!(s.activate("Oak").unwrap(), Some(oak.clone()));
        assert_eq!(s.active().unwrap(), oak, "kept across restarts");
        assert_eq!(s.others(&oak), ["Hill", "Elm"]);
        assert_eq!(s.activate("Nowhere").unwrap(), None);
        assert_eq!(s.active().unwrap(), oak, "an unknown name changes nothing");
        s.activate("Hill").unwrap();
        assert_eq!(s.active().unwrap(), hill);

        // A registration gone (removed by hand): the first is used.
        s.activate("Elm").unwrap();
        std::fs::remove_dir_all(dir.path().join("schools/3")).unwrap();
        assert_eq!(s.active().unwrap(), hill);
    }

    #[test]
    fn a_device_takes_a_handful_of_schools_and_keeps_refusals_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let s = Schools::new(dir.path());
        assert!(s.add_line(MAX_SCHOOLS, &cred("Last", 4)).is_ok());
        assert!(s.add_line(MAX_SCHOOLS + 1, &cred("One more", 5)).is_err());
        assert!(
            s.add_line(1, &cred("Line one", 6)).is_err(),
            "line 1 is the state directory's"
        );
        assert!(!s.refused(2, "7KQ2MXH4PD"));
        s.refuse(2, "7KQ2MXH4PD").unwrap();
        assert!(s.refused(2, "7KQ2MXH4PD"));
        assert!(
            !s.refused(2, "7KQ2MXH4PE"),
            "a new code on the line is a new try"
        );
        assert!(!s.refused(3, "7KQ2MXH4PD"));
        let kept =
            std::fs::read_to_string(dir.path().join("schools/2").join(REFUSED_FILE)).unwrap();
        assert!(!kept.contains("7KQ2M"), "only hashes are kept: {kept}");
        // Registered at last: the refusal goes.
        s.add_line(2, &cred("Oak", 7)).unwrap();
        assert!(!s.refused(2, "7KQ2MXH4PD"));
    }

    /// A school that refused this device is neither offered nor used while
    /// another is; registering there again (a new device id) brings it back.
    #[test]
    fn a_school_that_refused_the_device_is_passed_over_until_it_registers_again() {
        let dir = tempfile::tempdir().unwrap();
        let s = Schools::new(dir.path());
        cred("Hill", 7).save(dir.path()).unwrap();
        s.add_line(2, &cred("Vale", 9)).unwrap();
        s.add_line(3, &cred("Dale", 4)).unwrap();
        let hill = s.active().unwrap();
        assert_eq!(hill.credential.school, "Hill");
        assert_eq!(s.others(&hill), ["Vale", "Dale"]);

        s.drop_registration(&hill).unwrap();
        assert!(s.is_dropped(&hill));
        // Still named in use, but passed over for the next one.
        let vale = s.active().unwrap();
        assert_eq!(vale.credential.school, "Vale");
        assert_eq!(s.others(&vale), ["Dale"]);
        s.activate("Vale").unwrap();
        assert_eq!(s.active().unwrap().credential.school, "Vale");

        // Every school refused it: the named one stays (nothing better).
        for r in s.all() {
            s.drop_registration(&r).unwrap();
        }
        assert_eq!(s.active().unwrap().credential.school, "Vale");
        assert!(s.others(&vale).is_empty());

        // Registered again at Hill, even under the same id (a server
        // restored from a backup hands ids out again): offered once more.
        let mut again = cred("Hill", 7);
        again.secret = "a new secret".into();
        again.save(dir.path()).unwrap();
        assert_eq!(s.others(&vale), ["Hill"]);
        assert_eq!(s.active().unwrap().credential.school, "Hill");
    }

    /// Two registrations with one school's name: a switch to it takes the
    /// one that school has not refused.
    #[test]
    fn a_switch_takes_the_registration_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Schools::new(dir.path());
        cred("Hill", 7).save(dir.path()).unwrap();
        let old = s.add_line(2, &cred("Vale", 9)).unwrap();
        s.add_line(3, &cred("Vale", 12)).unwrap();
        assert_eq!(s.activate("Vale").unwrap().unwrap().credential.device_id, 9);
        s.drop_registration(&old).unwrap();
        assert_eq!(
            s.activate("Vale").unwrap().unwrap().credential.device_id,
            12
        );
        assert_eq!(s.active().unwrap().credential.device_id, 12);
    }

    #[test]
    fn a_school_code_file_lists_codes_one_a_line() {
        let text = "# the school codes\n7kq2m-xh4pd\n\nnot a code!\n  H3RT9-WWQ7C \n";
        let codes = codes_in(text);
        assert_eq!(codes.len(), 3, "{codes:?}");
        assert_eq!(codes[0].as_deref(), Some("7KQ2MXH4PD"));
        assert_eq!(codes[1], None, "a bad line keeps its number");
        assert_eq!(codes[2].as_deref(), Some("H3RT9WWQ7C"));
    }
}
