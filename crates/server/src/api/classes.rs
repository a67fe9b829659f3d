//! The classroom page's own routes: the tree of classes the caller may see
//! (`GET /classes`) and the caller's display preferences (`/me/preferences`).
//!
//! The tree is scoped like the device list: a group is listed only when the
//! caller has at least view access to it (or to Entire Network, which shows
//! every device anyway; administrators see all), and each lists only the
//! devices the caller may see. Running lessons are listed over those groups.
//! Preferences belong to the session's user and school; no route names
//! another user, so nobody reads or writes anyone else's.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use lectern_policy::access::Access;
use lectern_policy::groups::GroupKind;
use lectern_store::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// Largest preferences body accepted, in bytes.
pub const MAX_PREFERENCES_BYTES: usize = 1024;

/// Whether the caller may see the group in their tree.
fn may_list(auth: &Authed, group: i64, entire_network: Option<i64>) -> bool {
    let access = |g: i64| {
        auth.rights
            .group_access
            .get(&g)
            .copied()
            .unwrap_or(Access::None)
    };
    auth.rights.all
        || access(group) >= Access::View
        || entire_network.is_some_and(|e| access(e) >= Access::View)
}

/// `GET /classes`: the rooms (computer groups), user groups and running
/// lessons the caller may see, each with the ids of its devices the caller
/// may see. Needs `devices.view`.
pub async fn tree(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, "devices.view").await?;
    let entire = st.policies.of(auth.school()).entire_network();
    // Each visible device's groups, inverted: group id → device ids; and
    // what its tile's badges show of its resultant settings.
    let mut members: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut badges = serde_json::Map::new();
    for (v, _) in super::devices::visible(&st, &auth).await? {
        let user = v.state.user.as_deref();
        for g in st.device_groups(auth.school(), v.id, &v.hostname, user) {
            members.entry(g).or_default().push(v.id);
        }
        badges.insert(
            v.id.to_string(),
            tile_badges(&st, auth.school(), &v.hostname, user),
        );
    }
    let school = auth.school();
    let (groups, rostered) = st
        .db(move |s| Ok((s.list_groups(school)?, s.roster().roster_classes(school)?)))
        .await?;
    let taught = taught_by(&rostered, auth.username());
    let listed: Vec<Value> = groups
        .iter()
        .filter(|r| matches!(r.group.kind, GroupKind::Computer | GroupKind::User))
        .filter(|r| may_list(&auth, r.group.id, entire))
        .map(|r| {
            json!({
                "id": r.group.id,
                "name": r.group.name,
                "kind": r.group.kind,
                "mine": taught.contains(&r.group.id),
                "devices": members.get(&r.group.id).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let now = now_ms();
    let lessons = st.db(move |s| s.lessons_since(school, now)).await?;
    let running: Vec<Value> = lessons
        .iter()
        .filter(|l| l.active_at(now) && may_list(&auth, l.group_id, entire))
        .map(|l| {
            json!({
                "id": l.id,
                "group_id": l.group_id,
                "name": st.policies.of(school).group(l.group_id).map(|g| g.group.name),
                "teacher": l.teacher,
                "ends_at": l.ends_at,
                "devices": members.get(&l.group_id).cloned().unwrap_or_default(),
            })
        })
        .collect();
    Ok(Json(
        json!({"groups": listed, "lessons": running, "devices": badges}),
    ))
}

/// The groups of the rostered classes (not retired) `user` teaches: the
/// tree's "My classes". Only a label: what the caller may see and do still
/// comes from their access rules.
fn taught_by(classes: &[lectern_store::roster::RosterClass], user: &str) -> Vec<i64> {
    classes
        .iter()
        .filter(|c| c.retired_at.is_none())
        .filter(|c| c.teachers.iter().any(|t| t.eq_ignore_ascii_case(user)))
        .map(|c| c.group_id)
        .collect()
}

/// The settings a tile shows as badges: the web filter, screen privacy and
/// whether pictures of the screen are allowed at all.
fn tile_badges(
    st: &Shared,
    school: lectern_store::SchoolId,
    hostname: &str,
    user: Option<&str>,
) -> Value {
    let r = st.policies.of(school).resolve(Some(hostname), user);
    let p = crate::policies::to_policy(&r.resultant, 0);
    json!({
        "web_filter": p.web_filter_mode,
        "remote_view": p.remote_view,
        "thumbnails_allowed": p.thumbnails_allowed,
    })
}

/// Tile sizes of the grid.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TileSize {
    /// Many small tiles.
    Small,
    /// The default.
    Medium,
    /// Few large tiles.
    Large,
}

/// Orders of the grid.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Host name.
    Name,
    /// Signed-in user.
    User,
    /// Online first, then locked, then name.
    Status,
}

/// A console user's display preferences; a `PUT` sets the fields it names.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Tile size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tile_size: Option<TileSize>,
    /// Sort order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort: Option<SortKey>,
    /// The class last shown: `all`, `group:<id>` or `lesson:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
}

