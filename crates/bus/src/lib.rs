//! The cluster bus (issue 16 point 5): how the nodes of a Lectern deployment
//! tell each other things. A gateway holds devices' connections; an API
//! node serves consoles; a command from a console reaches the devices as
//! one message per gateway ([`Subject::node_commands`]), a policy change
//! reaches every node ([`Subject::school_policy`]), screen pictures flow
//! from the node holding the device while someone watches
//! ([`Subject::device_frames`]), and each node says which devices it holds,
//! under a lease, so the others know where a device is and which devices a
//! dead node took with it ([`presence`]); commands go on from the node a
//! console is on to the gateways holding their devices, and fail rather
//! than stay pending when a gateway dies with them ([`relay`]); screens
//! flow from the node holding a device to the consoles watching it, only
//! while someone does ([`screens`]).
//!
//! One type, [`Bus`], over two transports: in process (a single server, and
//! tests) and [NATS](https://nats.io) (`async-nats`), which a cluster runs
//! beside PostgreSQL. Both deliver as NATS core does: at most once, to
//! whoever is subscribed when a message is published; what must not be lost
//! is written to the store, never only sent here.
//!
//! ```
//! # tokio_test_block_on(async {
//! use lectern_bus::{Bus, Filter, NodeId, Subject};
//!
//! let bus = Bus::local();
//! let gw = NodeId::new("gw-1").unwrap();
//! let mut commands = bus.subscribe(&Filter::exactly(&Subject::node_commands(&gw))).await.unwrap();
//! bus.publish(&Subject::node_commands(&gw), "lock 30 devices").await.unwrap();
//! assert_eq!(&commands.next().await.unwrap().payload[..], b"lock 30 devices");
//! # });
//! # fn tokio_test_block_on(f: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

pub mod presence;
pub mod relay;
pub mod screens;
mod subject;

pub use presence::{DeviceKey, Locator, Presence, PresenceEvent};
pub use relay::{Failure, LocalDevices, Outcome, Relay, RelayConfig, Routed};
pub use screens::{Frame, Screens, View, Watch, WatchChange};
pub use subject::{Filter, NodeId, Subject};

/// The most bytes one message may carry in process (NATS servers say their
/// own, 1 MiB by default).
pub const LOCAL_MAX_PAYLOAD: usize = 1 << 20;

/// Messages a slow in-process subscriber may fall behind by before it
/// loses the oldest (as a slow NATS consumer would).
const LOCAL_BACKLOG: usize = 4096;

/// Why the bus refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A node name that is not one subject token.
    #[error("not a node name (1-64 of A-Z a-z 0-9 _ -): {0:?}")]
    BadName(String),
    /// The message is larger than the bus carries.
    #[error("message of {size} bytes is over the bus's {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The most the bus carries.
        max: usize,
    },
    /// Could not reach the NATS servers (only at the first connection: later
    /// the client reconnects by itself).
    #[error("cannot connect to NATS: {0}")]
    Connect(String),
    /// NATS refused or dropped a publish or a subscription.
    #[error("NATS: {0}")]
    Nats(String),
}

/// How to reach NATS (the `[cluster]` section's `nats_*` settings).
#[derive(Clone, Debug, Default)]
pub struct NatsConfig {
    /// Server addresses (`nats://host:4222`, `tls://host:4222`); the client
    /// picks among them and moves to another when one goes.
    pub servers: Vec<String>,
    /// User name and password, if the servers ask for them.
    pub user: Option<(String, String)>,
    /// A CA certificate (PEM) for the servers' TLS, instead of the
    /// system's roots; TLS is then required.
    pub ca_file: Option<PathBuf>,
    /// A name the servers show for this connection (the node's).
    pub name: Option<String>,
}

/// The bus: cheap to clone, shared by a node's tasks.
#[derive(Clone)]
pub struct Bus(Transport);

#[derive(Clone)]
enum Transport {
    Local(tokio::sync::broadcast::Sender<Message>),
    Nats(async_nats::Client),
}

/// A message heard.
#[derive(Clone, Debug)]
pub struct Message {
    /// The subject it was published under.
    pub subject: String,
    /// What it carries.
    pub payload: Bytes,
}

