//! LDAP / Active Directory: a school's connection settings, reading users and
//! groups (nested groups resolved), the sync that feeds directory memberships,
//! and console sign-in by bind.
//!
//! Only TLS is spoken: `ldaps://`, or `ldap://` with StartTLS; plain LDAP is
//! refused when the settings are saved. The server's certificate is checked
//! against a pinned CA (PEM) or the system's store.

pub mod config;
pub mod ldap;
pub mod resolve;
pub mod sync;

pub use config::{DirConfig, Flavour, SignInRule};

/// Why talking to the directory failed. Callers act on the kind (a sign-in
/// with bad credentials is a 401, an unreachable directory a 502), never on
/// the text.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// The school has no directory settings (or no bind password).
    #[error("no directory is configured")]
    NotConfigured,
    /// Connecting or the TLS handshake failed (wrong host, port, CA, name).
    #[error("the directory could not be reached: {0}")]
    Unreachable(String),
    /// The stored bind password does not decrypt with this server's
    /// `secrets.key` (the key was lost or replaced, or the database was
    /// restored on another server): an administrator enters it again.
    #[error("the bind password must be entered again: the stored one cannot be decrypted on this server (its secrets.key differs from the one it was saved with)")]
    BindPasswordLost,
    /// The bind account's DN or password was refused.
    #[error("the directory refused the bind account (check its DN and password)")]
    BindRefused,
    /// A search failed (bad base DN or filter, the server's limits).
    #[error("the directory search failed: {0}")]
    Search(String),
    /// The directory listed no users at all: taken as a misconfiguration or an
    /// outage, never as "everyone left".
    #[error("the directory returned no users under {0}; nothing was changed")]
    NoUsers(String),
    /// More entries than a sync reads.
    #[error("the directory returned more than {0} entries; narrow the base DN or filter")]
    TooMany(usize),
}
