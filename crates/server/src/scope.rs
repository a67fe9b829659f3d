//! What each console may see. Every console stream has one [`ConsoleScope`]:
//! its user's rights and the set of devices those rights make visible, cached
//! so that deciding "may console C see event E" is a hash lookup, not a group
//! resolution per event. The hub keeps the sets current as devices change
//! groups ([`crate::hub::Hub::set_policy`]); [`refresh_all`] recomputes them
//! after groups, lessons, directory or access rules change.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use lectern_policy::access::{Access, Rights};
use lectern_store::Role;
use tokio::sync::broadcast;

use crate::api::auth::Authed;
use crate::api::ApiError;
use crate::hub::ConsoleEvent;
use crate::state::{AppState, Shared};

/// The console user behind a stream or request, as privacy decisions need it.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// User name (shown to the student when asked).
    pub username: String,
    /// Identifies the console session (a keyed hash of its token): answers to
    /// live-view questions are remembered per session.
    pub session: u64,
    /// When the console session expires, ms since epoch.
    pub session_ends: i64,
    /// Where the console runs (access rules may match it).
    pub address: Option<IpAddr>,
    /// Administrators have every right.
    pub admin: bool,
}

impl Viewer {
    /// The viewer of an authenticated request.
    pub fn of(st: &Shared, auth: &Authed) -> Self {
        Viewer {
            username: auth.username().to_string(),
            session: st.hub.session_key(&auth.token),
            session_ends: auth.session.expires_at,
            address: auth.address.as_deref().and_then(|a| a.parse().ok()),
            admin: auth.session.user.role == Role::Admin,
        }
    }
}

struct Seen {
    rights: Rights,
    visible: HashSet<i64>,
}

/// One console's rights and visible devices.
pub struct ConsoleScope {
    /// Who watches.
    pub viewer: Viewer,
    seen: RwLock<Seen>,
}

/// How a device's visibility to a console changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Newly visible.
    Gained,
    /// No longer visible.
    Lost,
    /// As before.
    Same,
}