impl Bus {
    /// A bus inside this process: what a single server uses.
    pub fn local() -> Bus {
        Bus(Transport::Local(
            tokio::sync::broadcast::channel(LOCAL_BACKLOG).0,
        ))
    }

    /// Connects to NATS. Fails only if no server answers the first time;
    /// afterwards the client reconnects by itself (with backoff) and
    /// resubscribes, and what is published meanwhile waits in its buffer.
    pub async fn connect(cfg: &NatsConfig) -> Result<Bus, BusError> {
        let mut opts = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                tracing::info!(%event, "NATS connection");
            });
        if let Some((user, password)) = &cfg.user {
            opts = opts.user_and_password(user.clone(), password.clone());
        }
        if let Some(ca) = &cfg.ca_file {
            opts = opts.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some(name) = &cfg.name {
            opts = opts.name(name.clone());
        }
        let servers: Vec<async_nats::ServerAddr> = cfg
            .servers
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_, _>>()
            .map_err(|e: std::io::Error| BusError::Connect(e.to_string()))?;
        if servers.is_empty() {
            return Err(BusError::Connect("no NATS server configured".into()));
        }
        let client = opts
            .connect(servers)
            .await
            .map_err(|e| BusError::Connect(e.to_string()))?;
        Ok(Bus(Transport::Nats(client)))
    }

    /// The most bytes one message may carry.
    pub fn max_payload(&self) -> usize {
        match &self.0 {
            Transport::Local(_) => LOCAL_MAX_PAYLOAD,
            Transport::Nats(c) => c.server_info().max_payload,
        }
    }

    /// Publishes `payload` under `subject` (refused, with nothing sent, when
    /// it is larger than [`Bus::max_payload`]).
    pub async fn publish(
        &self,
        subject: &Subject,
        payload: impl Into<Bytes>,
    ) -> Result<(), BusError> {
        let payload = payload.into();
        let max = self.max_payload();
        if payload.len() > max {
            return Err(BusError::TooLarge {
                size: payload.len(),
                max,
            });
        }
        match &self.0 {
            Transport::Local(tx) => {
                // Nobody listening is not an error: NATS drops it too.
                let _ = tx.send(Message {
                    subject: subject.as_str().to_string(),
                    payload,
                });
                Ok(())
            }
            Transport::Nats(c) => c
                .publish(subject.as_str().to_string(), payload)
                .await
                .map_err(|e| BusError::Nats(e.to_string())),
        }
    }

    /// Hears every message published under a subject `filter` matches from
    /// now on.
    pub async fn subscribe(&self, filter: &Filter) -> Result<Subscription, BusError> {
        match &self.0 {
            Transport::Local(tx) => Ok(Subscription(Heard::Local {
                rx: tx.subscribe(),
                filter: Arc::new(filter.clone()),
            })),
            Transport::Nats(c) => c
                .subscribe(filter.as_str().to_string())
                .await
                .map(|s| Subscription(Heard::Nats(s)))
                .map_err(|e| BusError::Nats(e.to_string())),
        }
    }

    /// Waits until what was published so far is written to the server's
    /// connection (in process: at once). Not a round trip: that a
    /// subscription is in place is known by hearing one's own message on it.
    pub async fn flush(&self) -> Result<(), BusError> {
        match &self.0 {
            Transport::Local(_) => Ok(()),
            Transport::Nats(c) => c.flush().await.map_err(|e| BusError::Nats(e.to_string())),
        }
    }
}

/// Messages heard by one subscription, in the order published by each
/// publisher.
pub struct Subscription(Heard);

enum Heard {
    Local {
        rx: tokio::sync::broadcast::Receiver<Message>,
        filter: Arc<Filter>,
    },
    Nats(async_nats::Subscriber),
}

impl Subscription {
    /// The next message; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Message> {
        match &mut self.0 {
            Heard::Local { rx, filter } => loop {
                match rx.recv().await {
                    Ok(m) if filter.matches(&m.subject) => return Some(m),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "a slow bus subscriber lost messages");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            },
            Heard::Nats(s) => s.next().await.map(|m| Message {
                subject: m.subject.to_string(),
                payload: m.payload,
            }),
        }
    }
}
