//! Issue 10.8: the server publishes the packed extension (update manifest,
//! CRX, XPI) anonymously from fixed names in the data directory.

mod common;

use common::TestServer;

async fn fetch(ts: &TestServer, path: &str) -> (u16, String, Vec<u8>) {
    let r = ts.client().get(ts.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn extension_files_are_served_anonymously_from_fixed_names() {
    let ts = TestServer::start().await;

    // Nothing published yet: a clear 404, not a server error.
    let (status, _, body) = fetch(&ts, "/extension/update.xml").await;
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("not published"));

    let dir = ts.data_dir().join("extension");
    std::fs::create_dir_all(&dir).unwrap();
    let xml = "<?xml version='1.0' encoding='UTF-8'?>\n<gupdate xmlns='http://www.google.com/update2/response' protocol='2.0'></gupdate>\n";
    std::fs::write(dir.join("update.xml"), xml).unwrap();
    let crx = b"Cr24\x03\x00\x00\x00rest-of-a-crx".to_vec();
    std::fs::write(dir.join("lectern.crx"), &crx).unwrap();
    std::fs::write(dir.join("lectern.xpi"), b"PK\x03\x04xpi").unwrap();
    std::fs::write(dir.join("other.txt"), b"not for browsers").unwrap();

    // No session, no token: browsers fetch these under policy.
    let (status, ct, body) = fetch(&ts, "/extension/update.xml").await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/xml"), "{ct}");
    assert_eq!(body, xml.as_bytes());
    // Chrome appends its update-check query; it changes nothing.
    let (status, _, body) = fetch(&ts, "/extension/update.xml?x=id%3Dabc%26v%3D0.1.0").await;
    assert_eq!((status, body.as_slice()), (200, xml.as_bytes()));
    let (status, ct, body) = fetch(&ts, "/extension/lectern.crx").await;
    assert_eq!(
        (status, ct.as_str()),
        (200, "application/x-chrome-extension")
    );
    assert_eq!(body, crx);
    let (status, ct, _) = fetch(&ts, "/extension/lectern.xpi").await;
    assert_eq!((status, ct.as_str()), (200, "application/x-xpinstall"));

    // Only the fixed names: other files in the folder, and anything outside
    // it (the database, the configuration, the key), are not reachable.
    for path in [
        "/extension/other.txt",
        "/extension/../lectern.db",
        "/extension/%2e%2e/server.toml",
        "/extension/..%2fkey.pem",
        "/extension/",
    ] {
        let (status, _, body) = fetch(&ts, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!body.starts_with(b"SQLite"), "{path}");
    }

    // A file over the size cap is refused, and the server keeps serving.
    std::fs::File::create(dir.join("lectern.crx"))
        .unwrap()
        .set_len(lectern_server::extension_dist::MAX_FILE_BYTES + 1)
        .unwrap();
    let (status, _, body) = fetch(&ts, "/extension/lectern.crx").await;
    assert_eq!(status, 500);
    assert!(body.len() < 1024);
    let (status, _, _) = fetch(&ts, "/extension/update.xml").await;
    assert_eq!(status, 200);
    let (status, _, _) = fetch(&ts, "/healthz").await;
    assert_eq!(status, 200);
}
