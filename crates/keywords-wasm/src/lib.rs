//! The desktop agent's keyword scanning for the browser extension.
//!
//! Compiled to `wasm32-unknown-unknown` (`scripts/build-extension-wasm.sh`),
//! this is `lectern-keywords` and `lectern-policy::safety` unchanged, so a
//! Chromebook finds exactly what the agent finds: no second implementation in
//! JavaScript. The ABI is plain C, so no binding generator is needed:
//!
//! - [`lectern_alloc`]`(len) -> ptr` and [`lectern_free`]`(ptr, len)` manage
//!   buffers in linear memory;
//! - [`lectern_load`]`(ptr, len) -> result` installs a library: the JSON the
//!   server pushes in `ServerMsg::Keywords`, or the school's CSV;
//! - [`lectern_scan`]`(ptr, len) -> result` scans one request (see [`scan_json`]).
//!
//! A result is `[length u32 LE][UTF-8 JSON]`, freed by the caller with
//! `lectern_free(result, 4 + length)`; errors come back as `{"error": "…"}`.
//! The same functions are ordinary Rust on the host, where the tests call them.

use std::sync::Mutex;

use lectern_keywords::{Library, MatchType, Scanner};
use lectern_proto::ActivityEvent;
use serde::{Deserialize, Serialize};

/// Largest library accepted (the server's text frames are at most 1 MiB).
pub const MAX_LIBRARY_BYTES: usize = 4 * 1024 * 1024;
/// Largest scan request (typed text is cut at 1000 characters, URLs at 2048).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Longest source tag.
const MAX_SOURCE_LEN: usize = 32;

/// The installed scanner; `None` until a library is loaded. A Mutex rather
/// than a thread-local so host tests on several threads share it safely.
static SCANNER: Mutex<Option<Scanner>> = Mutex::new(None);

/// One scan request.
///
/// Either typed text, `{"text": "…", "source": "text", "url": "…"}` (source
/// defaults to `text`; `url`, the page it was typed on, goes into the context
/// as the agent writes it), or an activity event, `{"event": {…}}`, whose
/// title, searches and address are scanned as the agent and server do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// Typed text.
    #[serde(default)]
    pub text: Option<String>,
    /// Where the text came from (`text`, `search`…).
    #[serde(default)]
    pub source: Option<String>,
    /// The page the text was typed on.
    #[serde(default)]
    pub url: Option<String>,
    /// An activity event.
    #[serde(default)]
    pub event: Option<ActivityEvent>,
}

/// One match: the fields of a `ViolationReport` the engine decides, plus the
/// span (UTF-8 byte offsets into the scanned text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// Where it was found: `text`, `title`, `search`, `url`…
    pub source: String,
    /// The library's term.
    pub term: String,
    /// Its category.
    pub category: String,
    /// 1 to 5.
    pub severity: u8,
    /// `word`, `phrase` or `substring`.
    pub match_type: MatchType,
    /// The text as written.
    pub matched: String,
    /// Byte offset of the match in that text.
    pub start: usize,
    /// Byte offset just past it.
    pub end: usize,
    /// Text around it, as the agent reports it.
    pub context: String,
}

/// Reads a library: JSON (what the server pushes) or CSV (what schools edit).
pub fn parse_library(input: &str) -> Result<Library, String> {
    if input.len() > MAX_LIBRARY_BYTES {
        return Err(format!("library over {MAX_LIBRARY_BYTES} bytes"));
    }
    if input.trim_start().starts_with('{') {
        serde_json::from_str(input).map_err(|e| format!("library JSON: {e}"))
    } else {
        Library::from_csv(input).map_err(|e| format!("library CSV: {e}"))
    }
}

/// Installs a library; answers `{"terms": n}` or `{"error": …}`. A bad
/// library leaves the previous one in place.
pub fn load_json(input: &[u8]) -> String {
    let outcome = std::str::from_utf8(input)
        .map_err(|_| "library is not UTF-8".to_string())
        .and_then(parse_library)
        .and_then(|lib| {
            let scanner = Scanner::new(&lib).map_err(|e| e.to_string())?;
            *SCANNER.lock().unwrap_or_else(|p| p.into_inner()) = Some(scanner);
            Ok(lib.terms.len())
        });
    match outcome {
        Ok(terms) => serde_json::json!({ "terms": terms }).to_string(),
        Err(e) => error_json(&e),
    }
}