impl Preferences {
    /// `self` with the fields `other` sets.
    fn merged(self, other: Preferences) -> Preferences {
        Preferences {
            tile_size: other.tile_size.or(self.tile_size),
            sort: other.sort.or(self.sort),
            class: other.class.or(self.class),
        }
    }
}

/// Whether `class` names a tree entry's kind and id (its existence and the
/// caller's access are checked when the tree is shown).
fn valid_class(class: &str) -> bool {
    if class == "all" {
        return true;
    }
    let id = class
        .strip_prefix("group:")
        .or_else(|| class.strip_prefix("lesson:"));
    id.is_some_and(|n| !n.is_empty() && n.len() <= 18 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Stored preferences; a value that no longer parses (an older format)
/// reads as unset.
fn parse(stored: Option<String>) -> Preferences {
    stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

async fn load(st: &Shared, auth: &Authed) -> Result<Preferences, ApiError> {
    let (school, user) = (auth.school(), auth.session.user.id);
    Ok(parse(st.db(move |s| s.preferences(school, user)).await?))
}

/// `GET /me/preferences`: the caller's own preferences (`{}` when none).
pub async fn get_preferences(
    State(st): State<Shared>,
    auth: Authed,
) -> Result<Json<Preferences>, ApiError> {
    Ok(Json(load(&st, &auth).await?))
}

/// `PUT /me/preferences`: sets the named fields of the caller's own
/// preferences; at most [`MAX_PREFERENCES_BYTES`], unknown fields and values
/// refused (400) and nothing stored.
pub async fn put_preferences(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<Json<Preferences>, ApiError> {
    if body.len() > MAX_PREFERENCES_BYTES {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("preferences are at most {MAX_PREFERENCES_BYTES} bytes"),
        ));
    }
    let new: Preferences = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid preferences: {e}")))?;
    if let Some(c) = &new.class {
        if !valid_class(c) {
            return Err(ApiError::bad_request(
                "class must be \"all\", \"group:<id>\" or \"lesson:<id>\"",
            ));
        }
    }
    let (school, user) = (auth.school(), auth.session.user.id);
    // Merged with the stored ones in one store step, so two quick changes
    // (a sort, then a tile size) both stay.
    let stored = st
        .db(move |s| {
            s.update_preferences(school, user, &|old| {
                let prefs = parse(old).merged(new.clone());
                serde_json::to_string(&prefs).unwrap_or_else(|_| "{}".into())
            })
        })
        .await?;
    Ok(Json(parse(Some(stored))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_all_or_a_kind_and_id() {
        for ok in ["all", "group:3", "lesson:12"] {
            assert!(valid_class(ok), "{ok}");
        }
        for bad in ["", "group:", "group:x", "room:1", "group:1 ", "lesson:-1"] {
            assert!(!valid_class(bad), "{bad}");
        }
    }

    #[test]
    fn a_put_sets_only_what_it_names() {
        let old = Preferences {
            tile_size: Some(TileSize::Large),
            sort: Some(SortKey::User),
            class: None,
        };
        let new = Preferences {
            sort: Some(SortKey::Status),
            ..Default::default()
        };
        let m = old.merged(new);
        assert_eq!(m.tile_size, Some(TileSize::Large));
        assert_eq!(m.sort, Some(SortKey::Status));
    }
}
