//! Issue 9's smaller fixes end to end: `/metrics` needs a token or its own
//! listener, login slow-down per user name rather than per address, and
//! `server.toml` typos refused at load.

mod common;

use common::*;

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
