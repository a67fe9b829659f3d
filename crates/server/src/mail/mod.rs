//! Safeguarding mail: alerts as violations happen and a daily digest, sent
//! to the staff each school's rules name, over SMTP (STARTTLS or TLS).
//!
//! The violation path only offers a small note to a bounded queue
//! ([`noted`]); a worker task batches notes per school and sends at most the
//! school's `per_hour` alert rounds in any hour (the rest wait and go out
//! together in the next round). Each message is delivered by its own task,
//! with retries and backoff for temporary failures, and audited. Mails carry
//! counts only (see [`content`]).

pub mod config;
pub mod content;
pub mod smtp;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use lectern_store::mail::{MailRow, ViolationCount};
use lectern_store::{SchoolId, Violation};
use tokio::sync::mpsc;

use crate::sealed::{self, Opened, SealError};
use crate::state::{AppState, Shared};
use config::{MailConfig, Mode, Recipient, Rule};
use content::{Counts, Kind};
use smtp::{Outgoing, SendError};

/// Notes waiting for the worker; beyond this they are dropped (counted;
/// the digest still counts every violation, from the store).
pub const QUEUE: usize = 1024;
/// Distinct (device, severity, category) waiting per school for the next
/// round; beyond this notes are dropped (counted).
pub const PENDING_KEYS: usize = 4096;
/// Waits before the 2nd, 3rd and 4th attempt at a temporary failure.
pub const BACKOFF: [Duration; 3] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
];
/// Messages being delivered at once, server-wide.
const DELIVERIES: usize = 4;
/// Test messages a school may send in a minute.
pub const TESTS_PER_MINUTE: usize = 5;
const HOUR_MS: i64 = 3_600_000;
/// The sealed password's purpose (bound into its associated data).
pub const PASSWORD_PURPOSE: &str = "mail.smtp_password";

/// One violation, as much as a mail needs (no text).
#[derive(Debug, Clone)]
pub struct Note {
    school: SchoolId,
    device: i64,
    severity: u8,
    category: String,
    at: i64,
}

/// The mail machinery's shared state.
pub struct Mail {
    tx: mpsc::Sender<Note>,
    rx: Mutex<Option<mpsc::Receiver<Note>>>,
    /// Notes dropped because the queue or a batch was full.
    pub dropped: AtomicU64,
    /// Notes the worker took into a batch.
    pub gathered: AtomicU64,
    deliveries: tokio::sync::Semaphore,
    tests: Mutex<HashMap<SchoolId, VecDeque<i64>>>,
}

impl Default for Mail {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Mail {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
            gathered: AtomicU64::new(0),
            deliveries: tokio::sync::Semaphore::new(DELIVERIES),
            tests: Mutex::new(HashMap::new()),
        }
    }
}