impl ConsoleScope {
    /// A scope with `rights` over the devices in `visible`.
    pub fn new(viewer: Viewer, rights: Rights, visible: HashSet<i64>) -> Arc<Self> {
        Arc::new(ConsoleScope {
            viewer,
            seen: RwLock::new(Seen { rights, visible }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Seen> {
        self.seen.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Seen> {
        self.seen.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this console may see the device at all (view access to one of
    /// its groups, or administrator).
    pub fn sees(&self, device: i64) -> bool {
        let s = self.read();
        s.rights.all || s.visible.contains(&device)
    }

    /// Whether the user holds `feature` and control access to a device that
    /// belongs to `groups` (administrators: always).
    pub fn may_control(&self, feature: &str, groups: &[i64]) -> bool {
        let s = self.read();
        s.rights.allows(feature) && s.rights.device_access(groups) >= Access::Control
    }

    /// Whether the user may bypass client privacy.
    pub fn bypass(&self) -> bool {
        self.read().rights.bypass_privacy
    }

    /// The one place that decides whether this console receives an event.
    /// Every variant must be decided here: a new event kind is invisible to
    /// non-administrators until it is.
    pub fn allows(&self, e: &ConsoleEvent) -> bool {
        let s = self.read();
        let sees = |d: &i64| s.rights.all || s.visible.contains(d);
        match e {
            // A device whose user just changed may have changed groups too: its
            // details wait until its groups are known (the hub republishes it).
            ConsoleEvent::Device(v) => s.rights.all || (!v.groups_pending && sees(&v.id)),
            ConsoleEvent::Result { device_id, .. } => sees(device_id),
            ConsoleEvent::Violation(v) => s.rights.allows("activity.view") && sees(&v.device_id),
            ConsoleEvent::Case(c) => s.rights.allows("activity.view") && sees(&c.device_id),
            ConsoleEvent::Hand(h) => sees(&h.request.device_id),
            ConsoleEvent::Chat(c) => crate::requests::may_read_chat(&s.rights, &c.groups),
        }
    }

    /// Replaces rights and visible devices (after policies changed).
    pub fn reset(&self, rights: Rights, visible: HashSet<i64>) {
        *self.write() = Seen { rights, visible };
    }

    /// Records that `device` now belongs to `groups`.
    pub fn device_groups(&self, device: i64, groups: &[i64]) -> Change {
        let mut s = self.write();
        if s.rights.all {
            return Change::Same;
        }
        let now = s.rights.device_access(groups) >= Access::View;
        match (s.visible.contains(&device), now) {
            (false, true) => {
                s.visible.insert(device);
                Change::Gained
            }
            (true, false) => {
                s.visible.remove(&device);
                Change::Lost
            }
            _ => Change::Same,
        }
    }
}

/// A console's event feed: the hub's events, only those its scope allows.
pub struct ScopedEvents {
    rx: broadcast::Receiver<ConsoleEvent>,
    scope: Arc<ConsoleScope>,
}

/// What [`ScopedEvents::recv`] yields.
pub enum Incoming {
    /// An event this console may see.
    Event(ConsoleEvent),
    /// Events were missed; the console should reload.
    Lagged,
    /// The hub is gone.
    Closed,
}

impl ScopedEvents {
    /// A feed of `rx` filtered by `scope`.
    pub fn new(rx: broadcast::Receiver<ConsoleEvent>, scope: Arc<ConsoleScope>) -> Self {
        ScopedEvents { rx, scope }
    }

    /// The next allowed event (cancel safe: nothing allowed is lost).
    pub async fn recv(&mut self) -> Incoming {
        loop {
            match self.rx.recv().await {
                Ok(e) if self.scope.allows(&e) => return Incoming::Event(e),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => return Incoming::Lagged,
                Err(broadcast::error::RecvError::Closed) => return Incoming::Closed,
            }
        }
    }
}

/// Each device's groups: kept current by the hub for connected devices,
/// resolved with the last known user for the others. One resolution per
/// offline device, shared by every console being refreshed.
async fn all_device_groups(st: &AppState) -> Result<Vec<(i64, Vec<i64>)>, ApiError> {
    let school = st.school.id;
    let devices = st.db(move |s| s.list_devices(school)).await?;
    Ok(devices
        .into_iter()
        .map(|d| {
            let groups = st.hub.groups_of(d.id).unwrap_or_else(|| {
                let user = serde_json::from_str::<lectern_proto::DeviceState>(&d.state_json)
                    .ok()
                    .and_then(|s| s.user);
                st.policies
                    .resolve(Some(&d.hostname), user.as_deref())
                    .groups
            });
            (d.id, groups)
        })
        .collect())
}

/// Every device `rights` give access to, with that access. Administrators:
/// every device, with control.
pub async fn access_map(st: &AppState, rights: &Rights) -> Result<HashMap<i64, Access>, ApiError> {
    Ok(all_device_groups(st)
        .await?
        .into_iter()
        .map(|(d, g)| (d, rights.device_access(&g)))
        .filter(|(_, a)| *a >= Access::View)
        .collect())
}

/// Ids of the devices `rights` make visible (empty for administrators, whose
/// scope sees everything anyway).
pub async fn visible_devices(st: &AppState, rights: &Rights) -> Result<HashSet<i64>, ApiError> {
    if rights.all || rights.group_access.values().all(|a| *a == Access::None) {
        return Ok(HashSet::new());
    }
    Ok(access_map(st, rights).await?.into_keys().collect())
}

/// Recomputes every console's rights and visible devices (after groups,
/// lessons, directory memberships or access rules changed), then drops
/// watches the consoles may no longer have.
pub async fn refresh_all(st: &AppState) -> Result<(), ApiError> {
    let scopes = st.hub.scopes();
    if scopes.is_empty() {
        return Ok(());
    }
    let groups = all_device_groups(st).await?;
    for scope in scopes {
        let v = &scope.viewer;
        let rights = st.policies.rights(&v.username, v.address, v.admin);
        // Without devices.view (the stream's own right) a console sees nothing.
        let visible = if rights.all || !rights.allows("devices.view") {
            HashSet::new()
        } else {
            groups
                .iter()
                .filter(|(_, g)| rights.device_access(g) >= Access::View)
                .map(|(d, _)| *d)
                .collect()
        };
        scope.reset(rights, visible);
    }
    st.hub.rescope();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn viewer() -> Viewer {
        Viewer {
            username: "t".into(),
            session: 1,
            session_ends: i64::MAX,
            address: None,
            admin: false,
        }
    }

    #[test]
    fn visibility_follows_group_changes() {
        let rights = Rights {
            group_access: BTreeMap::from([(7, Access::View), (8, Access::None)]),
            ..Rights::default()
        };
        let s = ConsoleScope::new(viewer(), rights, HashSet::from([1]));
        assert!(s.sees(1) && !s.sees(2));
        assert_eq!(s.device_groups(2, &[7]), Change::Gained);
        assert_eq!(s.device_groups(2, &[7, 3]), Change::Same);
        assert_eq!(s.device_groups(1, &[8]), Change::Lost);
        assert!(s.sees(2) && !s.sees(1));
        let result = |device_id| ConsoleEvent::Result {
            command_id: 1,
            device_id,
            status: "done",
            reason: None,
        };
        assert!(s.allows(&result(2)) && !s.allows(&result(1)));
    }
}
