//! Device administration: device names, rooms (computer groups) as the
//! availability page counts them, and the anonymous corridor screen's rate
//! limit. Handlers are in `api/devadmin.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lectern_policy::access::{Access, Rights};
use lectern_policy::groups::GroupKind;
use lectern_store::devadmin::Joined;
use lectern_store::SchoolId;
use serde::Serialize;

use crate::api::ApiError;
use crate::hub::DeviceView;
use crate::state::Shared;

/// Longest device name (a DNS label's limit).
pub const NAME_MAX: usize = 63;

/// Checks a device name an administrator gives: 1 to 63 letters, digits,
/// `-`, `_` or `.`, starting with a letter or digit. `*` is never allowed, so
/// a name can always be a room's exact member and never a pattern.
pub fn check_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(format!("a computer's name has 1 to {NAME_MAX} characters"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("a computer's name starts with a letter or a digit".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "a computer's name has only letters, digits, '-', '_' and '.' (not {bad:?})"
        ));
    }
    Ok(name)
}

/// Where a computer is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Online, nobody signed in.
    Free,
    /// Online with a user.
    InUse,
    /// Not connected.
    Offline,
}

/// One computer on the availability page.
#[derive(Debug, Clone, Serialize)]
pub struct Computer {
    /// Device id (staff view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// Its enrolled name.
    pub name: String,
    /// Free, in use or offline.
    pub status: Status,
    /// Who is signed in (staff view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// One room with its counts.
#[derive(Debug, Clone, Serialize)]
pub struct Room {
    /// Group id (staff view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    /// The computer group's name.
    pub name: String,
    /// Computers online with nobody signed in.
    pub free: usize,
    /// Computers online with a user.
    pub in_use: usize,
    /// Computers not connected.
    pub offline: usize,
    /// Each computer, by name.
    pub computers: Vec<Computer>,
}

/// Who the availability view is for.
pub enum Audience<'a> {
    /// Signed-in staff: the rooms their rights let them see, with user names.
    Staff(&'a Rights),
    /// The anonymous corridor screen: every room, names and counts only.
    Public,
}

fn status_of(v: &DeviceView) -> Status {
    match (v.online, v.state.user.is_some()) {
        (false, _) => Status::Offline,
        (true, false) => Status::Free,
        (true, true) => Status::InUse,
    }
}

/// Every non-revoked device: live where connected, else as last stored.
async fn devices(st: &Shared, school: SchoolId) -> Result<Vec<DeviceView>, ApiError> {
    let stored = st.db(move |s| s.list_devices(school)).await?;
    let mut online = st.hub.online();
    Ok(stored
        .into_iter()
        .filter(|d| d.revoked_at.is_none())
        .map(|d| match online.remove(&d.id) {
            Some(live) => live,
            None => DeviceView {
                id: d.id,
                hostname: d.hostname,
                online: false,
                os: d.os,
                agent_version: d.agent_version,
                revoked: false,
                last_seen: d.last_seen,
                capabilities: Vec::new(),
                // A stored state's user is from its last session: offline
                // computers show no one.
                state: Default::default(),
                groups_pending: false,
            },
        })
        .collect())
}

/// The rooms `who` may see, each with its computers and counts.
pub async fn rooms(
    st: &Shared,
    school: SchoolId,
    who: Audience<'_>,
) -> Result<Vec<Room>, ApiError> {
    let groups = st.db(move |s| s.list_groups(school)).await?;
    let devices = devices(st, school).await?;
    let memberships: Vec<(Vec<i64>, &DeviceView)> = devices
        .iter()
        .map(|v| {
            let user = v.state.user.as_deref();
            (st.device_groups(school, v.id, &v.hostname, user), v)
        })
        .collect();
    let staff = matches!(who, Audience::Staff(_));
    let sees = |g: i64| match &who {
        Audience::Staff(r) => r.all || r.group_access.get(&g).is_some_and(|a| *a >= Access::View),
        Audience::Public => true,
    };
    let mut out = Vec::new();
    for rec in groups {
        let g = rec.group;
        if g.kind != GroupKind::Computer || !sees(g.id) {
            continue;
        }
        let mut room = Room {
            id: staff.then_some(g.id),
            name: g.name,
            free: 0,
            in_use: 0,
            offline: 0,
            computers: Vec::new(),
        };
        for (_, v) in memberships.iter().filter(|(gs, _)| gs.contains(&g.id)) {
            let status = status_of(v);
            match status {
                Status::Free => room.free += 1,
                Status::InUse => room.in_use += 1,
                Status::Offline => room.offline += 1,
            }
            room.computers.push(Computer {
                id: staff.then_some(v.id),
                name: v.hostname.clone(),
                status,
                user: if staff { v.state.user.clone() } else { None },
            });
        }
        room.computers.sort_by(|a, b| a.name.cmp(&b.name));
        out.push(room);
    }
    Ok(out)
}

/// `GET /availability/screen`: the corridor screen's page, for anyone; its
/// script asks `/api/v1/public/availability`, which answers only while the
/// school has turned it on.
pub async fn screen() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../assets/availability-screen.html"))
}

