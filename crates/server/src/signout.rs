//! Ends the open console streams of an account whose sessions were ended
//! (disabled, deleted, or given a new password): deleting the sessions stops
//! its REST calls, and this closes its live streams at once instead of at
//! their next reconnect.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::oneshot;

/// WebSocket close code for a stream whose session was ended by a change to
/// its account: the console goes to the sign-in page and says so. (4401
/// echoes HTTP's 401.)
pub const CLOSE_SIGNED_OUT: u16 = 4401;
/// WebSocket close code for a stream whose account's role changed: what it
/// shows was decided at its start, so it closes and the console reconnects
/// with the new rights.
pub const CLOSE_RIGHTS_CHANGED: u16 = 4001;

struct Stream {
    username: String,
    /// The session's key ([`crate::hub::Hub::session_key`]).
    session: u64,
    tx: oneshot::Sender<u16>,
}

/// The open console streams, by the account they belong to.
#[derive(Default)]
pub struct SignOuts {
    next: AtomicU64,
    streams: Mutex<HashMap<u64, Stream>>,
}

impl SignOuts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Stream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a stream of `username`'s session `session`; the receiver
    /// gets the close code when the stream must end. Call [`Self::remove`] with the id
    /// when the stream ends.
    pub fn register(&self, username: &str, session: u64) -> (u64, oneshot::Receiver<u16>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let stream = Stream {
            username: username.to_string(),
            session,
            tx,
        };
        self.lock().insert(id, stream);
        (id, rx)
    }

    /// Signs out one stream (its session ended before it registered).
    pub fn sign_out_stream(&self, id: u64) {
        if let Some(s) = self.lock().remove(&id) {
            let _ = s.tx.send(CLOSE_SIGNED_OUT);
        }
    }

    /// Forgets a stream that ended.
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes every stream of `username` except those of session `keep` with
    /// `code` ([`CLOSE_SIGNED_OUT`] or [`CLOSE_RIGHTS_CHANGED`]); returns how
    /// many.
    pub fn sign_out(&self, username: &str, keep: Option<u64>, code: u16) -> usize {
        let mut streams = self.lock();
        let ids: Vec<u64> = streams
            .iter()
            .filter(|(_, s)| s.username == username && Some(s.session) != keep)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(s) = streams.remove(id) {
                let _ = s.tx.send(code);
            }
        }
        ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_out_the_accounts_other_streams() {
        let so = SignOuts::default();
        let (_, mut a1) = so.register("a", 1);
        let (_, mut a2) = so.register("a", 2);
        let (b_id, mut b) = so.register("b", 3);
        assert_eq!(so.sign_out("a", Some(2), CLOSE_SIGNED_OUT), 1);
        assert_eq!(a1.try_recv(), Ok(CLOSE_SIGNED_OUT));
        assert!(a2.try_recv().is_err());
        so.remove(b_id);
        assert_eq!(so.sign_out("b", None, CLOSE_SIGNED_OUT), 0);
        assert!(b.try_recv().is_err());
    }
}
