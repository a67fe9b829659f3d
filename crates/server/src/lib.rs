//! The Lectern server: one HTTPS port serving the teacher console, the REST API
//! under `/api/v1` (OpenAPI at `/api/v1/openapi.json`), and agents over
//! WebSocket at `/agent/v1`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let dir = std::path::Path::new("/tmp/lectern");
//! lectern_server::init::init(&lectern_server::init::InitOptions {
//!     data_dir: dir.into(), school: "Hillside".into(), admin: "admin".into(),
//!     password: Some("a long password".into()), cert: None, names: vec![], listen: None,
//!     postgres: None,
//! })?;
//! let server = lectern_server::Server::start(dir, Some("127.0.0.1:0".parse()?)).await?;
//! println!("listening on {} ({})", server.addr, server.fingerprint);
//! server.stop().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod aup;
pub mod broadcast;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod console;
pub mod control;
pub mod demo;
pub mod devadmin;
pub mod device_rules;
pub mod directory;
pub mod discovery;
pub mod engine;
pub mod exams;
pub mod extension_dist;
pub mod files;
pub mod gateway;
pub mod hub;
pub mod init;
pub mod inventory;
pub mod keywords;
pub mod limiter;
pub mod mail;
pub mod maintenance;
pub mod metrics;
pub mod policies;
pub mod power;
pub mod privacy;
pub mod reports;
pub mod requests;
pub mod results;
pub mod retro;
pub mod review;
pub mod roster;
pub mod scope;
pub mod sealed;
pub mod serve;
pub mod settings;
pub mod signout;
pub mod state;
pub mod students;
pub mod template;
pub mod tenants;
pub mod timetable;
pub mod tls;
pub mod zipstream;

pub use serve::Server;
