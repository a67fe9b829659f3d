//! State shared by every request and session.

use std::sync::Arc;

use lectern_store::{NewAudit, School, Store, TargetUpdate};
use tokio::sync::{mpsc, watch};

use crate::api::ApiError;
use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::limiter::LoginLimiter;
use crate::metrics::Metrics;

/// Handles every part of the server shares.
pub struct AppState {
    /// Persistence.
    pub store: Arc<dyn Store>,
    /// The school this server serves.
    pub school: School,
    /// Live sessions.
    pub hub: Hub,
    /// Configuration.
    pub config: ServerConfig,
    /// Login rate limiter.
    pub limiter: LoginLimiter,
    /// Counters.
    pub metrics: Metrics,
    /// Command outcomes on their way to the store, written in batches.
    pub results: mpsc::UnboundedSender<TargetUpdate>,
    /// Turns true when the server is stopping.
    pub shutdown: watch::Receiver<bool>,
}

/// Shared pointer to the state.
pub type Shared = Arc<AppState>;

impl AppState {
    /// Runs a store call on a blocking thread, so SQLite never stalls the runtime.
    pub async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> lectern_store::Result<T> + Send + 'static,
    {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
            .map_err(ApiError::from)
    }

    /// Writes an audit entry; a failure is logged, never shown to the user.
    pub async fn audit(&self, entry: NewAudit) {
        if let Err(e) = self.db(move |s| s.audit(&entry)).await {
            tracing::error!("audit write failed: {}", e.message);
        }
    }

    /// An audit entry for this school with the common fields filled in.
    pub fn audit_entry(
        &self,
        actor: &str,
        address: Option<String>,
        action: &str,
        outcome: &str,
    ) -> NewAudit {
        NewAudit {
            school_id: self.school.id,
            actor: actor.to_string(),
            address,
            action: action.to_string(),
            detail: String::new(),
            devices: Vec::new(),
            command_id: None,
            outcome: outcome.to_string(),
        }
    }
}
