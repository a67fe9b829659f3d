//! The school's look on student screens (issue 13 point 1): its name and
//! logo are set by holders of `school.look` only, uploads are checked and
//! stored re-encoded as PNG, refusals lose nothing, and every change is
//! audited.

mod common;

use common::TestServer;
use serde_json::{json, Value};

fn png_of(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let px: Vec<u8> = (0..w * h * 3).map(|i| (i % 7 * 30) as u8).collect();
    enc.write_header().unwrap().write_image_data(&px).unwrap();
    out
}

async fn put(ts: &TestServer, token: &str, path: &str, body: Vec<u8>, json: bool) -> (u16, Value) {
    let mut req = ts.client().put(ts.url(path)).bearer_auth(token).body(body);
    if json {
        req = req.header("content-type", "application/json");
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(Value::Null);
    (status, v)
}

async fn teacher(ts: &TestServer, admin: &str, name: &str) -> String {
    let password = format!("{name}-password");
    let (s, v) = ts
        .post(
            admin,
            "/api/v1/users",
            json!({"username": name, "password": password, "role": "teacher"}),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    ts.login_as(name, &password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_sets_name_and_logo_and_others_cannot() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    let v = ts.get(&admin, "/api/v1/school/look").await;
    assert_eq!(v, json!({"name": "", "logo": null}));

    let name = br#"{"name": "  Ysgol Gwyr  "}"#.to_vec();
    let (s, v) = put(&ts, &admin, "/api/v1/school/look", name, true).await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = put(
        &ts,
        &admin,
        "/api/v1/school/look/logo",
        png_of(120, 60),
        false,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let sha = v["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(120), Some(60))
    );

    let look = ts.get(&admin, "/api/v1/school/look").await;
    assert_eq!(look["name"], "Ysgol Gwyr");
    assert_eq!(look["logo"]["sha256"], sha.as_str());
    let r = ts
        .client()
        .get(ts.url("/api/v1/school/look/logo"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.headers()["etag"], format!("\"{sha}\"").as_str());
    let png = r.bytes().await.unwrap();
    let logo = png_size(&png);
    assert_eq!(logo, (120, 60));

    // Bad uploads: a clear error each, and the logo stays as it was.
    let (s, v) = put(
        &ts,
        &admin,
        "/api/v1/school/look/logo",
        b"GIF89a....".to_vec(),
        false,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("PNG or JPEG"), "{v}");
    let (s, v) = put(
        &ts,
        &admin,
        "/api/v1/school/look/logo",
        png_of(800, 20),
        false,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = put(
        &ts,
        &admin,
        "/api/v1/school/look/logo",
        vec![0; 300 * 1024],
        false,
    )
    .await;
    assert_eq!(s, 413);
    let (s, v) = put(
        &ts,
        &admin,
        "/api/v1/school/look",
        br#"{"name": "a\nb"}"#.to_vec(),
        true,
    )
    .await;
    assert_eq!(s, 400, "{v}");
    let look = ts.get(&admin, "/api/v1/school/look").await;
    assert_eq!(look["logo"]["sha256"], sha.as_str());
    assert_eq!(look["name"], "Ysgol Gwyr");

    // A teacher without the right can neither read nor change it.
    let t = teacher(&ts, &admin, "t.look").await;
    let r = ts
        .client()
        .get(ts.url("/api/v1/school/look"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["feature"], "school.look");
    let (s, _) = put(&ts, &t, "/api/v1/school/look/logo", png_of(10, 10), false).await;
    assert_eq!(s, 403);
    let r = ts
        .client()
        .delete(ts.url("/api/v1/school/look/logo"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        ts.get(&admin, "/api/v1/school/look").await["logo"]["sha256"],
        sha.as_str()
    );

    // Removing it.
    let r = ts
        .client()
        .delete(ts.url("/api/v1/school/look/logo"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        ts.get(&admin, "/api/v1/school/look").await["logo"],
        Value::Null
    );

    // Audited: the name, the upload and the removal.
    let audit = ts.get(&admin, "/api/v1/audit?limit=100").await.to_string();
    for action in [
        "school.look.name",
        "school.look.logo",
        "school.look.logo_deleted",
    ] {
        assert!(audit.contains(action), "{action} in {audit}");
    }
}

/// Width and height of a PNG.
fn png_size(png: &[u8]) -> (u32, u32) {
    let r = png::Decoder::new(png).read_info().unwrap();
    (r.info().width, r.info().height)
}

/// The look reaches connected agents: on connect, and on every change; the
/// logo's bytes only when the agent does not hold them, checked by hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_get_the_name_and_logo_on_connect_and_on_change() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let (s, _) = put(
        &ts,
        &admin,
        "/api/v1/school/look",
        r#"{"name": "Ysgol Gŵyr"}"#.as_bytes().to_vec(),
        true,
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = put(
        &ts,
        &admin,
        "/api/v1/school/look/logo",
        png_of(64, 32),
        false,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = ts
        .client()
        .get(ts.url("/api/v1/school/look/logo"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let stored = r.bytes().await.unwrap().to_vec();

    let token = ts.enrollment_token(&admin, 1).await;
    let agent = common::start_agent(&ts, &token, "look-pc", None).await;
    let desktop = agent.desktop.clone();
    let d = desktop.clone();
    common::wait_for(|| {
        let d = d.clone();
        let want = stored.clone();
        async move {
            let d = d.lock().unwrap();
            (d.school() == "Ysgol Gŵyr" && d.school_logo() == Some(&want[..])).then_some(())
        }
    })
    .await;

    // A new logo and name reach it while connected.
    let (s, _) = put(
        &ts,
        &admin,
        "/api/v1/school/look/logo",
        png_of(20, 40),
        false,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = put(
        &ts,
        &admin,
        "/api/v1/school/look",
        br#"{"name": "Hill School"}"#.to_vec(),
        true,
    )
    .await;
    assert_eq!(s, 204);
    let d = desktop.clone();
    common::wait_for(|| {
        let d = d.clone();
        async move {
            let d = d.lock().unwrap();
            let size = d.school_logo().map(png_size);
            (d.school() == "Hill School" && size == Some((20, 40))).then_some(())
        }
    })
    .await;

    // Removed: the lock screen shows none.
    let r = ts
        .client()
        .delete(ts.url("/api/v1/school/look/logo"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let d = desktop.clone();
    common::wait_for(|| {
        let d = d.clone();
        async move { d.lock().unwrap().school_logo().is_none().then_some(()) }
    })
    .await;
    agent.stop().await;
}
