//! Files sent to devices and hand-ins collected back (issue 13.7).
//!
//! Who may: `command.files`, and control access to every device named (as
//! for commands). Listing a transfer or collection shows only the devices
//! the caller sees; one with none of them is "not found". The per-school
//! limits are read with `command.files` and set by administrators.

use std::collections::{BTreeSet, HashMap};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use lectern_policy::access::Access;
use lectern_store::files::{Collection, Delivery, HandIn, Transfer};
use lectern_store::now_ms;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::Authed;
use super::{ApiError, JsonBody};
use crate::files::{self as core, Limits};
use crate::state::Shared;

/// The right to send and collect files.
pub const FEATURE: &str = "command.files";

/// Most devices one transfer or collection names.
pub const MAX_DEVICES: usize = 1000;

/// Refuses unknown or revoked ids and devices the caller does not control;
/// returns each device's host name and last known user.
pub async fn controlled(
    st: &Shared,
    auth: &Authed,
    ids: &BTreeSet<i64>,
) -> Result<HashMap<i64, (String, Option<String>)>, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::bad_request("choose at least one device"));
    }
    if ids.len() > MAX_DEVICES {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_DEVICES} devices at once"
        )));
    }
    let visible = super::devices::visible(st, auth).await?;
    let school = auth.session.user.school_id;
    let known: HashMap<i64, bool> = st
        .db(move |s| s.list_devices(school))
        .await?
        .into_iter()
        .map(|d| (d.id, d.revoked_at.is_some()))
        .collect();
    let unknown: Vec<_> = ids
        .iter()
        .filter(|i| !known.contains_key(i))
        .take(20)
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unknown device ids: {unknown:?}"
        )));
    }
    let revoked: Vec<_> = ids.iter().filter(|i| known[i]).take(20).collect();
    if !revoked.is_empty() {
        return Err(ApiError::bad_request(format!(
            "revoked devices: {revoked:?}"
        )));
    }
    let access: HashMap<i64, (Access, String, Option<String>)> = visible
        .into_iter()
        .map(|(v, a)| (v.id, (a, v.hostname, v.state.user)))
        .collect();
    let refused: Vec<i64> = ids
        .iter()
        .filter(|i| access.get(i).is_none_or(|(a, _, _)| *a < Access::Control))
        .copied()
        .collect();
    if !refused.is_empty() {
        auth.deny(
            st,
            "files on devices without control access",
            refused.clone(),
        )
        .await;
        return Err(ApiError::no_control(&refused));
    }
    Ok(ids
        .iter()
        .map(|i| {
            let (_, h, u) = &access[i];
            (*i, (h.clone(), u.clone()))
        })
        .collect())
}

/// The ids of the devices the caller sees.
async fn seen(st: &Shared, auth: &Authed) -> Result<BTreeSet<i64>, ApiError> {
    Ok(super::devices::visible(st, auth)
        .await?
        .into_iter()
        .map(|(v, _)| v.id)
        .collect())
}

/// Parses `1,2,3`.
fn parse_ids(raw: &str) -> Result<BTreeSet<i64>, ApiError> {
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| ApiError::bad_request(format!("not a device id: {s:?}")))
        })
        .collect()
}

/// Query of an upload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// Device ids, comma-separated.
    pub devices: String,
    /// The file's name (sanitised).
    pub name: String,
    /// The folder on the devices (sanitised; default: the name without extension).
    #[serde(default)]
    pub title: Option<String>,
}

/// Streams the request body into `tmp`, refusing more than `max` bytes;
/// returns the size and SHA-256.
pub async fn receive_body(
    body: Body,
    tmp: &std::path::Path,
    max: u64,
) -> Result<(u64, String), ApiError> {
    let mut file = tokio::fs::File::create(tmp)
        .await
        .map_err(ApiError::internal)?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
        size += chunk.len() as u64;
        if size > max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the file is larger than this school's limit of {} MiB",
                    max / (1024 * 1024)
                ),
            ));
        }
        hash.update(&chunk);
        file.write_all(&chunk).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    file.sync_all().await.map_err(ApiError::internal)?;
    Ok((size, hex::encode(hash.finalize())))
}

