//! Serves the packed browser extension for self-hosted force-installation:
//! the Chrome/Edge update manifest, the signed CRX and the Firefox XPI, as
//! built by `scripts/package-extension.sh` and copied into the data
//! directory's `extension/` folder.
//!
//! Anonymous on purpose: browsers fetch these under enterprise policy,
//! without a console session. Only three fixed names are served (no path
//! from the request ever reaches the file system), and each file is capped
//! in size so a misplaced large file cannot exhaust memory.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::Shared;

/// Folder inside the data directory the files are read from.
pub const DIST_DIR: &str = "extension";
/// Largest file served; a packed extension is well under 1 MiB.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// One servable file: its fixed name and content type.
#[derive(Clone, Copy)]
struct DistFile {
    name: &'static str,
    content_type: &'static str,
}

const UPDATE_XML: DistFile = DistFile {
    name: "update.xml",
    content_type: "application/xml; charset=utf-8",
};
const CRX: DistFile = DistFile {
    name: "lectern.crx",
    content_type: "application/x-chrome-extension",
};
const XPI: DistFile = DistFile {
    name: "lectern.xpi",
    content_type: "application/x-xpinstall",
};

/// `GET /extension/update.xml`, `/extension/lectern.crx`, `/extension/lectern.xpi`.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/extension/update.xml", get(|st| serve(st, UPDATE_XML)))
        .route("/extension/lectern.crx", get(|st| serve(st, CRX)))
        .route("/extension/lectern.xpi", get(|st| serve(st, XPI)))
}

async fn serve(State(st): State<Shared>, file: DistFile) -> Response {
    let path = st.data_dir.join(DIST_DIR).join(file.name);
    match read_capped(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, file.content_type),
                // Browsers poll for updates; a cached manifest would hide a new version.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(ReadError::Missing) => (
            StatusCode::NOT_FOUND,
            format!(
                "{} is not published on this server (copy it into the data directory's {DIST_DIR}/ folder)",
                file.name
            ),
        )
            .into_response(),
        Err(ReadError::TooLarge) => {
            tracing::warn!("{}: over {MAX_FILE_BYTES} bytes; not served", path.display());
            (StatusCode::INTERNAL_SERVER_ERROR, "file too large to serve").into_response()
        }
        Err(ReadError::Io(e)) => {
            tracing::warn!("{}: {e}", path.display());
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file").into_response()
        }
    }
}

/// Why a file could not be served.
#[derive(Debug)]
enum ReadError {
    /// Not there (or not a regular file).
    Missing,
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge,
    Io(std::io::Error),
}

async fn read_capped(path: &std::path::Path) -> Result<Vec<u8>, ReadError> {
    let meta = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => return Err(ReadError::Io(e)),
    };
    if !meta.is_file() {
        return Err(ReadError::Missing);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    tokio::fs::read(path).await.map_err(ReadError::Io)
}
