//! What the cluster tests share: a throwaway PostgreSQL and `nats-server`
//! (the store's and the bus's own test harnesses), a first node made by
//! `init --postgres`, further nodes copied from it, and a node put on the
//! bus. A test that uses it also declares `mod common;`.

#![allow(dead_code)]

#[path = "../../../store/tests/common/pg.rs"]
pub mod pg;

#[path = "../../../bus/tests/common/mod.rs"]
pub mod nats;

use std::path::Path;

use lectern_server::init::{init, InitOptions};
use lectern_server::Server;

use crate::common::{TestServer, PASSWORD};

/// A throwaway PostgreSQL with an empty database "lectern", and the
/// parameters that reach it.
pub async fn start_pg() -> (pg::Pg, String) {
    tokio::task::spawn_blocking(|| {
        let pg = pg::Pg::start();
        drop(pg.database("lectern"));
        let params = pg.params("lectern");
        (pg, params)
    })
    .await
    .unwrap()
}

/// Stops PostgreSQL off the async threads (its client blocks).
pub async fn stop_pg(pg: pg::Pg) {
    tokio::task::spawn_blocking(move || drop(pg)).await.unwrap();
}

/// `init --postgres` into `data`: the school "Hill School" and its admin
/// (password [`PASSWORD`]) in the shared store.
pub async fn init_on_pg(data: &Path, params: &str) -> anyhow::Result<()> {
    let opts = InitOptions {
        data_dir: data.to_path_buf(),
        school: "Hill School".into(),
        admin: "admin".into(),
        password: Some(PASSWORD.into()),
        cert: None,
        names: vec![],
        listen: None,
        postgres: Some(params.to_string()),
    };
    tokio::task::spawn_blocking(move || init(&opts).map(|_| ()))
        .await
        .unwrap()
}

/// A further node's data directory: a copy of `from`'s configuration and
/// certificate, as a cluster's nodes are set up.
pub fn copy_node(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in ["server.toml", "cert.pem", "key.pem"] {
        std::fs::copy(from.join(file), to.join(file)).unwrap();
    }
}

/// Adds the bus to a node's `[cluster]`, under the name `node`, with a
/// three-second lease.
pub fn join_bus(data: &Path, nats: &nats::Nats, node: &str) {
    let path = data.join("server.toml");
    let mut config: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cluster = config["cluster"].as_table_mut().unwrap();
    cluster.insert(
        "nats".into(),
        toml::Value::Array(vec![format!("nats://127.0.0.1:{}", nats.port).into()]),
    );
    cluster.insert("nats_user".into(), nats::USER.into());
    cluster.insert("nats_password".into(), nats::PASSWORD.into());
    cluster.insert("node".into(), node.into());
    cluster.insert("lease_secs".into(), 3.into());
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
}

/// Serves `dir`'s `data` in this process, on a free loopback port.
pub async fn start_node(dir: tempfile::TempDir) -> TestServer {
    let server = Server::start(
        &dir.path().join("data"),
        Some("127.0.0.1:0".parse().unwrap()),
    )
    .await
    .unwrap();
    TestServer {
        addr: server.addr,
        fingerprint: server.fingerprint.clone(),
        server: Some(server),
        dir,
    }
}
