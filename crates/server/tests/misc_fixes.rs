//! Issue 9's smaller fixes end to end: `/metrics` needs a token or its own
//! listener, login slow-down per user name rather than per address, and
//! `server.toml` typos refused at load.

mod common;

use common::*;
use serde_json::json;

/// `/metrics` on the main listener: refused without the token or with a
/// wrong one, served with the one in server.toml.
#[tokio::test]
async fn metrics_need_the_token() {
    let ts = TestServer::start().await;
    let c = ts.client();
    let anon = c.get(ts.url("/metrics")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    let body = anon.text().await.unwrap();
    assert!(!body.contains("lectern_"), "no metric leaks: {body}");
    let wrong = c
        .get(ts.url("/metrics"))
        .bearer_auth("lcm_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // A console session is not the metrics token either.
    let session = ts.login().await;
    let s = c
        .get(ts.url("/metrics"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(s.status(), 401);
    let token = metrics_token(&ts.data_dir());
    assert!(token.starts_with("lcm_"), "{token}");
    let ok = c
        .get(ts.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("lectern_agents_online"));
}

/// With `metrics_listen`, a plain-HTTP listener serves `/metrics` (only)
/// without a token; the main listener still wants the token.
#[tokio::test]
async fn metrics_on_their_own_listener() {
    let mut ts = TestServer::start().await;
    ts.server.take().unwrap().stop().await;
    let data = ts.data_dir();
    let mut cfg = lectern_server::config::ServerConfig::load(&data).unwrap();
    cfg.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.save(&data).unwrap();
    let server = lectern_server::Server::start(&data, Some(ts.addr))
        .await
        .unwrap();
    let maddr = server.metrics_addr.expect("metrics listener");
    ts.server = Some(server);
    let r = plain_get(maddr, "/metrics").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.contains("lectern_agents_online"));
    let r = plain_get(maddr, "/api/v1/session").await;
    assert!(r.starts_with("HTTP/1.1 404"), "only /metrics there: {r}");
    let anon = ts.client().get(ts.url("/metrics")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
}

/// A plain-HTTP GET, the whole response as text.
async fn plain_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

async fn try_login(ts: &TestServer, user: &str, password: &str) -> reqwest::Response {
    ts.client()
        .post(ts.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Everyone here shares one address (127.0.0.1), as a school behind a NAT
/// does. A class mistypes its passwords, and one user name is being guessed:
/// that name gets slowed (429 with a Retry-After), while every other
/// user still logs in at once. A hard per-address block (20 failures a
/// minute, as before) locks them all out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_one_name_behind_a_nat_does_not_lock_out_the_others() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    for u in ["victim", "pupil1", "pupil2", "pupil3"] {
        let (s, v) = ts
            .post(
                &admin,
                "/api/v1/users",
                json!({"username": u, "password": "right password", "role": "teacher"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    // A class mistypes: 15 different names fail once each.
    for i in 0..15 {
        let r = try_login(&ts, &format!("pupil-typo-{i}"), "oops").await;
        assert_eq!(r.status(), 401);
    }
    // 25 guesses: the first three are checked, then the name is slowed.
    let (mut checked, mut slowed) = (0, 0);
    for i in 0..25 {
        let r = try_login(&ts, "victim", &format!("guess {i}")).await;
        match r.status().as_u16() {
            401 => checked += 1,
            429 => {
                slowed += 1;
                let wait: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        checked >= 3 && slowed > 0,
        "{checked} checked, {slowed} slowed"
    );
    assert!(checked < 25, "guessing was slowed: {checked} checked");
    // Everyone else behind the same address logs in at once. (Whether the
    // delay has run out at a given instant is timing; the limiter's unit tests
    // check the delays themselves with a clock they control.)
    for u in ["pupil1", "pupil2", "pupil3"] {
        let r = try_login(&ts, u, "right password").await;
        assert_eq!(r.status(), 200, "{u}");
    }
    assert_eq!(try_login(&ts, "admin", PASSWORD).await.status(), 200);
}

/// A misspelt value in server.toml stops the server at start, naming the
/// field; it is never read as a default.
#[tokio::test]
async fn a_server_toml_typo_is_refused_at_start() {
    let mut ts = TestServer::start().await;
    ts.server.take().unwrap().stop().await;
    let path = ts.data_dir().join("server.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"lock\""), "{text}");
    std::fs::write(&path, text.replacen("\"lock\"", "\"lokc\"", 1)).unwrap();
    let err = match lectern_server::Server::start(&ts.data_dir(), Some(ts.addr)).await {
        Ok(_) => panic!("started with a typo"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("keyword_actions") && err.contains("lokc"),
        "{err}"
    );
}

/// A misspelt query filter is refused with its name instead of widening the
/// answer to everything.
#[tokio::test]
async fn a_misspelt_filter_is_refused() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    for path in [
        "/api/v1/activity?usr=amy",
        "/api/v1/violations?usr=amy",
        "/api/v1/audit?limt=5",
        "/api/v1/resultant?devce=1",
    ] {
        let r = ts
            .client()
            .get(ts.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body = r.text().await.unwrap();
        let field = path.split('?').nth(1).unwrap().split('=').next().unwrap();
        assert!(body.contains(field), "{path}: {body}");
    }
}
