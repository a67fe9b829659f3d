//! Writes command outcomes to the store in batches: one transaction per burst
//! of acknowledgements instead of one per device, so a lock sent to 10,000
//! devices costs a handful of commits.

use std::sync::Arc;

use lectern_store::{Store, TargetUpdate};
use tokio::sync::{mpsc, watch};

/// Largest batch per transaction.
const BATCH: usize = 5000;

/// Runs until `stop` turns true (or every sender is gone), then writes what is
/// queued and returns.
pub async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<TargetUpdate>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            u = rx.recv() => u,
            _ = stop.changed() => rx.try_recv().ok(),
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(u) => batch.push(u),
                Err(_) => break,
            }
        }
        let s = store.clone();
        let n = batch.len();
        match tokio::task::spawn_blocking(move || s.update_targets(&batch)).await {
            Ok(Ok(())) => tracing::trace!(n, "command outcomes written"),
            Ok(Err(e)) => tracing::error!(n, "writing command outcomes failed: {e}"),
            Err(e) => tracing::error!(n, "outcome writer task failed: {e}"),
        }
    }
}
