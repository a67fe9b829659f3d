//! The HTTPS listener: TLS with rustls, HTTP/1.1 with hyper (upgrades on for
//! WebSockets), one axum router for pages, API and agents.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::connections::{Connections, Cut, Guarded};
use crate::hub::Hub;
use crate::limiter::LoginLimiter;
use crate::metrics::Metrics;
use crate::state::{AppState, Shared};

/// A running server.
pub struct Server {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its certificate's SHA-256 fingerprint, hex.
    pub fingerprint: String,
    /// Shared state, for embedding (demo, tests).
    pub state: Shared,
    /// The separate `/metrics` listener's address, when configured.
    pub metrics_addr: Option<SocketAddr>,
    /// What the server serves, for people: its only school's name, or how
    /// many schools it holds.
    pub label: String,
    stop: watch::Sender<bool>,
    writer_stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
    discovery: Option<tokio::task::JoinHandle<()>>,
}

/// The whole router: pages, API, agent gateway, metrics.
pub fn app(state: Shared) -> Router {
    Router::new()
        .merge(crate::console::router())
        .merge(crate::extension_dist::router())
        .nest("/api/v1", crate::api::router())
        .route(lectern_proto::AGENT_PATH, get(crate::gateway::agent_ws))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// `GET /metrics` on the main listener: only with the configured bearer
/// token (counts of agents, consoles and logins are not for anyone).
async fn metrics(
    axum::extract::State(st): axum::extract::State<Shared>,
    headers: axum::http::HeaderMap,
) -> Response {
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !st.config.metrics_token_matches(offered.trim()) {
        return crate::api::ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "metrics need the metrics_token from server.toml as a bearer token",
        )
        .into_response();
    }
    metrics_text(&st).into_response()
}

fn metrics_text(st: &Shared) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics
            .render(st.hub.agent_count(), st.hub.console_count())
            + &crate::metrics::render_connections(&st.connections.stats)
            + &crate::metrics::render_live(st.hub.live_counts())
            + &st.mail.render()
            + &st.controls.render(),
    )
}

/// Serves `/metrics` alone, without a token, on the separate plain-HTTP
/// `metrics_listen` address until the server stops; returns its address.
async fn spawn_metrics_listener(
    st: &Shared,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(addr) = st.config.metrics_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route(
            "/metrics",
            get(
                |axum::extract::State(st): axum::extract::State<Shared>| async move {
                    metrics_text(&st)
                },
            ),
        )
        .with_state(st.clone());
    tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::error!("metrics listener failed: {e}");
        }
    });
    Ok(Some(bound))
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "strict-transport-security", "max-age=31536000");
    r
}

impl Server {
    /// Opens the data directory and starts serving on `listen` (or the configured address).
    pub async fn start(data_dir: &Path, listen: Option<SocketAddr>) -> anyhow::Result<Server> {
        let config = ServerConfig::load(data_dir)?;
        let (tls, fingerprint) = crate::tls::load(
            &ServerConfig::resolve(data_dir, &config.cert),
            &ServerConfig::resolve(data_dir, &config.key),
        )?;
        let store = {
            let (dir, config) = (data_dir.to_path_buf(), config.clone());
            tokio::task::spawn_blocking(move || crate::engine::open(&dir, &config)).await??
        };
        let s = store.clone();
        let schools = tokio::task::spawn_blocking(move || s.schools()).await??;
        let label = match schools.as_slice() {
            [] => anyhow::bail!(
                "{} holds no school; run `lectern-server init`",
                data_dir.display()
            ),
            [only] => only.name.clone(),
            several => format!("{} schools", several.len()),
        };
        config.connections.validate()?;
        let limits = config
            .connections
            .fit_to(crate::connections::raise_fd_limit());
        if limits != config.connections {
            tracing::warn!(
                max_connections = limits.max_connections,
                max_pending = limits.max_pending,
                "connection limits lowered to fit the open-file limit; raise it (LimitNOFILE)"
            );
        }
        let connections = Connections::new(limits);
        let listener = bind(listen.unwrap_or(config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stop_rx) = watch::channel(false);
        let (writer_stop, writer_stop_rx) = watch::channel(false);
        let (results, results_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(crate::results::writer(
            store.clone(),
            results_rx,
            writer_stop_rx,
        ));
        let state = Arc::new(AppState {
            store,
            hub: Hub::new(config.thumbnail_width, config.thumbnail_interval_ms)
                .with_live(config.live_width, config.live_interval_ms)
                .with_ask_secs(config.remote_view_ask_secs.get()),
            limiter: crate::limiter::SchoolLimiters::default(),
            student_limiter: crate::limiter::SchoolLimiters::default(),
            code_limiter: LoginLimiter::new(crate::limiter::school_code_policy()),
            metrics: Metrics::default(),
            connections: connections.clone(),
            config,
            results,
            shutdown: stop_rx.clone(),
            policies: Default::default(),
            lessons_changed: tokio::sync::Notify::new(),
            policy_versions: Default::default(),
            keywords: Default::default(),
            meters: Default::default(),
            controls: Default::default(),
            requests: Default::default(),
            aup: Default::default(),
            mail: Default::default(),
            review: Default::default(),
            device_schools: Default::default(),
            students: Default::default(),
            data_dir: data_dir.to_path_buf(),
            files: Default::default(),
            settings: Default::default(),
            signouts: Default::default(),
            availability: Default::default(),
            clock: Default::default(),
            timetable: Default::default(),
            cluster: Default::default(),
        });
        if let Some(cfg) = state.config.cluster.as_ref().filter(|c| !c.nats.is_empty()) {
            let cluster = crate::cluster::Cluster::start(cfg, Arc::downgrade(&state)).await?;
            let _ = state.cluster.set(cluster);
        }
        // Every school, each served by its own settings, libraries and
        // groups.
        let schools = state
            .db(|s| s.schools())
            .await
            .map_err(|e| anyhow::anyhow!("listing the schools: {}", e.message))?;
        for school in &schools {
            crate::state::load_school(&state, school.id)
                .await
                .map_err(|e| anyhow::anyhow!("loading {:?}: {}", school.name, e.message))?;
        }
        tokio::spawn(crate::api::lesson_timer(state.clone()));
        tokio::spawn(crate::api::exam_timer(state.clone()));
        tokio::spawn(crate::maintenance::run(state.clone()));
        tokio::spawn(crate::power::schedule_timer(state.clone()));
        tokio::spawn(crate::timetable::scheduler(state.clone()));
        tokio::spawn(crate::api::roster_timer(state.clone()));
        tokio::spawn(crate::directory::sync::timer(state.clone()));
        tokio::spawn(crate::mail::worker(state.clone()));
        tokio::spawn(crate::mail::digest_timer(state.clone()));
        tokio::spawn(crate::retro::resume(state.clone()));
        let discovery =
            crate::discovery::spawn(&state.config, addr, &label, &fingerprint, stop_rx.clone())
                .await;
        let metrics_addr = spawn_metrics_listener(&state, stop_rx.clone()).await?;
        let accept = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(tls),
            app(state.clone()),
            connections,
            stop_rx,
        ));
        tracing::info!(%addr, serves = %label, "serving");
        Ok(Server {
            addr,
            fingerprint,
            state,
            metrics_addr,
            label,
            stop,
            writer_stop,
            accept,
            writer,
            discovery,
        })
    }

