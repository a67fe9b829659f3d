//! The schools one device is registered with (issue 16 point 2): a
//! computer shared by two schools (a trust's sixth-form centre, a library
//! lent to a primary school) holds a credential for each, connects to one
//! at a time, and the student switches from the sign-in screen where the
//! school they are in allows it.
//!
//! On disk, the first registration is the state directory itself
//! (`credential.json`, `policy.json`, `events/`, `keywords.json`), as a
//! device registered with one school has always had it; each further one
//! is `schools/<n>/` beneath it with the same files. So one school's stored
//! policy, keyword library and activity waiting to be sent never reach
//! another school's server. `active-school` names the directory in use;
//! `school-codes` holds a hash of each further code registered with, so a
//! code in the school code file registers once.

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
/// Hashes of the further codes registered with.
const CODES_FILE: &str = "school-codes";

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
    /// first.
    pub fn active(&self) -> Option<Registration> {
        let all = self.all();
        let named = std::fs::read_to_string(self.root.join(ACTIVE_FILE))
            .ok()
            .map(|s| self.root.join(s.trim()));
        named
            .and_then(|d| all.iter().find(|r| r.dir == d).cloned())
            .or_else(|| all.into_iter().next())
    }

    /// Uses the registration of the school called `name` from now on (the
    /// first of that name); `None` if there is none.
    pub fn activate(&self, name: &str) -> anyhow::Result<Option<Registration>> {
        let Some(r) = self.all().into_iter().find(|r| r.credential.school == name) else {
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

    /// The names of the schools other than `active`'s, each once, in order.
    pub fn others(&self, active: &Registration) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for r in self.all() {
            let name = r.credential.school;
            if name != active.credential.school && !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Keeps `credential` as a further registration (the first goes in the
    /// state directory itself, as [`StoredCredential::save`] does).
    pub fn add(&self, credential: &StoredCredential) -> anyhow::Result<Registration> {
        let all = self.all();
        if all.len() >= MAX_SCHOOLS {
            anyhow::bail!(
                "this computer is registered with {MAX_SCHOOLS} schools already, the most it takes"
            );
        }
        let dir = if all.is_empty() {
            self.root.clone()
        } else {
            let next = std::fs::read_dir(self.root.join(SUBDIR))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .max()
                .unwrap_or(1)
                + 1;
            self.root.join(SUBDIR).join(next.to_string())
        };
        credential.save(&dir)?;
        Ok(Registration {
            dir,
            credential: credential.clone(),
        })
    }

    /// Whether `code` (canonical) was registered with as a further school.
    pub fn knows_code(&self, code: &str) -> bool {
        let hash = code_hash(code);
        std::fs::read_to_string(self.root.join(CODES_FILE))
            .map(|t| t.lines().any(|l| l.trim() == hash))
            .unwrap_or(false)
    }

    /// Remembers that `code` (canonical) was registered with.
    pub fn remember_code(&self, code: &str) -> anyhow::Result<()> {
        let path = self.root.join(CODES_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&code_hash(code));
        text.push('\n');
        write_atomic(&path, text.as_bytes())
    }
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

/// The codes in a school code file, in order: the first registers the
/// computer, each further one adds a school (blank lines and `#` comments
/// skipped; a code that is not one is skipped and logged).
pub fn codes_in(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| match lectern_proto::schoolcode::normalize(l) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!("skipping {l:?} in the school code file: {e}");
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
    fn the_first_school_stays_where_it_was_and_others_get_their_own_directories() {
        let dir = tempfile::tempdir().unwrap();
        let s = Schools::new(dir.path());
        assert_eq!(s.active(), None);
        let hill = s.add(&cred("Hill", 1)).unwrap();
        assert_eq!(hill.dir, dir.path(), "a one-school device is as before");
        let oak = s.add(&cred("Oak", 7)).unwrap();
        assert_eq!(oak.dir, dir.path().join("schools/2"));
        assert_eq!(
            s.add(&cred("Elm", 9)).unwrap().dir,
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
    fn a_device_takes_a_handful_of_schools_and_remembers_codes_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let s = Schools::new(dir.path());
        for i in 0..MAX_SCHOOLS {
            s.add(&cred(&format!("S{i}"), i as i64)).unwrap();
        }
        assert!(s.add(&cred("one more", 99)).is_err());
        assert!(!s.knows_code("7KQ2MXH4PD"));
        s.remember_code("7KQ2MXH4PD").unwrap();
        assert!(s.knows_code("7KQ2MXH4PD"));
        assert!(!s.knows_code("7KQ2MXH4PE"));
        let kept = std::fs::read_to_string(dir.path().join(CODES_FILE)).unwrap();
        assert!(!kept.contains("7KQ2M"), "only hashes are kept: {kept}");
    }

    #[test]
    fn a_school_code_file_lists_codes_one_a_line() {
        let text = "# the school codes\n7kq2m-xh4pd\n\nnot a code!\n  H3RT9-WWQ7C \n";
        let codes = codes_in(text);
        assert_eq!(codes.len(), 2, "{codes:?}");
        assert_eq!(
            codes[0],
            lectern_proto::schoolcode::normalize("7KQ2MXH4PD").unwrap()
        );
    }
}