/// `POST /files?devices=1,2&name=Worksheet.pdf[&title=…]`, the body being
/// the file: stored on disk as it arrives (never held in memory), then
/// offered to each device (201 with the transfer and its deliveries).
pub async fn upload(
    State(st): State<Shared>,
    auth: Authed,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // Rights before the request's shape: no right, no validation hints.
    auth.require(&st, FEATURE).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let ids = parse_ids(&q.devices)?;
    controlled(&st, &auth, &ids).await?;
    let school = auth.session.user.school_id;
    let limits = core::limits(&st, school).await;
    let name = lectern_policy::files::sanitize_name(&q.name, "file");
    let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
    let title = lectern_policy::files::sanitize_name(q.title.as_deref().unwrap_or(stem), "Files");
    let dir = core::uploads_dir(&st);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(ApiError::internal)?;
    let tmp = dir.join(format!("upload-{}.tmp", rand::random::<u64>()));
    let received = receive_body(body, &tmp, limits.max_upload_mib * 1024 * 1024).await;
    let (size, sha256) = match received {
        Ok(r) => r,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
    };
    let by = Actor::from(&auth);
    let t = send_file(&st, &by, &ids, &tmp, (name, title, size, sha256), None).await?;
    Ok((StatusCode::CREATED, Json(transfer_json(&t, &[], &ids))))
}

/// Who sends a file: a signed-in user, or the exam schedule acting for the
/// exam's creator (then there is no address).
pub struct Actor<'a> {
    /// The school acted in.
    pub school: lectern_store::SchoolId,
    /// The name audited.
    pub name: &'a str,
    /// The caller's address, if a person.
    pub address: Option<String>,
}

impl<'a> From<&'a Authed> for Actor<'a> {
    fn from(auth: &'a Authed) -> Self {
        Actor {
            school: auth.session.user.school_id,
            name: auth.username(),
            address: auth.address.clone(),
        }
    }
}

/// Records a received upload at `tmp` as a transfer to `ids`, moves it in
/// place, audits and offers it to the online devices. The caller has
/// checked that `by` controls every device of `ids`.
pub async fn send_file(
    st: &Shared,
    by: &Actor<'_>,
    ids: &BTreeSet<i64>,
    tmp: &std::path::Path,
    (name, title, size, sha256): (String, String, u64, String),
    exam_id: Option<i64>,
) -> Result<Transfer, ApiError> {
    let school = by.school;
    let t = Transfer {
        id: 0,
        name,
        title,
        size: size as i64,
        sha256,
        created_by: by.name.to_string(),
        created_at: now_ms(),
        exam_id,
    };
    let devices: Vec<i64> = ids.iter().copied().collect();
    let t = st
        .db(move |s| s.files().add_transfer(school, &t, &devices))
        .await?;
    tokio::fs::rename(tmp, core::uploads_dir(st).join(t.id.to_string()))
        .await
        .map_err(ApiError::internal)?;
    let mut online = 0;
    for d in ids {
        online += usize::from(core::offer_to(st, &t, *d).await);
    }
    let mut entry = st.audit_entry(school, by.name, by.address.clone(), "files.send", "sent");
    entry.devices = devices_vec(ids);
    entry.detail = format!("transfer {}: {} ({} bytes)", t.id, t.name, t.size);
    entry.outcome = format!("offered to {online}, offline {}", ids.len() - online);
    st.audit(entry).await;
    Ok(t)
}

fn devices_vec(ids: &BTreeSet<i64>) -> Vec<i64> {
    ids.iter().copied().collect()
}

fn transfer_json(t: &Transfer, deliveries: &[Delivery], ids: &BTreeSet<i64>) -> Value {
    json!({
        "id": t.id, "name": t.name, "title": t.title, "size": t.size, "sha256": t.sha256,
        "created_by": t.created_by, "created_at": t.created_at, "exam_id": t.exam_id,
        "devices": ids, "deliveries": deliveries,
    })
}

/// `GET /files`: recent transfers to devices the caller sees.
pub async fn list(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let seen = seen(&st, &auth).await?;
    let school = auth.session.user.school_id;
    let all = st
        .db(move |s| {
            let f = s.files();
            f.transfers(school)?
                .into_iter()
                .map(|t| Ok((f.deliveries(school, t.id)?, t)))
                .collect::<lectern_store::Result<Vec<_>>>()
        })
        .await?;
    let out: Vec<Value> = all
        .into_iter()
        .filter_map(|(d, t)| shown_transfer(&t, d, &seen))
        .collect();
    Ok(Json(json!(out)))
}

fn shown_transfer(t: &Transfer, mut d: Vec<Delivery>, seen: &BTreeSet<i64>) -> Option<Value> {
    d.retain(|x| seen.contains(&x.device_id));
    if d.is_empty() {
        return None;
    }
    let ids = d.iter().map(|x| x.device_id).collect();
    Some(transfer_json(t, &d, &ids))
}