    /// Stops accepting, ends every session, writes pending outcomes, returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        if let Some(d) = self.discovery {
            let _ = d.await;
        }
        // Agent sessions see the shutdown signal and unregister; give them a moment.
        for _ in 0..100 {
            if self.state.hub.agent_count() == 0 && self.state.hub.console_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(cluster) = self.state.cluster.get() {
            cluster.leave().await;
        }
        let _ = self.writer_stop.send(true);
        let _ = self.writer.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    app: Router,
    connections: Arc<Connections>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if let Some(conn) = admit(&connections, tcp, peer) {
                    conns.spawn(serve_conn(conn, peer, tls.clone(), app.clone(), connections.clone()));
                }
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = stop.changed() => break,
        }
    }
    conns.shutdown().await;
}

/// Admits a connection, or resets it at once: no TLS work, no task, and no
/// TIME_WAIT left behind for a connection we refuse.
fn admit(
    connections: &Arc<Connections>,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<Guarded<TcpStream>> {
    match connections.admit(peer) {
        Ok(ticket) => {
            let _ = tcp.set_nodelay(true);
            Some(connections.guard(tcp, ticket))
        }
        Err(why) => {
            tracing::debug!(%peer, ?why, "connection refused");
            let _ = tcp.set_zero_linger();
            None
        }
    }
}

async fn serve_conn(
    tcp: Guarded<TcpStream>,
    peer: SocketAddr,
    tls: TlsAcceptor,
    app: Router,
    connections: Arc<Connections>,
) {
    let limits = connections.limits();
    let handshake = Duration::from_secs(limits.tls_handshake_secs);
    let stream = match tokio::time::timeout(handshake, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            connections.stats.cut(Cut::Handshake);
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let request = Duration::from_secs(limits.request_secs);
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        timed(app.clone().oneshot(req), request, connections.clone())
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(request)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, "connection ended: {e}");
    }
}

/// Runs one request with a deadline that covers reading its body: a client
/// trickling a body gets 408 and the connection is closed.
async fn timed<F>(
    handler: F,
    limit: Duration,
    connections: Arc<Connections>,
) -> Result<Response, std::convert::Infallible>
where
    F: std::future::Future<Output = Result<Response, std::convert::Infallible>>,
{
    match tokio::time::timeout(limit, handler).await {
        Ok(r) => r,
        Err(_) => {
            connections.stats.cut(Cut::Request);
            let mut r = Response::new(axum::body::Body::from("request took too long\n"));
            *r.status_mut() = axum::http::StatusCode::REQUEST_TIMEOUT;
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Ok(r)
        }
    }
}

/// Binds with a deep accept backlog: a whole school's agents reconnect at once
/// after a restart, and the default of 128 makes the kernel drop their SYNs.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}
