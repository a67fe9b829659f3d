//! The agent's durable activity queue: every event is written (and synced) to
//! disk with its per-device sequence number before it is sent, and forgotten
//! only when the server acknowledges it after committing. A crash of the
//! agent, of the server or of the network therefore loses nothing; replays are
//! de-duplicated by the server on `(device, seq)`.
//!
//! On disk: `events.log`, one JSON line `{"seq":N,"event":{…}}` per event, and
//! `events.acked`, the highest acknowledged sequence number. The log is
//! rewritten without the acknowledged events once they make up most of it.
//! The queue is bounded: when full, the oldest events go and a `dropped` event
//! (kind `dropped`, title = how many) takes their place, so the loss is visible.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use lectern_proto::ActivityEvent;
use serde::{Deserialize, Serialize};

/// Longest text field kept, in bytes.
const MAX_FIELD: usize = 2048;

/// Default most events kept on disk.
pub const DEFAULT_CAPACITY: usize = 100_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    seq: u64,
    event: ActivityEvent,
}

/// A bounded, durable FIFO of numbered events.
pub struct EventQueue {
    dir: Option<PathBuf>,
    log: Option<File>,
    pending: VecDeque<Record>,
    next_seq: u64,
    acked: u64,
    capacity: usize,
    dropped: u64,
    log_lines: usize,
}

impl EventQueue {
    /// An in-memory queue (the simulator, tests).
    pub fn in_memory(capacity: usize) -> Self {
        EventQueue {
            dir: None,
            log: None,
            pending: VecDeque::new(),
            next_seq: 1,
            acked: 0,
            capacity: capacity.max(2),
            dropped: 0,
            log_lines: 0,
        }
    }

