//! The ABI on the host, and the fixture the extension's Node test compares
//! the built .wasm against (extension/test/fixtures/keywords.json).

use super::*;
use lectern_keywords::DEFAULT_LIBRARY_CSV;

/// Calls an ABI function the way the extension does: copy in, call, read the
/// length-prefixed result, free both.
fn call(f: unsafe extern "C" fn(*const u8, usize) -> *mut u8, input: &[u8]) -> serde_json::Value {
    let ptr = lectern_alloc(input.len());
    // SAFETY: `ptr` has `input.len()` bytes; the result is length-prefixed
    // and freed with exactly that length, as the ABI documents.
    unsafe {
        std::ptr::copy_nonoverlapping(input.as_ptr(), ptr, input.len());
        let out = f(ptr, input.len());
        lectern_free(ptr, input.len());
        let len =
            u32::from_le_bytes(std::slice::from_raw_parts(out, 4).try_into().unwrap()) as usize;
        let json = std::slice::from_raw_parts(out.add(4), len).to_vec();
        lectern_free(out, 4 + len);
        serde_json::from_slice(&json).unwrap()
    }
}

/// The ABI end to end. One test, in order, because the loaded library is
/// module-wide (as in the extension's single instance).
#[test]
fn abi_loads_a_library_and_scans() {
    // A broken library is refused; scanning before any library says so.
    let bad = call(lectern_load, b"{\"terms\": 7}");
    assert!(
        bad["error"].as_str().unwrap().starts_with("library JSON"),
        "{bad}"
    );
    let none = call(lectern_scan, br#"{"text":"go d1e"}"#);
    if none.get("error").is_some() {
        assert_eq!(none["error"], "no library loaded");
    }

    // The CSV a school edits, then the JSON the server pushes.
    let csv = call(lectern_load, DEFAULT_LIBRARY_CSV.as_bytes());
    let n = csv["terms"].as_u64().unwrap();
    assert!(n > 20, "{csv}");
    let json = serde_json::to_vec(&Library::default_library()).unwrap();
    assert_eq!(call(lectern_load, &json)["terms"].as_u64(), Some(n));

    let r = call(
        lectern_scan,
        br#"{"text":"ok so just k i l l    y0urs3lf","url":"https://chat.example/room"}"#,
    );
    let m = &r["matches"][0];
    assert_eq!(r["matches"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(m["term"], "kill yourself");
    assert_eq!(m["source"], "text");
    assert_eq!(m["category"], "bullying");
    assert_eq!(m["severity"], 5);
    assert_eq!(m["matched"], "k i l l    y0urs3lf");
    assert_eq!(
        (m["start"].as_u64(), m["end"].as_u64()),
        (Some(11), Some(30))
    );
    assert_eq!(
        m["context"],
        "ok so just k i l l    y0urs3lf (typed on https://chat.example/room)"
    );

    // A search inside an address is found as a search.
    let r = call(
        lectern_scan,
        br#"{"event":{"kind":"web","user":null,"url":"https://search.example/?q=i+want+to+die","title":"Search","app":null,"at":1}}"#,
    );
    assert_eq!(r["matches"][0]["source"], "search", "{r}");
    assert_eq!(r["matches"][0]["term"], "want to die");

    // Bad requests get a clear error and the library stays loaded.
    for (input, error) in [
        (&b"not json"[..], "request:"),
        (br#"{"text":"a","event":{"kind":"web","user":null,"url":null,"title":null,"app":null,"at":1}}"#, "give either"),
        (br#"{}"#, "give either"),
        (br#"{"text":"a","source":""}"#, "source must"),
        (br#"{"text":"a","extra":1}"#, "request:"),
    ] {
        let r = call(lectern_scan, input);
        assert!(r["error"].as_str().unwrap().starts_with(error), "{r}");
    }
    let big = vec![b' '; MAX_REQUEST_BYTES + 1];
    assert!(call(lectern_scan, &big)["error"]
        .as_str()
        .unwrap()
        .contains("over"));
    assert!(call(lectern_load, &[0xff, 0xfe])["error"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    assert_eq!(
        call(lectern_scan, br#"{"text":"go d1e"}"#)["matches"][0]["term"],
        "go die"
    );
}

/// Disguised texts and events the Node test scans with the built .wasm.
fn fixture_requests() -> Vec<serde_json::Value> {
    use serde_json::json;
    let event = |url: &str, title: &str| json!({"event": {"kind": "web", "user": null, "url": url, "title": title, "app": null, "at": 1}});
    vec![
        json!({"text": "just k i l l    y0urs3lf lol. anyway, the photo shoot is at 3"}),
        json!({"text": "you should KILL URSELF", "url": "https://forum.example/t/1"}),
        json!({"text": "ｋｉｌｌ ｙｏｕｒｓｅｌｆ"}),
        json!({"text": "😀😀 ķïłł yourself, go d1e"}),
        json!({"text": "kiiiill yourself"}),
        json!({"text": "the class had grape juice", "source": "search"}),
        json!({"text": "watching suicide squad tonight"}),
        json!({"text": "i want to d i e"}),
        event(
            "https://search.example/results?q=how+to+k1ll+myself&lang=en",
            "Results",
        ),
        event("https://news.example/a", "Why I wanna die"),
        event("https://example.org/", "Homework"),
    ]
}

/// Builds the fixture with the native engine; `LECTERN_UPDATE_FIXTURES=1`
/// rewrites it, otherwise it must equal the committed one (so the .wasm is
/// compared with what the native code finds today).
#[test]
fn fixture_is_what_the_native_engine_finds() {
    let library = Library::default_library();
    let scanner = Scanner::new(&library).unwrap();
    let cases: Vec<serde_json::Value> = fixture_requests()
        .into_iter()
        .map(|request| {
            let req: ScanRequest = serde_json::from_value(request.clone()).unwrap();
            let matches = scan(&scanner, req).unwrap();
            serde_json::json!({ "request": request, "matches": matches })
        })
        .collect();
    let found: usize = cases
        .iter()
        .map(|c| c["matches"].as_array().unwrap().len())
        .sum();
    assert!(found >= 9, "the disguises should be found: {cases:#?}");
    let fixture = serde_json::json!({ "library": library, "cases": cases });
    let text = serde_json::to_string_pretty(&fixture).unwrap() + "\n";
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../extension/test/fixtures/keywords.json"
    );
    if std::env::var_os("LECTERN_UPDATE_FIXTURES").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == text,
        "{path} is stale: run LECTERN_UPDATE_FIXTURES=1 cargo test -p lectern-keywords-wasm"
    );
}

/// Typed text is reported as the agent's `Safety::scan_typed` reports it.
#[test]
fn typed_text_matches_the_agents_reports() {
    let scanner = Scanner::new(&Library::default_library()).unwrap();
    let text = "so basically   go d1e lol and kys".to_string();
    let req = ScanRequest {
        text: Some(text.clone()),
        source: None,
        url: None,
        event: None,
    };
    let ours = scan(&scanner, req).unwrap();
    let agent: Vec<(String, String, String)> = scanner
        .scan_each_term_once(&[("text", text)])
        .into_iter()
        .map(|(_, t, m)| {
            (
                m.term.clone(),
                m.matched.clone(),
                lectern_policy::safety::context(t, m.start, m.end),
            )
        })
        .collect();
    let ours: Vec<_> = ours
        .into_iter()
        .map(|f| (f.term, f.matched, f.context))
        .collect();
    assert_eq!(ours, agent);
    assert_eq!(ours.len(), 2);
}