impl Mail {
    /// The mail counters in the metrics exposition format.
    pub fn render(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP lectern_mail_notes_total Violations the mail worker batched for alerts.\n\
             # TYPE lectern_mail_notes_total counter\nlectern_mail_notes_total {}\n\
             # HELP lectern_mail_notes_dropped_total Violations not offered to mail alerts (queue or batch full; digests still count them).\n\
             # TYPE lectern_mail_notes_dropped_total counter\nlectern_mail_notes_dropped_total {}\n",
            g(&self.gathered),
            g(&self.dropped)
        )
    }

    /// Takes one test send from the school's allowance (`TESTS_PER_MINUTE`);
    /// false when it is used up.
    pub fn take_test(&self, school: SchoolId, now: i64) -> bool {
        let mut t = self.tests.lock().unwrap_or_else(|e| e.into_inner());
        let q = t.entry(school).or_default();
        while q.front().is_some_and(|&at| at <= now - 60_000) {
            q.pop_front();
        }
        if q.len() >= TESTS_PER_MINUTE {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// Offers a stored violation to the mail worker. Never waits: with the
/// queue full the note is dropped and counted.
pub fn noted(st: &AppState, school: SchoolId, v: &Violation) {
    let note = Note {
        school,
        device: v.device_id,
        severity: v.severity,
        category: v.category.clone(),
        at: st.clock.now_ms(),
    };
    if st.mail.tx.try_send(note).is_err() {
        st.mail.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A school's settings with the password opened.
pub struct Loaded {
    /// The settings.
    pub config: MailConfig,
    /// The SMTP password (empty: none).
    pub password: String,
    /// The stored row.
    pub row: MailRow,
}

/// Reads the school's settings and opens the password. None when no
/// settings were saved; `PasswordLost` when the password does not decrypt.
pub async fn load(st: &AppState, school: SchoolId) -> Result<Option<Loaded>, SendError> {
    let row = st
        .db(move |s| s.mail().mail_settings(school))
        .await
        .map_err(|e| SendError::Settings(e.message))?;
    let Some(row) = row else { return Ok(None) };
    let config: MailConfig = serde_json::from_str(&row.config)
        .map_err(|e| SendError::Settings(format!("stored settings: {e}")))?;
    let password = open_password(st, school, &row.password)?;
    Ok(Some(Loaded {
        config,
        password,
        row,
    }))
}

/// Seals an SMTP password for the school's row.
pub fn seal_password(st: &AppState, school: SchoolId, password: &str) -> Result<String, SealError> {
    sealed::seal(
        &st.data_dir,
        &sealed::context(school, PASSWORD_PURPOSE),
        password,
    )
}

/// Opens the stored password (empty: none). Only sealed values are
/// accepted: this column never held plain text.
pub fn open_password(st: &AppState, school: SchoolId, stored: &str) -> Result<String, SendError> {
    if stored.is_empty() {
        return Ok(String::new());
    }
    let ctx = sealed::context(school, PASSWORD_PURPOSE);
    match sealed::open(&st.data_dir, &ctx, stored) {
        Ok(Opened::Sealed(p)) => Ok(p),
        Ok(Opened::Plain(_)) | Err(SealError::Undecryptable) => Err(SendError::PasswordLost),
        Err(e @ SealError::KeyFile(_)) => Err(SendError::Settings(e.to_string())),
    }
}

/// The school's rules (bad stored rows are skipped and logged).
pub async fn rules(st: &AppState, school: SchoolId) -> Vec<Rule> {
    let rows = match st.db(move |s| s.mail().mail_rules(school)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read the mail rules: {}", e.message);
            return Vec::new();
        }
    };
    rows.into_iter()
        .filter_map(|r| match serde_json::from_str(&r.rule) {
            Ok(rule) => Some(rule),
            Err(e) => {
                tracing::warn!(rule = r.id, "ignoring a stored mail rule: {e}");
                None
            }
        })
        .collect()
}

/// When the digest at `minute` past local midnight is next due after `now`.
pub fn next_digest(minute: u32, now: i64) -> i64 {
    let day = crate::clock::local_of(now).date();
    let today = crate::clock::local_ms(day, minute);
    if today > now {
        return today;
    }
    let tomorrow = day.succ_opt().unwrap_or(day);
    crate::clock::local_ms(tomorrow, minute)
}

/// The categories of the school's keyword libraries (only those are named).
fn known_categories(st: &AppState, school: SchoolId) -> HashSet<String> {
    st.keywords
        .catalog(school)
        .libs
        .values()
        .flat_map(|l| l.library.terms.iter())
        .map(|t| t.category.to_lowercase())
        .collect()
}

/// Which devices a recipient may see: None for all (an address alone, or
/// an administrator), Some(set) for a console user; an account that is
/// gone, disabled or without `activity.view` sees nothing.
async fn scope_of(st: &AppState, school: SchoolId, r: &Recipient) -> Option<HashSet<i64>> {
    let user = r.user.clone()?;
    let acct = st
        .db(move |s| s.accounts().account(school, &user))
        .await
        .ok()
        .flatten();
    let Some(acct) = acct.filter(|a| !a.disabled) else {
        return Some(HashSet::new());
    };
    let admin = acct.role == lectern_store::Role::Admin;
    let rights = st.policies.of(school).account_rights(&acct.username, admin);
    if rights.all {
        return None;
    }
    if !rights.usable("activity.view") {
        return Some(HashSet::new());
    }
    crate::scope::access_map(st, school, &rights)
        .await
        .map(|m| m.into_keys().collect::<HashSet<i64>>())
        .unwrap_or_default()
        .into()
}

/// What one round of mail is about.
struct Round<'a> {
    rules: &'a [Rule],
    /// Which rules: immediate or digest.
    mode: Mode,
    kind: Kind,
    /// Where the console link's time filter starts (ms).
    since: i64,
}

/// The messages for `rows` under the round's rules: one per distinct
/// recipient, counting only what their rules match and they may see.
async fn messages(
    st: &AppState,
    school: SchoolId,
    config: &MailConfig,
    round: Round<'_>,
    rows: &[ViolationCount],
) -> Vec<Outgoing> {
    let known = known_categories(st, school);
    let name = st.school_name(school).await;
    // Each recipient (address and user) once, with every rule naming them.
    let mut whom: Vec<(Recipient, Vec<&Rule>)> = Vec::new();
    for rule in round.rules.iter().filter(|r| r.mode == round.mode) {
        for r in &rule.recipients {
            match whom.iter_mut().find(|(w, _)| w == r) {
                Some((_, rs)) => rs.push(rule),
                None => whom.push((r.clone(), vec![rule])),
            }
        }
    }
    let mut out = Vec::new();
    for (r, rs) in whom {
        let scope = scope_of(st, school, &r).await;
        let mut counts = Counts::default();
        for c in rows {
            let visible = scope.as_ref().is_none_or(|s| s.contains(&c.device_id));
            if visible && rs.iter().any(|rule| rule.matches(c.severity, &c.category)) {
                counts.add(c, |cat| known.contains(&cat.to_lowercase()));
            }
        }
        if counts.total() > 0 {
            let link = content::link(&config.console_url, &counts, round.since);
            out.push(content::compose(
                round.kind, &name, &r.address, &counts, &link,
            ));
        }
    }
    out
}

/// Delivers one message in its own task: temporary failures are retried
/// after [`BACKOFF`]; the outcome is audited (`mail.alert`, `mail.digest`).
fn deliver(
    st: &Shared,
    school: SchoolId,
    config: MailConfig,
    password: String,
    m: Outgoing,
    kind: Kind,
) {
    let st = st.clone();
    tokio::spawn(async move {
        let Ok(_permit) = st.mail.deliveries.acquire().await else {
            return;
        };
        let mut attempt = 0;
        let outcome = loop {
            match smtp::send(&config, &password, &m).await {
                Ok(()) => break Ok(()),
                Err(e) if e.retry() && attempt < BACKOFF.len() => {
                    tracing::warn!(to = %m.to, attempt = attempt + 1, "mail not sent, will retry: {e}");
                    let mut stop = st.shutdown.clone();
                    tokio::select! {
                        _ = tokio::time::sleep(BACKOFF[attempt]) => {}
                        _ = stop.changed() => break Err(e),
                    }
                    attempt += 1;
                }
                Err(e) => break Err(e),
            }
        };
        audit_delivery(&st, school, &m, kind, attempt + 1, outcome).await;
    });
}

async fn audit_delivery(
    st: &AppState,
    school: SchoolId,
    m: &Outgoing,
    kind: Kind,
    attempts: usize,
    outcome: Result<(), SendError>,
) {
    let action = match kind {
        Kind::Alert => "mail.alert",
        Kind::Digest => "mail.digest",
    };
    let status = match &outcome {
        Ok(()) => "ok".to_string(),
        Err(e) => {
            tracing::error!(to = %m.to, "mail not sent: {e}");
            format!("failed: {}", e.kind())
        }
    };
    let mut entry = st.audit_entry(school, "mail", None, action, &status);
    entry.school_id = school;
    entry.detail = serde_json::json!({
        "to": m.to,
        "subject": m.subject,
        "attempts": attempts,
        "error": outcome.err().map(|e| e.to_string()),
    })
    .to_string();
    st.audit(entry).await;
}

/// Violations waiting for a school's next alert round, and when its last
/// rounds went.
#[derive(Default)]
struct Pending {
    counts: HashMap<(i64, u8, String), i64>,
    since: Option<i64>,
    rounds: VecDeque<i64>,
}

impl Pending {
    fn add(&mut self, n: Note) -> bool {
        let key = (n.device, n.severity, n.category);
        if !self.counts.contains_key(&key) && self.counts.len() >= PENDING_KEYS {
            return false;
        }
        *self.counts.entry(key).or_default() += 1;
        self.since = Some(self.since.map_or(n.at, |s| s.min(n.at)));
        true
    }

    /// When a round may go: now if fewer than `per_hour` went in the last
    /// hour, else when the oldest of them is an hour old.
    fn free_at(&mut self, now: i64, per_hour: u32) -> i64 {
        while self.rounds.front().is_some_and(|&t| t <= now - HOUR_MS) {
            self.rounds.pop_front();
        }
        if self.rounds.len() < per_hour as usize {
            now
        } else {
            self.rounds.front().map_or(now, |t| t + HOUR_MS)
        }
    }

    fn take(&mut self) -> (Vec<ViolationCount>, i64) {
        let rows = self
            .counts
            .drain()
            .map(|((device_id, severity, category), count)| ViolationCount {
                device_id,
                severity,
                category,
                count,
            })
            .collect();
        (rows, self.since.take().unwrap_or_default())
    }
}

/// The alert worker: gathers notes per school and sends rounds within each
/// school's hourly allowance, on the server's clock (a moved clock wakes it,
/// and the move answers after its turn). Ends when the server stops.
pub async fn worker(st: Shared) {
    let Some(mut rx) = st.mail.rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let mut shutdown = st.shutdown.clone();
    let mut clock = st.clock.follow();
    let mut pending: HashMap<SchoolId, Pending> = HashMap::new();
    let mut wake: Option<i64> = None;
    loop {
        let wait = wake.map_or(Duration::from_secs(3600), |w| {
            Duration::from_millis((w - st.clock.now_ms()).clamp(0, HOUR_MS) as u64)
        });
        let mut moved = None;
        tokio::select! {
            n = rx.recv() => match n {
                Some(n) => gather(&st, &mut pending, n, &mut rx),
                None => return,
            },
            _ = tokio::time::sleep(wait) => {}
            _ = clock.moved() => moved = Some(st.clock.generation()),
            _ = shutdown.changed() => return,
        }
        wake = send_due(&st, &mut pending).await;
        if let Some(generation) = moved {
            clock.turn_done(generation);
        }
    }
}

/// Adds a note and every note already queued behind it.
fn gather(
    st: &AppState,
    pending: &mut HashMap<SchoolId, Pending>,
    first: Note,
    rx: &mut mpsc::Receiver<Note>,
) {
    let mut next = Some(first);
    while let Some(n) = next {
        if pending.entry(n.school).or_default().add(n) {
            st.mail.gathered.fetch_add(1, Ordering::Relaxed);
        } else {
            st.mail.dropped.fetch_add(1, Ordering::Relaxed);
        }
        next = rx.try_recv().ok();
    }
}

/// Sends a round for each school whose allowance has room; returns when
/// the next waiting school has room again.
async fn send_due(st: &Shared, pending: &mut HashMap<SchoolId, Pending>) -> Option<i64> {
    let mut wake: Option<i64> = None;
    let schools: Vec<SchoolId> = pending.keys().copied().collect();
    for school in schools {
        let Some(p) = pending.get_mut(&school).filter(|p| !p.counts.is_empty()) else {
            continue;
        };
        let loaded = match load(st, school).await {
            Ok(Some(l)) => l,
            Ok(None) => {
                p.take();
                continue;
            }
            Err(e) => {
                tracing::error!("mail alerts for school {school} not sent: {e}");
                p.take();
                continue;
            }
        };
        let now = st.clock.now_ms();
        let free = p.free_at(now, loaded.config.per_hour);
        if free > now {
            wake = Some(wake.map_or(free, |w| w.min(free)));
            continue;
        }
        let (rows, since) = p.take();
        let rules = rules(st, school).await;
        let round = Round {
            rules: &rules,
            mode: Mode::Immediate,
            kind: Kind::Alert,
            since,
        };
        let msgs = messages(st, school, &loaded.config, round, &rows).await;
        if msgs.is_empty() {
            continue; // Nothing anyone is told about: no round used.
        }
        p.rounds.push_back(now);
        for m in msgs {
            deliver(
                st,
                school,
                loaded.config.clone(),
                loaded.password.clone(),
                m,
                Kind::Alert,
            );
        }
    }
    pending.retain(|_, p| !p.counts.is_empty() || !p.rounds.is_empty());
    wake
}

/// The digest timer: each minute and after each clock move, sends the
/// digest of each school whose time has come. Ends when the server stops.
pub async fn digest_timer(st: Shared) {
    let mut shutdown = st.shutdown.clone();
    let mut clock = st.clock.follow();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = clock.moved() => {}
            _ = shutdown.changed() => return,
        }
        let generation = st.clock.generation();
        match st.db(|s| s.schools()).await {
            Ok(schools) => {
                for school in schools {
                    digest_turn(&st, school.id).await;
                }
            }
            Err(e) => tracing::error!("digests: cannot list the schools: {}", e.message),
        }
        clock.turn_done(generation);
    }
}

