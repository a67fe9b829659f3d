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
use lectern_store::{Role, SchoolId};
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
    /// The console user's school: the only one whose devices it sees.
    pub school: SchoolId,
}

/// Which school each device belongs to. A console sees only its own
/// school's devices, whatever its rights (an administrator's too): the
/// check every event and watch goes through before rights are looked at.
/// Filled from the store at start and by every enrollment and connection;
/// a device it does not know is seen by no one.
#[derive(Debug, Default)]
pub struct DeviceSchools {
    by_device: RwLock<HashMap<i64, SchoolId>>,
    /// Every device is of this school (unit tests of the hub only).
    all_in: Option<SchoolId>,
}

impl DeviceSchools {
    /// Notes (or corrects) a device's school.
    pub fn set(&self, device: i64, school: SchoolId) {
        self.by_device
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device, school);
    }

    /// The device's school, if known.
    pub fn school_of(&self, device: i64) -> Option<SchoolId> {
        self.by_device
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&device)
            .copied()
            .or(self.all_in)
    }

    /// Every device in `school` (for the hub's unit tests).
    #[cfg(test)]
    pub fn all_in(school: SchoolId) -> Arc<DeviceSchools> {
        Arc::new(DeviceSchools {
            by_device: RwLock::default(),
            all_in: Some(school),
        })
    }
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
            school: auth.school(),
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
    devices: Arc<DeviceSchools>,
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
    /// A scope with `rights` over the devices in `visible`, of the viewer's
    /// school only (by `devices`).
    pub fn new(
        viewer: Viewer,
        rights: Rights,
        visible: HashSet<i64>,
        devices: Arc<DeviceSchools>,
    ) -> Arc<Self> {
        Arc::new(ConsoleScope {
            viewer,
            seen: RwLock::new(Seen { rights, visible }),
            devices,
        })
    }

    /// Whether the device is of this console's school.
    fn ours(&self, device: i64) -> bool {
        self.devices.school_of(device) == Some(self.viewer.school)
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
        if !self.ours(device) {
            return false;
        }
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
        let sees = |d: &i64| self.ours(*d) && (s.rights.all || s.visible.contains(d));
        match e {
            // A device whose user just changed may have changed groups too: its
            // details wait until its groups are known (the hub republishes it).
            ConsoleEvent::Device(v) => {
                self.ours(v.id) && (s.rights.all || (!v.groups_pending && sees(&v.id)))
            }
            ConsoleEvent::Result { device_id, .. } => sees(device_id),
            ConsoleEvent::Violation(v) => s.rights.allows("activity.view") && sees(&v.device_id),
            ConsoleEvent::Case(c) => s.rights.allows("activity.view") && sees(&c.device_id),
            ConsoleEvent::Hand(h) => sees(&h.request.device_id),
            ConsoleEvent::Chat(c) => {
                self.ours(c.message.device_id)
                    && crate::requests::may_read_chat(&s.rights, &c.groups)
            }
        }
    }

    /// Replaces rights and visible devices (after policies changed).
    pub fn reset(&self, rights: Rights, visible: HashSet<i64>) {
        *self.write() = Seen { rights, visible };
    }

    /// Records that `device` now belongs to `groups`.
    pub fn device_groups(&self, device: i64, groups: &[i64]) -> Change {
        if !self.ours(device) {
            return Change::Same;
        }
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

/// A scope for the hub's unit tests: console user `t{session}` of school 1,
/// where every device is, with `rights` and nothing visible yet.
#[cfg(test)]
pub(crate) fn test_scope(session: u64, rights: Rights) -> Arc<ConsoleScope> {
    let viewer = Viewer {
        username: format!("t{session}"),
        session,
        session_ends: i64::MAX,
        address: None,
        admin: rights.all,
        school: 1,
    };
    ConsoleScope::new(viewer, rights, HashSet::new(), DeviceSchools::all_in(1))
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

/// Notes the school of each of its devices in the store (a console stream
/// opening): the gateway notes those it enrolls and connects, this also
/// those written some other way (an import, a restored backup).
pub async fn learn_school(st: &AppState, school: SchoolId) -> Result<(), ApiError> {
    for d in st.db(move |s| s.list_devices(school)).await? {
        st.device_schools.set(d.id, school);
    }
    Ok(())
}

/// Each device's groups: kept current by the hub for connected devices,
/// resolved with the last known user for the others. One resolution per
/// offline device, shared by every console being refreshed.
async fn all_device_groups(
    st: &AppState,
    school: SchoolId,
) -> Result<Vec<(i64, Vec<i64>)>, ApiError> {
    let devices = st.db(move |s| s.list_devices(school)).await?;
    Ok(devices
        .into_iter()
        .map(|d| {
            let groups = st.hub.groups_of(d.id).unwrap_or_else(|| {
                let user = serde_json::from_str::<lectern_proto::DeviceState>(&d.state_json)
                    .ok()
                    .and_then(|s| s.user);
                st.policies
                    .of(school)
                    .resolve(Some(&d.hostname), user.as_deref())
                    .groups
            });
            (d.id, groups)
        })
        .collect())
}

/// Every device `rights` give access to, with that access. Administrators:
/// every device, with control.
pub async fn access_map(
    st: &AppState,
    school: SchoolId,
    rights: &Rights,
) -> Result<HashMap<i64, Access>, ApiError> {
    Ok(all_device_groups(st, school)
        .await?
        .into_iter()
        .map(|(d, g)| (d, rights.device_access(&g)))
        .filter(|(_, a)| *a >= Access::View)
        .collect())
}

/// Ids of the devices `rights` make visible (empty for administrators, whose
/// scope sees everything anyway).
pub async fn visible_devices(
    st: &AppState,
    school: SchoolId,
    rights: &Rights,
) -> Result<HashSet<i64>, ApiError> {
    if rights.all || rights.group_access.values().all(|a| *a == Access::None) {
        return Ok(HashSet::new());
    }
    Ok(access_map(st, school, rights).await?.into_keys().collect())
}

/// Recomputes every console's rights and visible devices (after groups,
/// lessons, directory memberships or access rules changed), then drops
/// watches the consoles may no longer have.
pub async fn refresh_all(st: &AppState) -> Result<(), ApiError> {
    let scopes = st.hub.scopes();
    if scopes.is_empty() {
        return Ok(());
    }
    // Each school's device groups, worked out once for all its consoles.
    let mut by_school: HashMap<SchoolId, Vec<(i64, Vec<i64>)>> = HashMap::new();
    for scope in scopes {
        let v = &scope.viewer;
        let groups = match by_school.entry(v.school) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(all_device_groups(st, v.school).await?)
            }
        };
        let rights = st
            .policies
            .of(v.school)
            .rights(&v.username, v.address, v.admin);
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
            school: 1,
        }
    }

    #[test]
    fn visibility_follows_group_changes() {
        let rights = Rights {
            group_access: BTreeMap::from([(7, Access::View), (8, Access::None)]),
            ..Rights::default()
        };
        let s = ConsoleScope::new(
            viewer(),
            rights,
            HashSet::from([1]),
            DeviceSchools::all_in(1),
        );
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

    #[test]
    fn another_schools_devices_are_never_seen() {
        let schools = Arc::new(DeviceSchools::default());
        schools.set(1, 1);
        schools.set(2, 2);
        let admin = Rights {
            all: true,
            ..Rights::default()
        };
        let s = ConsoleScope::new(viewer(), admin, HashSet::new(), schools.clone());
        // An administrator sees every device of the school, none of another,
        // and none the server does not know.
        assert!(s.sees(1) && !s.sees(2) && !s.sees(3));
        let result = |device_id| ConsoleEvent::Result {
            command_id: 1,
            device_id,
            status: "done",
            reason: None,
        };
        assert!(s.allows(&result(1)) && !s.allows(&result(2)));
        // A device moved to the school is seen from then on.
        schools.set(3, 1);
        assert!(s.sees(3));
    }
}
