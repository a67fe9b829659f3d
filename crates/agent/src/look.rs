//! The school's look from the server (see `lectern_proto::look`): the name
//! and logo the lock screen shows. The logo's bytes are asked for only when
//! its hash is not the one shown, checked against that hash and the size
//! limit, and handed to the desktop (which passes them on to the session
//! helpers under the service).

use std::sync::Mutex;

use base64::Engine as _;
use lectern_proto::look::{is_sha256_hex, MAX_LOGO_PNG, MAX_SCHOOL_NAME};
use sha2::{Digest, Sha256};

use crate::session::SharedDesktop;

/// Why a logo from the server was not shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoRefusal {
    /// Not the logo asked for (stale, or never asked).
    NotAsked,
    /// Larger than `MAX_LOGO_PNG`.
    TooLarge,
    /// Not base64.
    BadEncoding,
    /// The bytes do not have the hash they came with.
    WrongHash,
}

/// What the device shows of the school's look; outlives every session, so
/// a reconnect does not fetch the same logo again.
#[derive(Debug, Default)]
pub struct Look {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The logo shown (its hash); `None`: none.
    shown: Option<String>,
    /// The logo asked for and not yet received.
    wanted: Option<String>,
}

impl Look {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies [`lectern_proto::ServerMsg::SchoolLook`]: shows the name and
    /// drops a removed logo; returns the hash to ask the server for when the
    /// logo is one this device does not show.
    pub fn on_look(
        &self,
        desktop: &SharedDesktop,
        name: &str,
        logo_sha256: Option<&str>,
    ) -> Option<String> {
        let name = name.trim();
        if !name.is_empty()
            && name.chars().count() <= MAX_SCHOOL_NAME
            && !name.chars().any(char::is_control)
        {
            lock(desktop).set_school(name);
        }
        let mut st = self.state();
        match logo_sha256.filter(|s| is_sha256_hex(s)) {
            None => {
                st.wanted = None;
                if st.shown.take().is_some() {
                    lock(desktop).set_school_logo(None);
                }
                None
            }
            Some(sha) if st.shown.as_deref() == Some(sha) => None,
            Some(sha) => {
                st.wanted = Some(sha.to_owned());
                Some(sha.to_owned())
            }
        }
    }

    /// Applies [`lectern_proto::ServerMsg::SchoolLogo`]: shows the PNG if it
    /// is the logo asked for and its bytes have its hash.
    pub fn on_logo(
        &self,
        desktop: &SharedDesktop,
        sha256: &str,
        png: &str,
    ) -> Result<(), LogoRefusal> {
        let mut st = self.state();
        if st.wanted.as_deref() != Some(sha256) {
            return Err(LogoRefusal::NotAsked);
        }
        // Base64 is 4 characters per 3 bytes: refuse before decoding.
        if png.len() > MAX_LOGO_PNG.div_ceil(3) * 4 {
            return Err(LogoRefusal::TooLarge);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png)
            .map_err(|_| LogoRefusal::BadEncoding)?;
        if bytes.len() > MAX_LOGO_PNG {
            return Err(LogoRefusal::TooLarge);
        }
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            return Err(LogoRefusal::WrongHash);
        }
        st.wanted = None;
        st.shown = Some(sha256.to_owned());
        drop(st);
        lock(desktop).set_school_logo(Some(&bytes));
        Ok(())
    }
}

fn lock(d: &SharedDesktop) -> std::sync::MutexGuard<'_, dyn lectern_desktop::Desktop + 'static> {
    d.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HeadlessDesktop;
    use std::sync::{Arc, Mutex};

    fn desktop() -> (SharedDesktop, Arc<Mutex<HeadlessDesktop>>) {
        let d = Arc::new(Mutex::new(HeadlessDesktop::new("pc", None)));
        (d.clone(), d)
    }

    fn b64(b: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn a_logo_is_asked_for_once_checked_and_shown() {
        let (shared, d) = desktop();
        let look = Look::default();
        let png = b"\x89PNG pretend".to_vec();
        let sha = hex::encode(Sha256::digest(&png));
        assert_eq!(look.on_look(&shared, "Hill", Some(&sha)), Some(sha.clone()));
        assert_eq!(d.lock().unwrap().school(), "Hill");
        // Bytes that are not the hash's, or not asked for, are refused.
        assert_eq!(
            look.on_logo(&shared, &sha, &b64(b"other")),
            Err(LogoRefusal::WrongHash)
        );
        assert_eq!(
            look.on_logo(&shared, &"0".repeat(64), &b64(&png)),
            Err(LogoRefusal::NotAsked)
        );
        assert_eq!(
            look.on_logo(&shared, &sha, "not base64!"),
            Err(LogoRefusal::BadEncoding)
        );
        let huge = "A".repeat(MAX_LOGO_PNG.div_ceil(3) * 4 + 4);
        assert_eq!(
            look.on_logo(&shared, &sha, &huge),
            Err(LogoRefusal::TooLarge)
        );
        assert!(d.lock().unwrap().school_logo().is_none());
        assert_eq!(look.on_logo(&shared, &sha, &b64(&png)), Ok(()));
        assert_eq!(d.lock().unwrap().school_logo(), Some(&png[..]));
        // The same logo again (a reconnect): nothing to fetch.
        assert_eq!(look.on_look(&shared, "Hill", Some(&sha)), None);
        // A second copy is not asked for, so it is refused.
        assert_eq!(
            look.on_logo(&shared, &sha, &b64(&png)),
            Err(LogoRefusal::NotAsked)
        );
        // Removed.
        assert_eq!(look.on_look(&shared, "Hill", None), None);
        assert!(d.lock().unwrap().school_logo().is_none());
    }

    #[test]
    fn a_bad_name_is_not_shown() {
        let (shared, d) = desktop();
        let look = Look::default();
        look.on_look(&shared, "Hill", None);
        look.on_look(&shared, "a\u{7}b", None);
        look.on_look(&shared, &"x".repeat(MAX_SCHOOL_NAME + 1), None);
        look.on_look(&shared, "  ", None);
        assert_eq!(d.lock().unwrap().school(), "Hill");
    }
}