    /// Opens (or creates) the queue in `dir`, keeping what a previous run left.
    pub fn open(dir: &Path, capacity: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let acked: u64 = std::fs::read_to_string(dir.join("events.acked"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut q = EventQueue {
            dir: Some(dir.to_path_buf()),
            acked,
            next_seq: acked + 1,
            ..Self::in_memory(capacity)
        };
        if let Ok(f) = File::open(dir.join("events.log")) {
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                q.log_lines += 1;
                // A torn last line (crash mid-write) is skipped; its event was
                // never sent, so nothing acknowledged is lost.
                let Ok(r) = serde_json::from_str::<Record>(&line) else {
                    continue;
                };
                q.next_seq = q.next_seq.max(r.seq + 1);
                if r.seq > acked {
                    q.pending.push_back(r);
                }
            }
        }
        q.log = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("events.log"))?,
        );
        while q.pending.len() > q.capacity {
            q.drop_oldest();
        }
        Ok(q)
    }

    /// Events not yet acknowledged.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether everything was acknowledged.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Events lost to the bound so far (this run).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn drop_oldest(&mut self) {
        // Keep (or make) a `dropped` marker at the front that counts the loss.
        let front_is_marker = self
            .pending
            .front()
            .is_some_and(|r| r.event.kind == "dropped");
        let mut lost = 0u64;
        let mut marker = if front_is_marker {
            self.pending.pop_front()
        } else {
            None
        };
        if let Some(m) = &marker {
            lost += m
                .event
                .title
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
        }
        if let Some(r) = self.pending.pop_front() {
            lost += if r.event.kind == "dropped" {
                r.event
                    .title
                    .as_deref()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0)
            } else {
                1
            };
            self.dropped += 1;
            let m = marker.get_or_insert(Record {
                seq: r.seq,
                event: ActivityEvent {
                    kind: "dropped".into(),
                    at: r.event.at,
                    ..Default::default()
                },
            });
            m.event.title = Some(lost.to_string());
            m.event.url = None;
        }
        if let Some(m) = marker {
            self.pending.push_front(m);
        }
    }

    /// Appends events (numbering them) and syncs them to disk.
    pub fn push(&mut self, events: Vec<ActivityEvent>) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for mut event in events {
            // Bounded fields keep every event well inside one frame.
            for v in [
                &mut event.url,
                &mut event.title,
                &mut event.app,
                &mut event.user,
            ]
            .into_iter()
            .flatten()
            {
                if v.len() > MAX_FIELD {
                    *v = v.chars().take(MAX_FIELD / 4).collect();
                }
            }
            let r = Record {
                seq: self.next_seq,
                event,
            };
            self.next_seq += 1;
            serde_json::to_writer(&mut buf, &r).map_err(std::io::Error::other)?;
            buf.push(b'\n');
            self.pending.push_back(r);
            self.log_lines += 1;
            while self.pending.len() > self.capacity {
                self.drop_oldest();
            }
        }
        if let Some(f) = &mut self.log {
            f.write_all(&buf)?;
            f.sync_data()?;
        }
        if self.dir.is_some() && self.log_lines > 2 * self.pending.len() + 1000 {
            self.compact()?;
        }
        Ok(())
    }

    /// Up to `max` unacknowledged events after `after` (a sequence number
    /// already sent), as (first sequence number, events). Sequence numbers
    /// are consecutive within a batch; a gap (dropped events) ends it.
    pub fn batch_after(&self, after: u64, max: usize) -> Option<(u64, Vec<ActivityEvent>)> {
        let mut it = self.pending.iter().filter(|r| r.seq > after).peekable();
        let first = it.peek()?.seq;
        let events: Vec<ActivityEvent> = it
            .take(max)
            .enumerate()
            .take_while(|(i, r)| r.seq == first + *i as u64)
            .map(|(_, r)| r.event.clone())
            .collect();
        Some((first, events))
    }

    /// The server committed everything up to `seq`.
    pub fn ack(&mut self, seq: u64) -> std::io::Result<()> {
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        while self.pending.front().is_some_and(|r| r.seq <= seq) {
            self.pending.pop_front();
        }
        if let Some(dir) = &self.dir {
            let tmp = dir.join("events.acked.tmp");
            std::fs::write(&tmp, seq.to_string())?;
            std::fs::rename(&tmp, dir.join("events.acked"))?;
        }
        Ok(())
    }

    /// Highest acknowledged sequence number.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Rewrites the log with only the pending events.
    fn compact(&mut self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let tmp = dir.join("events.log.tmp");
        let mut f = File::create(&tmp)?;
        let mut buf = Vec::new();
        for r in &self.pending {
            serde_json::to_writer(&mut buf, r).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        f.write_all(&buf)?;
        f.sync_all()?;
        // Windows (and Wine) refuse to replace a file that is open: close
        // both handles first.
        drop(f);
        self.log = None;
        let renamed = std::fs::rename(&tmp, dir.join("events.log"));
        // Appending goes on to whichever log is in place.
        self.log = Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("events.log"))?,
        );
        renamed?;
        self.log_lines = self.pending.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(n: usize) -> Vec<ActivityEvent> {
        (0..n)
            .map(|i| ActivityEvent {
                url: Some(format!("https://site{i}.example/")),
                at: i as i64,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn survives_reopen_and_forgets_only_acknowledged_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = EventQueue::open(dir.path(), 100).unwrap();
        q.push(web(10)).unwrap();
        let (first, batch) = q.batch_after(0, 4).unwrap();
        assert_eq!((first, batch.len()), (1, 4));
        q.ack(4).unwrap();
        drop(q);
        let mut q = EventQueue::open(dir.path(), 100).unwrap();
        assert_eq!(q.len(), 6);
        let (first, batch) = q.batch_after(q.acked(), 100).unwrap();
        assert_eq!(first, 5);
        assert_eq!(batch[0].url.as_deref(), Some("https://site4.example/"));
        // New events continue the numbering.
        q.push(web(1)).unwrap();
        assert_eq!(q.batch_after(10, 10).unwrap().0, 11);
        q.ack(11).unwrap();
        assert!(q.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = EventQueue::open(dir.path(), 100).unwrap();
        q.push(web(3)).unwrap();
        drop(q);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("events.log"))
            .unwrap();
        f.write_all(b"{\"seq\":4,\"ev").unwrap();
        let q = EventQueue::open(dir.path(), 100).unwrap();
        assert_eq!(q.len(), 3);
    }

    #[test]
    fn when_full_the_oldest_go_and_a_marker_counts_them() {
        let mut q = EventQueue::in_memory(5);
        q.push(web(12)).unwrap();
        assert_eq!(q.len(), 5);
        let (first, batch) = q.batch_after(0, 10).unwrap();
        assert_eq!(batch[0].kind, "dropped");
        assert_eq!(batch[0].title.as_deref(), Some("8"), "8 real events lost");
        // The gap after the marker ends its batch; the survivors follow.
        assert_eq!(batch.len(), 1);
        let (next, rest) = q.batch_after(first, 10).unwrap();
        assert_eq!(next, 9);
        assert_eq!(rest.len(), 4);
        assert_eq!(
            rest.last().unwrap().url.as_deref(),
            Some("https://site11.example/")
        );
    }

    #[test]
    fn compaction_keeps_pending_events() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = EventQueue::open(dir.path(), 100_000).unwrap();
        for _ in 0..30 {
            q.push(web(100)).unwrap();
            let last = q
                .batch_after(q.acked(), 100_000)
                .map(|(f, b)| f + b.len() as u64 - 1);
            q.ack(last.unwrap() - 1).unwrap(); // leave one pending each time
        }
        q.push(web(1)).unwrap();
        drop(q);
        let lines = std::fs::read_to_string(dir.path().join("events.log"))
            .unwrap()
            .lines()
            .count();
        assert!(lines < 2000, "compacted: {lines} lines");
        let q = EventQueue::open(dir.path(), 100_000).unwrap();
        assert_eq!(q.len(), 2);
    }
}