/// Sends the school's digest if it is due: claims it in the store (so it
/// goes once), schedules the next, and mails the counts of the violations
/// since the previous one.
async fn digest_turn(st: &Shared, school: SchoolId) {
    let loaded = match load(st, school).await {
        Ok(Some(l)) => l,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("the mail digest for school {school} cannot be sent: {e}");
            return;
        }
    };
    let due = loaded.row.digest_next;
    let now = st.clock.now_ms();
    let Some(minute) = loaded
        .config
        .digest_time
        .as_deref()
        .and_then(config::digest_minute)
    else {
        return;
    };
    if due == 0 || now < due {
        return;
    }
    let next = next_digest(minute, now);
    let claimed = st
        .db(move |s| s.mail().claim_digest(school, due, next))
        .await;
    let Ok(Some((after, upto))) = claimed else {
        return;
    };
    let rows = match st
        .db(move |s| s.mail().violation_counts(school, after, upto))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("the mail digest cannot count violations: {}", e.message);
            return;
        }
    };
    let rules = rules(st, school).await;
    let since = due - 24 * HOUR_MS;
    let round = Round {
        rules: &rules,
        mode: Mode::Digest,
        kind: Kind::Digest,
        since,
    };
    let msgs = messages(st, school, &loaded.config, round, &rows).await;
    for m in msgs {
        deliver(
            st,
            school,
            loaded.config.clone(),
            loaded.password.clone(),
            m,
            Kind::Digest,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_beyond_the_hourly_allowance_wait_for_the_oldest_to_age() {
        let mut p = Pending::default();
        assert_eq!(p.free_at(1_000, 2), 1_000);
        p.rounds.extend([1_000, 2_000]);
        assert_eq!(p.free_at(3_000, 2), 1_000 + HOUR_MS);
        assert_eq!(p.free_at(1_000 + HOUR_MS, 2), 1_000 + HOUR_MS);
        assert_eq!(p.rounds.len(), 1);
    }

    #[test]
    fn pending_counts_are_bounded_and_batched() {
        let mut p = Pending::default();
        let note = |d: i64, at| Note {
            school: 1,
            device: d,
            severity: 3,
            category: "c".into(),
            at,
        };
        assert!(p.add(note(1, 50)));
        assert!(p.add(note(1, 20)));
        for d in 2..=PENDING_KEYS as i64 {
            assert!(p.add(note(d, 60)));
        }
        assert!(!p.add(note(0, 60)), "a new key beyond the bound");
        assert!(p.add(note(1, 70)), "a known key still counts");
        let (rows, since) = p.take();
        assert_eq!(since, 20);
        assert_eq!(rows.len(), PENDING_KEYS);
        assert_eq!(rows.iter().find(|r| r.device_id == 1).unwrap().count, 3);
    }

    #[test]
    fn the_next_digest_is_today_if_still_ahead_else_tomorrow() {
        let day = chrono::NaiveDate::from_ymd_opt(2030, 3, 4).unwrap();
        let nine = crate::clock::local_ms(day, 9 * 60);
        assert_eq!(next_digest(9 * 60, nine - 1), nine);
        let next = next_digest(9 * 60, nine);
        assert_eq!(crate::clock::local_of(next).date(), day.succ_opt().unwrap());
    }
}