/// Scans one [`ScanRequest`]; answers `{"matches": [Found…]}` (one per term,
/// first occurrence, as the agent reports) or `{"error": …}`.
pub fn scan_json(input: &[u8]) -> String {
    if input.len() > MAX_REQUEST_BYTES {
        return error_json(&format!("request over {MAX_REQUEST_BYTES} bytes"));
    }
    let req: ScanRequest = match serde_json::from_slice(input) {
        Ok(r) => r,
        Err(e) => return error_json(&format!("request: {e}")),
    };
    let guard = SCANNER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(scanner) = guard.as_ref() else {
        return error_json("no library loaded");
    };
    match scan(scanner, req) {
        Ok(matches) => serde_json::json!({ "matches": matches }).to_string(),
        Err(e) => error_json(&e),
    }
}

/// The matches of one request, built exactly as `lectern-agent`'s
/// `Safety::scan` and `Safety::scan_typed` build their reports.
pub fn scan(scanner: &Scanner, req: ScanRequest) -> Result<Vec<Found>, String> {
    let (texts, url) = match (req.text, req.event) {
        (Some(text), None) => {
            let source = req.source.unwrap_or_else(|| "text".into());
            if source.is_empty() || source.len() > MAX_SOURCE_LEN {
                return Err("source must be 1 to 32 bytes".into());
            }
            (vec![(source, text)], req.url)
        }
        (None, Some(event)) => {
            let texts = lectern_policy::safety::event_texts(&event)
                .into_iter()
                .map(|(s, t)| (s.to_string(), t))
                .collect();
            (texts, None)
        }
        _ => return Err("give either text or event".into()),
    };
    let tagged: Vec<(usize, String)> = texts
        .iter()
        .enumerate()
        .map(|(i, (_, t))| (i, t.clone()))
        .collect();
    let found = scanner
        .scan_each_term_once(&tagged)
        .into_iter()
        .map(|(i, text, m)| {
            let mut context = lectern_policy::safety::context(text, m.start, m.end);
            if let Some(u) = &url {
                context = format!("{context} (typed on {u})");
            }
            Found {
                source: texts[i].0.clone(),
                term: m.term,
                category: m.category,
                severity: m.severity,
                match_type: m.match_type,
                matched: m.matched,
                start: m.start,
                end: m.end,
                context,
            }
        })
        .collect();
    Ok(found)
}

fn error_json(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// Moves `json` into linear memory as `[len u32 LE][bytes]`.
fn into_result(json: String) -> *mut u8 {
    let mut out = Vec::with_capacity(4 + json.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(json.as_bytes());
    Box::into_raw(out.into_boxed_slice()) as *mut u8
}

/// Borrows the caller's input buffer.
///
/// # Safety
/// `ptr` must come from [`lectern_alloc`] with at least `len` bytes written.
unsafe fn input<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller guarantees `ptr` holds `len` initialized bytes.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// A buffer of `len` bytes for the caller to fill; free it with
/// [`lectern_free`]`(ptr, len)`.
#[no_mangle]
pub extern "C" fn lectern_alloc(len: usize) -> *mut u8 {
    Box::into_raw(vec![0u8; len].into_boxed_slice()) as *mut u8
}

/// Frees a buffer from [`lectern_alloc`] or a result (`len` = 4 + its length).
///
/// # Safety
/// `ptr` and `len` must describe exactly one live buffer from this module.
#[no_mangle]
pub unsafe extern "C" fn lectern_free(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the caller passes back a boxed slice of exactly `len` bytes.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// Installs the library in `ptr[..len]` (JSON or CSV); see [`load_json`].
///
/// # Safety
/// As [`input`]: `ptr` holds `len` bytes from [`lectern_alloc`].
#[no_mangle]
pub unsafe extern "C" fn lectern_load(ptr: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    into_result(load_json(unsafe { input(ptr, len) }))
}

/// Scans the request in `ptr[..len]`; see [`scan_json`].
///
/// # Safety
/// As [`input`]: `ptr` holds `len` bytes from [`lectern_alloc`].
#[no_mangle]
pub unsafe extern "C" fn lectern_scan(ptr: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    into_result(scan_json(unsafe { input(ptr, len) }))
}

#[cfg(test)]
mod tests;
