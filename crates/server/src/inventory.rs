//! Inventory reports from agents (issue 13.5). The agent offers the hash of
//! its report at connect and after a change; the server asks for the whole
//! report only when the hash differs from the stored one, and only within
//! the device's limits:
//!
//! - at most [`OFFERS_BURST`] hash offers per session at once, then one per
//!   [`OFFER_EVERY`] (more are refused, `rate_limited`);
//! - a full report at most once per `inventory_every_secs` (`[devices]`,
//!   per school, default 600) per device, counted from the stored report's
//!   arrival, so reconnecting does not reset it; the first is always taken;
//! - parts only after a request, in order, at most
//!   [`MAX_INVENTORY_BYTES`] in all, and the report must parse and pass
//!   [`Inventory::check`] (at most [`lectern_proto::inventory::MAX_PACKAGES`]
//!   packages); anything else is refused (`not_allowed` / `too_large` /
//!   `malformed`) and nothing of it is kept.
//!
//! The report is stored under the session's authenticated device id and
//! the device's school; nothing in it names a device.

use std::time::{Duration, Instant};

use lectern_proto::inventory::{Inventory, MAX_INVENTORY_BYTES};
use lectern_proto::ErrorCode;
use lectern_store::InventoryRow;
use sha2::Digest;

use crate::state::Shared;

/// Hash offers allowed at once in a session.
pub const OFFERS_BURST: u32 = 3;
/// One more hash offer is allowed after this.
pub const OFFER_EVERY: Duration = Duration::from_secs(300);

/// One session's inventory upload state.
#[derive(Debug, Default)]
pub struct Upload {
    /// Offers left now, and when the last one was refilled.
    offers: Option<(u32, Instant)>,
    /// The report being received, once requested.
    receiving: Option<String>,
    /// Parts received so far.
    next_index: u32,
}

/// What the gateway does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Nothing to say.
    Nothing,
    /// Ask for the whole report.
    Request,
    /// Refuse the frame (the session goes on).
    Refuse {
        /// Why, for the agent.
        code: ErrorCode,
        /// When it may offer again (`None`: after a change).
        retry_after: Option<Duration>,
        /// For a person.
        message: String,
    },
}

fn refuse(code: ErrorCode, retry_after: Option<Duration>, message: impl Into<String>) -> Reply {
    Reply::Refuse {
        code,
        retry_after,
        message: message.into(),
    }
}

impl Upload {
    /// Takes one offer from the session's allowance; on refusal, how long to wait.
    fn take_offer(&mut self, now: Instant) -> Result<(), Duration> {
        let (left, since) = self.offers.get_or_insert((OFFERS_BURST, now));
        let refill = (now.duration_since(*since).as_secs() / OFFER_EVERY.as_secs()) as u32;
        if refill > 0 {
            *left = (*left + refill).min(OFFERS_BURST);
            *since = now;
        }
        if *left == 0 {
            return Err(OFFER_EVERY.saturating_sub(now.duration_since(*since)));
        }
        *left -= 1;
        Ok(())
    }
}

/// The agent offered the hash of its report.
pub async fn offered(st: &Shared, device: i64, up: &mut Upload, hash: String) -> Reply {
    if let Err(wait) = up.take_offer(Instant::now()) {
        return refuse(
            ErrorCode::RateLimited,
            Some(wait),
            format!("more than {OFFERS_BURST} inventory offers at once"),
        );
    }
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return refuse(
            ErrorCode::Malformed,
            None,
            "the inventory hash is not hex SHA-256",
        );
    }
    let school = st.device_school(device);
    let stored = match st.db(move |s| s.inventory_hash(school, device)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(device, "cannot read the stored inventory: {}", e.message);
            return refuse(
                ErrorCode::Internal,
                Some(OFFER_EVERY),
                "the server could not check the inventory",
            );
        }
    };
    match stored {
        Some((h, _)) if h == hash.to_ascii_lowercase() => Reply::Nothing,
        Some((_, at)) => {
            let since = lectern_store::now_ms().saturating_sub(at).max(0) as u64;
            let every_secs = crate::device_rules::limits(st, device).inventory_every_secs;
            let every = u64::from(every_secs) * 1000;
            if since < every {
                return refuse(
                    ErrorCode::RateLimited,
                    Some(Duration::from_millis(every - since)),
                    format!("one inventory every {every_secs} s"),
                );
            }
            up.start();
            Reply::Request
        }
        None => {
            up.start();
            Reply::Request
        }
    }
}

impl Upload {
    fn start(&mut self) {
        self.receiving = Some(String::new());
        self.next_index = 0;
    }
}

/// One part of the report arrived; on the last, the report is checked and stored.
pub async fn part(
    st: &Shared,
    device: i64,
    up: &mut Upload,
    index: u32,
    last: bool,
    data: &str,
) -> Reply {
    let Some(buf) = up.receiving.as_mut() else {
        return refuse(
            ErrorCode::NotAllowed,
            None,
            "inventory part nobody asked for",
        );
    };
    if index != up.next_index {
        up.receiving = None;
        return refuse(ErrorCode::Protocol, None, "inventory parts out of order");
    }
    if buf.len() + data.len() > MAX_INVENTORY_BYTES {
        up.receiving = None;
        return refuse(
            ErrorCode::TooLarge,
            None,
            format!("inventory larger than {MAX_INVENTORY_BYTES} bytes"),
        );
    }
    buf.push_str(data);
    up.next_index += 1;
    if !last {
        return Reply::Nothing;
    }
    let json = up.receiving.take().unwrap_or_default();
    store(st, device, json).await
}

/// Checks and stores a complete report.
async fn store(st: &Shared, device: i64, json: String) -> Reply {
    if let Err(e) = Inventory::parse(&json) {
        let code = match e {
            lectern_proto::inventory::InventoryError::TooLarge
            | lectern_proto::inventory::InventoryError::TooMany(_)
            | lectern_proto::inventory::InventoryError::FieldTooLong => ErrorCode::TooLarge,
            lectern_proto::inventory::InventoryError::Malformed(_) => ErrorCode::Malformed,
        };
        return refuse(code, None, e.to_string());
    }
    let row = InventoryRow {
        device_id: device,
        hash: hex::encode(sha2::Sha256::digest(json.as_bytes())),
        report: json,
        received_at: lectern_store::now_ms(),
    };
    let school = st.device_school(device);
    match st.db(move |s| s.put_inventory(school, &row)).await {
        Ok(()) => Reply::Nothing,
        Err(e) => {
            tracing::warn!(device, "cannot store the inventory: {}", e.message);
            refuse(
                ErrorCode::Internal,
                None,
                "the server could not store the inventory",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offers_refill_one_per_period() {
        let mut up = Upload::default();
        let t = Instant::now();
        for _ in 0..OFFERS_BURST {
            assert!(up.take_offer(t).is_ok());
        }
        assert!(up.take_offer(t).is_err());
        assert!(up.take_offer(t + OFFER_EVERY).is_ok());
        assert!(up.take_offer(t + OFFER_EVERY).is_err());
    }
}