/// `GET /files/{id}`: one transfer with each visible device's progress.
pub async fn get_one(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let seen = seen(&st, &auth).await?;
    let school = auth.session.user.school_id;
    let found = st
        .db(move |s| {
            let f = s.files();
            Ok(match f.transfer(school, id)? {
                Some(t) => Some((f.deliveries(school, id)?, t)),
                None => None,
            })
        })
        .await?;
    found
        .and_then(|(d, t)| shown_transfer(&t, d, &seen))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no file transfer {id}")))
}

/// Body of `POST /collections`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCollection {
    /// Devices to collect from.
    pub devices: Vec<i64>,
    /// File or folder under the student's `~/Lectern/`.
    pub path: String,
}

/// `POST /collections {devices, path}`: asks each device for the file or
/// folder (201 with the collection).
pub async fn collect(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<NewCollection>, ApiError>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require(&st, FEATURE).await?;
    let JsonBody(body) = body?;
    let ids: BTreeSet<i64> = body.devices.iter().copied().collect();
    let c = start_collection(&st, &auth, &ids, &body.path, None).await?;
    let school = auth.session.user.school_id;
    let id = c.id;
    let h = st.db(move |s| s.files().hand_ins(school, id)).await?;
    Ok((StatusCode::CREATED, Json(collection_json(&c, &h))))
}

/// Checks `path` and the devices, records a collection and asks the online
/// devices for their hand-in.
pub async fn start_collection(
    st: &Shared,
    auth: &Authed,
    ids: &BTreeSet<i64>,
    path: &str,
    exam_id: Option<i64>,
) -> Result<Collection, ApiError> {
    lectern_policy::files::collect_path(path).map_err(|e| ApiError::bad_request(e.to_string()))?;
    controlled(st, auth, ids).await?;
    let school = auth.session.user.school_id;
    collect_from(
        st,
        school,
        auth.username(),
        auth.address.clone(),
        ids,
        path,
        exam_id,
    )
    .await
}

/// Each device's enrolled name and current (or last known) user.
async fn names_of(
    st: &Shared,
    school: lectern_store::SchoolId,
    ids: &BTreeSet<i64>,
) -> Result<HashMap<i64, (String, Option<String>)>, ApiError> {
    let online = st.hub.online();
    let devices = st.db(move |s| s.list_devices(school)).await?;
    Ok(devices
        .into_iter()
        .filter(|d| ids.contains(&d.id))
        .map(|d| {
            let user = online
                .get(&d.id)
                .and_then(|v| v.state.user.clone())
                .or_else(|| {
                    serde_json::from_str::<lectern_proto::DeviceState>(&d.state_json)
                        .ok()
                        .and_then(|s| s.user)
                });
            (d.id, (d.hostname, user))
        })
        .collect())
}

/// Records a collection of `path` from `ids` (already checked) by `actor`
/// and asks the online devices for their hand-in.
pub async fn collect_from(
    st: &Shared,
    school: lectern_store::SchoolId,
    actor: &str,
    address: Option<String>,
    ids: &BTreeSet<i64>,
    path: &str,
    exam_id: Option<i64>,
) -> Result<Collection, ApiError> {
    let parts = lectern_policy::files::collect_path(path)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let devices = names_of(st, school, ids).await?;
    let limits = core::limits(st, school).await;
    let c = Collection {
        id: 0,
        path: parts.join("/"),
        max_bytes: (limits.max_collect_mib * 1024 * 1024) as i64,
        created_by: actor.to_string(),
        created_at: now_ms(),
        exam_id,
    };
    let folders: Vec<(i64, String)> = devices
        .iter()
        .map(|(id, (host, user))| (*id, core::hand_in_folder(user.as_deref(), host, *id)))
        .collect();
    let c = st
        .db(move |s| s.files().add_collection(school, &c, &folders))
        .await?;
    let id = c.id;
    let hand_ins = st.db(move |s| s.files().hand_ins(school, id)).await?;
    let mut online = 0;
    for h in hand_ins {
        let device = h.device_id;
        online += usize::from(core::ask_for(st, &c, h, device).await);
    }
    let mut entry = st.audit_entry(school, actor, address, "files.collect", "asked");
    entry.devices = devices_vec(ids);
    entry.detail = format!("collection {}: {}", c.id, c.path);
    entry.outcome = format!("asked {online}, offline {}", ids.len() - online);
    st.audit(entry).await;
    Ok(c)
}

fn collection_json(c: &Collection, h: &[HandIn]) -> Value {
    json!({
        "id": c.id, "path": c.path, "max_bytes": c.max_bytes, "created_by": c.created_by,
        "created_at": c.created_at, "exam_id": c.exam_id, "hand_ins": h,
    })
}

