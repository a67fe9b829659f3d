//! The school's look on student screens (issue 13 point 1): a display name
//! and an optional logo, per school (a school document, keyed by the
//! caller's school), set by holders of the `school.look` right, audited.
//!
//! A logo upload is PNG or JPEG of at most [`MAX_UPLOAD`] bytes and
//! [`MAX_SIDE`] pixels a side; it is decoded here and stored re-encoded as
//! an 8-bit RGBA PNG (so no metadata, odd chunk or decoder trick of the
//! original reaches an agent), addressed by the SHA-256 of that PNG.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use lectern_proto::{Capability, ServerMsg};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::auth::Authed;
use super::ApiError;
use crate::state::Shared;

/// The school document the look is kept in.
const DOCUMENT: &str = "school_look";
/// The right to read and change it.
const RIGHT: &str = "school.look";
/// Largest logo upload, in bytes.
pub const MAX_UPLOAD: usize = 256 * 1024;
/// Widest and tallest logo, in pixels.
pub const MAX_SIDE: u32 = 512;
/// Largest re-encoded PNG (agents refuse more than 512 KiB).
const MAX_STORED: usize = 512 * 1024;
/// Longest display name, in characters.
pub const MAX_NAME: usize = 100;

/// The stored look.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Look {
    /// Display name on student screens; empty: the enrolled school's name.
    name: String,
    /// The logo, if any.
    logo: Option<StoredLogo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredLogo {
    /// SHA-256 of the PNG, hex: what agents ask for and cache by.
    sha256: String,
    width: u32,
    height: u32,
    /// The PNG, base64.
    png: String,
}

/// What `GET /school/look` answers.
#[derive(Debug, Serialize)]
struct LookView {
    name: String,
    logo: Option<LogoView>,
}

#[derive(Debug, Serialize)]
struct LogoView {
    sha256: String,
    width: u32,
    height: u32,
    bytes: usize,
}

/// Why an upload is not a usable logo.
#[derive(Debug, PartialEq, Eq)]
enum LogoRefusal {
    TooLarge,
    NotAnImage,
    Unreadable(String),
    BadSize(u32, u32),
    TooComplex,
}

impl LogoRefusal {
    fn to_api(&self) -> ApiError {
        match self {
            LogoRefusal::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The logo must be at most {} KiB.", MAX_UPLOAD / 1024),
            ),
            LogoRefusal::NotAnImage => {
                ApiError::bad_request("The logo must be a PNG or JPEG image.")
            }
            LogoRefusal::Unreadable(e) => {
                ApiError::bad_request(format!("The logo image could not be read: {e}"))
            }
            LogoRefusal::BadSize(w, h) => ApiError::bad_request(format!(
                "The logo is {w}×{h} pixels; each side must be 1 to {MAX_SIDE}."
            )),
            LogoRefusal::TooComplex => ApiError::bad_request(
                "The logo is too detailed to send to computers; use a simpler or smaller image.",
            ),
        }
    }
}

async fn load(st: &Shared, school: lectern_store::SchoolId) -> Result<Look, ApiError> {
    let doc = st.db(move |s| s.document(school, DOCUMENT)).await?;
    Ok(doc
        .and_then(|d| serde_json::from_str(&d).ok())
        .unwrap_or_default())
}

async fn save(st: &Shared, school: lectern_store::SchoolId, look: &Look) -> Result<(), ApiError> {
    let json = serde_json::to_string(look).map_err(ApiError::internal)?;
    st.db(move |s| s.set_document(school, DOCUMENT, &json))
        .await
}

async fn audit(st: &Shared, auth: &Authed, action: &str, detail: String) {
    st.audit(lectern_store::NewAudit {
        school_id: auth.session.user.school_id,
        detail,
        ..auth.audit_entry(st, action, "ok")
    })
    .await;
}