/// Requests the corridor screen may make per address in one window.
pub const PUBLIC_PER_WINDOW: u32 = 30;
/// The window.
pub const PUBLIC_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at once; beyond this, new addresses wait for a window
/// to pass (so a flood of addresses cannot grow the table).
pub const PUBLIC_ADDRESSES: usize = 4096;

/// A fixed-window count per client address for the anonymous view.
#[derive(Default)]
pub struct PublicLimiter {
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PublicLimiter {
    /// Counts one request from `addr`; `Err(seconds)` to wait when over.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= PUBLIC_ADDRESSES && !seen.contains_key(&addr) {
            seen.retain(|_, (start, _)| now.duration_since(*start) < PUBLIC_WINDOW);
            if seen.len() >= PUBLIC_ADDRESSES {
                return Err(PUBLIC_WINDOW.as_secs());
            }
        }
        let entry = seen.entry(addr).or_insert((now, 0));
        if now.duration_since(entry.0) >= PUBLIC_WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= PUBLIC_PER_WINDOW {
            let left = PUBLIC_WINDOW.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

/// After a device took a name it reported (accepted by an administrator or
/// by the school's setting): rooms it joined by its old name keep it, and
/// policies are reloaded when any did. A failure is logged; the rename stands.
pub async fn follow_rename(st: &Shared, device: i64, old: &str, new: &str) {
    let (school, o, n) = (st.device_school(device), old.to_string(), new.to_string());
    match st
        .db(move |s| s.devadmin().follow_rename(school, device, &o, &n))
        .await
    {
        Ok(rooms) if rooms.is_empty() => {}
        Ok(_) => {
            if let Err(e) = st.reload_policies(school).await {
                tracing::error!(device, "reloading policies after a rename: {}", e.message);
            }
        }
        Err(e) => tracing::error!(
            device,
            "moving room memberships to a new name: {}",
            e.message
        ),
    }
}

/// After enrollment with a room's token: the device joins that room as an
/// exact member, and policies are reloaded so it is resolved in it from its
/// first session. Not when another device has its name (the member would
/// take that one in too). Audited either way; the enrollment stands.
pub async fn join_room(st: &Shared, room: i64, device: i64, hostname: &str) {
    let school = st.device_school(device);
    let joined = st
        .db(move |s| s.devadmin().join_room(school, room, device))
        .await;
    let mut entry = st.audit_entry(school, "system", None, "device.join_room", "ok");
    entry.devices = vec![device];
    entry.detail = format!("{hostname} into group {room}");
    let outcome = match joined {
        Ok(Joined::Added) => "ok",
        Ok(Joined::AlreadyMember) => "unchanged",
        Ok(Joined::NameShared) => "name_shared",
        Ok(Joined::Refused) => "refused",
        Err(e) => {
            tracing::error!(device, room, "joining a room: {}", e.message);
            "failed"
        }
    };
    entry.outcome = outcome.into();
    st.audit(entry).await;
    if outcome == "ok" {
        if let Err(e) = st.reload_policies(school).await {
            tracing::error!(
                device,
                "reloading policies after a room join: {}",
                e.message
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name(" LAB-01 "), Ok("LAB-01"));
        assert!(check_name("").is_err());
        assert!(check_name("LAB-*").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(64)).is_err());
        assert!(check_name(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn the_public_limit_counts_per_address_and_window() {
        let l = PublicLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t = Instant::now();
        for _ in 0..PUBLIC_PER_WINDOW {
            assert!(l.check(a, t).is_ok());
        }
        assert!(l.check(a, t).is_err());
        assert!(l.check(b, t).is_ok(), "another address is counted apart");
        assert!(l.check(a, t + PUBLIC_WINDOW).is_ok(), "a new window");
    }
}