/// A collection with the visible devices' hand-ins (`None`: none visible).
async fn visible_collection(
    st: &Shared,
    auth: &Authed,
    id: i64,
) -> Result<(Collection, Vec<HandIn>), ApiError> {
    let seen = seen(st, auth).await?;
    let school = auth.session.user.school_id;
    let found = st
        .db(move |s| {
            let f = s.files();
            Ok(match f.collection(school, id)? {
                Some(c) => Some((c, f.hand_ins(school, id)?)),
                None => None,
            })
        })
        .await?;
    let gone = || ApiError::not_found(format!("no collection {id}"));
    let (c, mut h) = found.ok_or_else(gone)?;
    h.retain(|x| seen.contains(&x.device_id));
    if h.is_empty() {
        return Err(gone());
    }
    Ok((c, h))
}

/// `GET /collections`: recent collections from devices the caller sees.
pub async fn collections(State(st): State<Shared>, auth: Authed) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let seen = seen(&st, &auth).await?;
    let school = auth.session.user.school_id;
    let all = st
        .db(move |s| {
            let f = s.files();
            f.collections(school)?
                .into_iter()
                .map(|c| Ok((f.hand_ins(school, c.id)?, c)))
                .collect::<lectern_store::Result<Vec<_>>>()
        })
        .await?;
    let out: Vec<Value> = all
        .into_iter()
        .filter_map(|(mut h, c)| {
            h.retain(|x| seen.contains(&x.device_id));
            (!h.is_empty()).then(|| collection_json(&c, &h))
        })
        .collect();
    Ok(Json(json!(out)))
}

/// `GET /collections/{id}`: one collection with each visible device's hand-in.
pub async fn collection(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    auth.require(&st, FEATURE).await?;
    let (c, h) = visible_collection(&st, &auth, id).await?;
    Ok(Json(collection_json(&c, &h)))
}

/// `GET /collections/{id}/zip`: the visible devices' hand-ins as one zip,
/// one folder per device, streamed as it is made.
pub async fn zip(
    State(st): State<Shared>,
    auth: Authed,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    auth.require(&st, FEATURE).await?;
    zip_response(&st, &auth, id).await
}

/// The zip of a collection's hand-ins from the devices the caller sees.
pub async fn zip_response(st: &Shared, auth: &Authed, id: i64) -> Result<Response, ApiError> {
    let (c, h) = visible_collection(st, auth, id).await?;
    let root = core::collection_dir(st, c.id);
    let folders: Vec<String> = h.iter().map(|x| x.folder.clone()).collect();
    let mut entry = auth.audit_entry(st, "files.download", "ok");
    entry.devices = h.iter().map(|x| x.device_id).collect();
    entry.detail = format!("collection {}", c.id);
    st.audit(entry).await;
    let body = crate::zipstream::stream(root, folders, st.data_dir.join("tmp"))
        .await
        .map_err(ApiError::internal)?;
    let disposition = format!("attachment; filename=\"collection-{}.zip\"", c.id);
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// `GET /files/limits`: the school's file limits.
pub async fn get_limits(State(st): State<Shared>, auth: Authed) -> Result<Json<Limits>, ApiError> {
    auth.require(&st, FEATURE).await?;
    Ok(Json(core::limits(&st, auth.session.user.school_id).await))
}

/// `PUT /files/limits`: sets the school's file limits (administrators).
pub async fn put_limits(
    State(st): State<Shared>,
    auth: Authed,
    body: Result<JsonBody<Limits>, ApiError>,
) -> Result<Json<Limits>, ApiError> {
    auth.require(&st, FEATURE).await?;
    if !auth.rights.all {
        auth.deny(&st, "file limits", Vec::new()).await;
        return Err(ApiError::forbidden(
            "You can't change this school's file limits. Ask your administrator.",
        )
        .with_reason(super::reason::MISSING_RIGHT));
    }
    let JsonBody(l) = body?;
    for (what, v) in [
        ("max_upload_mib", l.max_upload_mib),
        ("max_collect_mib", l.max_collect_mib),
    ] {
        if !(1..=4096).contains(&v) {
            return Err(ApiError::bad_request(format!("{what} must be 1 to 4096")));
        }
    }
    let school = auth.session.user.school_id;
    let doc = serde_json::to_string(&l).map_err(ApiError::internal)?;
    st.db(move |s| s.set_document(school, core::LIMITS_DOC, &doc))
        .await?;
    let mut entry = st.audit_entry(
        school,
        auth.username(),
        auth.address.clone(),
        "files.limits",
        "ok",
    );
    entry.detail = format!(
        "upload {} MiB, collect {} MiB",
        l.max_upload_mib, l.max_collect_mib
    );
    st.audit(entry).await;
    Ok(Json(l))
}