/// `GET /school/look`: the name and the logo's hash and size.
pub async fn get(State(st): State<Shared>, auth: Authed) -> Result<Response, ApiError> {
    auth.require(&st, RIGHT).await?;
    let look = load(&st, auth.session.user.school_id).await?;
    let logo = look.logo.map(|l| LogoView {
        bytes: base64::engine::general_purpose::STANDARD
            .decode(&l.png)
            .map(|b| b.len())
            .unwrap_or(0),
        sha256: l.sha256,
        width: l.width,
        height: l.height,
    });
    Ok(Json(LookView {
        name: look.name,
        logo,
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBody {
    name: String,
}

/// `PUT /school/look` `{"name": "…"}`: the display name (empty: the
/// enrolled school's name).
pub async fn put_name(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    auth.require(&st, RIGHT).await?;
    let body: NameBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("bad request body: {e}")))?;
    let name = check_name(&body.name).map_err(ApiError::bad_request)?;
    let school = auth.session.user.school_id;
    let mut look = load(&st, school).await?;
    look.name = name.clone();
    save(&st, school, &look).await?;
    audit(&st, &auth, "school.look.name", format!("name {name:?}")).await;
    push_to_agents(&st, school).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The name trimmed, or why it is refused.
fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME {
        return Err(format!("The name must be at most {MAX_NAME} characters."));
    }
    if name.chars().any(char::is_control) {
        return Err("The name must be one line of text.".into());
    }
    Ok(name.to_owned())
}

/// `GET /school/look/logo`: the stored PNG.
pub async fn get_logo(State(st): State<Shared>, auth: Authed) -> Result<Response, ApiError> {
    auth.require(&st, RIGHT).await?;
    let look = load(&st, auth.session.user.school_id).await?;
    let logo = look
        .logo
        .ok_or_else(|| ApiError::not_found("This school has no logo."))?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(&logo.png)
        .map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png".to_owned()),
            (header::ETAG, format!("\"{}\"", logo.sha256)),
            (header::CACHE_CONTROL, "private, no-cache".to_owned()),
        ],
        png,
    )
        .into_response())
}

/// `PUT /school/look/logo` with a PNG or JPEG body.
pub async fn put_logo(
    State(st): State<Shared>,
    auth: Authed,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require(&st, RIGHT).await?;
    let upload = body.to_vec();
    let (png, width, height) = tokio::task::spawn_blocking(move || reencode(&upload))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| e.to_api())?;
    let sha256 = hex::encode(Sha256::digest(&png));
    let school = auth.session.user.school_id;
    let mut look = load(&st, school).await?;
    let bytes = png.len();
    look.logo = Some(StoredLogo {
        sha256: sha256.clone(),
        width,
        height,
        png: base64::engine::general_purpose::STANDARD.encode(&png),
    });
    save(&st, school, &look).await?;
    audit(
        &st,
        &auth,
        "school.look.logo",
        format!("{width}×{height}, {bytes} bytes, sha256 {sha256}"),
    )
    .await;
    push_to_agents(&st, school).await;
    Ok(Json(LogoView {
        sha256,
        width,
        height,
        bytes,
    })
    .into_response())
}

/// `DELETE /school/look/logo`.
pub async fn delete_logo(State(st): State<Shared>, auth: Authed) -> Result<StatusCode, ApiError> {
    auth.require(&st, RIGHT).await?;
    let school = auth.session.user.school_id;
    let mut look = load(&st, school).await?;
    if look.logo.take().is_none() {
        return Err(ApiError::not_found("This school has no logo."));
    }
    save(&st, school, &look).await?;
    audit(&st, &auth, "school.look.logo_deleted", String::new()).await;
    push_to_agents(&st, school).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Decodes a PNG or JPEG upload within the limits and encodes it again as
/// an 8-bit RGBA PNG: (png, width, height).
fn reencode(upload: &[u8]) -> Result<(Vec<u8>, u32, u32), LogoRefusal> {
    if upload.len() > MAX_UPLOAD {
        return Err(LogoRefusal::TooLarge);
    }
    let (w, h, rgba) = if upload.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(upload)?
    } else if upload.starts_with(&[0xff, 0xd8, 0xff]) {
        decode_jpeg(upload)?
    } else {
        return Err(LogoRefusal::NotAnImage);
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Best);
    let unexpected = |e: png::EncodingError| LogoRefusal::Unreadable(e.to_string());
    let mut writer = enc.write_header().map_err(unexpected)?;
    writer.write_image_data(&rgba).map_err(unexpected)?;
    writer.finish().map_err(unexpected)?;
    if out.len() > MAX_STORED {
        return Err(LogoRefusal::TooComplex);
    }
    Ok((out, w, h))
}

fn check_size(w: u32, h: u32) -> Result<(), LogoRefusal> {
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(LogoRefusal::BadSize(w, h));
    }
    Ok(())
}

