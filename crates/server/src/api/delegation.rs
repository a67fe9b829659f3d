//! Applies the delegation rule ([`lectern_policy::delegation`]) to requests
//! that change rights: access rules, directory memberships, group members and
//! accounts. A refusal is a 403 carrying the rule's reason, and is audited.

use lectern_policy::access::{AccessRule, Rights};
use lectern_policy::delegation::{Granter, Refusal};
use tokio::sync::OwnedMutexGuard;

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// A rights-changing request in progress: holds the change lock (released
/// when dropped, after the change is stored and policies reloaded) and the
/// inputs of the check.
pub struct Change {
    _lock: OwnedMutexGuard<()>,
    username: String,
    held: Rights,
    entire_network: Option<i64>,
    /// The access rules as they stand.
    pub rules: Vec<AccessRule>,
}

impl Change {
    /// Starts a change by `auth`'s user.
    pub async fn begin(st: &Shared, auth: &Authed) -> Change {
        let lock = st.policies.of(auth.school()).lock_changes().await;
        Change {
            _lock: lock,
            username: auth.username().to_string(),
            held: st
                .policies
                .of(auth.school())
                .account_rights(auth.username(), auth.rights.all),
            entire_network: st.policies.of(auth.school()).entire_network(),
            rules: st.policies.of(auth.school()).rules(),
        }
    }

    /// The caller as a granter.
    pub fn granter(&self) -> Granter<'_> {
        Granter {
            username: &self.username,
            held: &self.held,
            entire_network: self.entire_network,
        }
    }
}

/// Turns a refusal into an audited 403 naming the reason.
pub async fn refused(st: &Shared, auth: &Authed, what: &str, r: Refusal) -> ApiError {
    let mut entry = auth.audit_entry(st, "access.denied", "denied");
    entry.detail = format!("{what}: {} ({r})", r.code());
    st.audit(entry).await;
    ApiError::forbidden(r.to_string()).with_reason(r.code())
}

/// Turns a check's result into the API's.
pub async fn check(
    st: &Shared,
    auth: &Authed,
    what: &str,
    r: Result<(), Refusal>,
) -> Result<(), ApiError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(refused(st, auth, what, e).await),
    }
}