fn decode_png(data: &[u8]) -> Result<(u32, u32, Vec<u8>), LogoRefusal> {
    let bad = |e: png::DecodingError| LogoRefusal::Unreadable(e.to_string());
    let limits = png::Limits {
        bytes: (MAX_SIDE * MAX_SIDE * 8) as usize,
    };
    let mut dec = png::Decoder::new_with_limits(data, limits);
    dec.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = dec.read_info().map_err(bad)?;
    let (w, h) = (reader.info().width, reader.info().height);
    // Checked before decoding: a small file may claim a huge image.
    check_size(w, h)?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).map_err(bad)?;
    let px = &buf[..frame.buffer_size()];
    use png::ColorType as C;
    let rgba = match frame.color_type {
        C::Rgba => px.to_vec(),
        C::Rgb => px
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        C::GrayscaleAlpha => px
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        C::Grayscale => px.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        C::Indexed => return Err(LogoRefusal::Unreadable("palette not expanded".into())),
    };
    Ok((w, h, rgba))
}

fn decode_jpeg(data: &[u8]) -> Result<(u32, u32, Vec<u8>), LogoRefusal> {
    let bad = |e: jpeg_decoder::Error| LogoRefusal::Unreadable(e.to_string());
    let mut dec = jpeg_decoder::Decoder::new(data);
    dec.read_info().map_err(bad)?;
    let info = dec
        .info()
        .ok_or_else(|| LogoRefusal::Unreadable("no image header".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    check_size(w, h)?;
    let px = dec.decode().map_err(bad)?;
    use jpeg_decoder::PixelFormat as F;
    let rgba = match info.pixel_format {
        F::RGB24 => px
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        F::L8 => px.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        F::L16 => px
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], 255])
            .collect(),
        F::CMYK32 => px
            .chunks_exact(4)
            .flat_map(|p| {
                // Adobe's inverted CMYK, the usual kind in JPEG files.
                let k = u16::from(p[3]);
                let c = |v: u8| (u16::from(v) * k / 255) as u8;
                [c(p[0]), c(p[1]), c(p[2]), 255]
            })
            .collect(),
    };
    Ok((w, h, rgba))
}

/// What agents are told of the look: the display name (the enrolled
/// school's name when none is set) and the logo's hash.
pub(crate) async fn look_msg(st: &Shared, school: lectern_store::SchoolId) -> Option<ServerMsg> {
    let look = match load(st, school).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("cannot read the school's look: {}", e.message);
            return None;
        }
    };
    let name = if look.name.is_empty() {
        st.school_name(school).await
    } else {
        look.name
    };
    Some(ServerMsg::SchoolLook {
        name,
        logo_sha256: look.logo.map(|l| l.sha256),
    })
}

/// The logo's bytes for an agent that asked for `sha256`, if that is the
/// school's logo now.
pub(crate) async fn logo_msg(
    st: &Shared,
    school: lectern_store::SchoolId,
    sha256: &str,
) -> Option<ServerMsg> {
    let logo = load(st, school).await.ok()?.logo?;
    if logo.sha256 != sha256 {
        return None;
    }
    Some(ServerMsg::SchoolLogo {
        sha256: logo.sha256,
        png: logo.png,
    })
}

/// Tells each of the school's connected agents with a lock screen the new
/// look (another school's keep their own).
async fn push_to_agents(st: &Shared, school: lectern_store::SchoolId) {
    if let Some(msg) = look_msg(st, school).await {
        for id in st.hub.with_capability(Capability::Lock) {
            if st.device_school(id) == school {
                st.hub.send(id, msg.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let px: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        enc.write_header().unwrap().write_image_data(&px).unwrap();
        out
    }

    #[test]
    fn uploads_are_checked_and_reencoded() {
        let (png, w, h) = reencode(&png_of(64, 32)).expect("a small PNG");
        assert_eq!((w, h), (64, 32));
        assert!(png.starts_with(b"\x89PNG"));
        assert_eq!(reencode(b"GIF89a"), Err(LogoRefusal::NotAnImage));
        assert_eq!(
            reencode(&png_of(600, 10)),
            Err(LogoRefusal::BadSize(600, 10))
        );
        assert_eq!(
            reencode(&vec![0; MAX_UPLOAD + 1]),
            Err(LogoRefusal::TooLarge)
        );
        let mut cut = png_of(64, 32);
        cut.truncate(cut.len() / 2);
        assert!(matches!(reencode(&cut), Err(LogoRefusal::Unreadable(_))));
        // A JPEG is taken and becomes a PNG.
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90)
            .encode(&[200u8; 40 * 20 * 3], 40, 20, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let (png, w, h) = reencode(&jpeg).expect("a JPEG");
        assert_eq!((w, h), (40, 20));
        assert!(png.starts_with(b"\x89PNG"));
    }

    #[test]
    fn names_are_one_trimmed_line() {
        assert_eq!(check_name("  Ysgol Gŵyr ").unwrap(), "Ysgol Gŵyr");
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME + 1)).is_err());
        assert_eq!(check_name("").unwrap(), "");
    }
}
