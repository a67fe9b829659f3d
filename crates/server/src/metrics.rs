//! Prometheus counters, rendered in the text exposition format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's counters. Gauges (connected agents, consoles) come from the hub.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Agent sessions accepted.
    pub agent_sessions: AtomicU64,
    /// Agent connections refused (bad hello, credential, version…).
    pub agent_refused: AtomicU64,
    /// Frames that were malformed or too large.
    pub bad_frames: AtomicU64,
    /// Devices enrolled.
    pub enrollments: AtomicU64,
    /// Registrations refused for a wrong or malformed school code.
    pub school_code_refusals: AtomicU64,
    /// Commands sent (one per device).
    pub commands_sent: AtomicU64,
    /// Acknowledgements received.
    pub acks: AtomicU64,
    /// Thumbnails received from agents.
    pub thumbnails_received: AtomicU64,
    /// Activity events stored (replays not counted).
    pub activity_events: AtomicU64,
    /// Thumbnails passed to consoles.
    pub thumbnails_forwarded: AtomicU64,
    /// Successful console logins.
    pub logins_ok: AtomicU64,
    /// Failed console logins.
    pub logins_failed: AtomicU64,
    /// Logins refused by the rate limiter.
    pub logins_limited: AtomicU64,
    /// Activity events refused over a device's rate (each event counted).
    pub limited_events: AtomicU64,
    /// Violations refused over a device's rate.
    pub limited_violations: AtomicU64,
    /// Evidence frames refused over a device's bytes quota.
    pub limited_evidence: AtomicU64,
    /// Evidence frames refused for want of an allowance (or beyond its sizes).
    pub evidence_not_allowed: AtomicU64,
    /// Live video pictures dropped over a device's rate, and screenshots
    /// nobody asked for.
    pub limited_video: AtomicU64,
    /// Keyword matches that stayed quiet in a burst (no second lock, audit
    /// row or warning).
    pub actions_quieted: AtomicU64,
    /// Commands failed because their device reconnected before acknowledging.
    pub commands_orphaned: AtomicU64,
}

/// Adds one to a counter.
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// The exposition text, with the hub's gauges.
    pub fn render(&self, agents_online: usize, consoles: usize) -> String {
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP lectern_{name} {help}\n# TYPE lectern_{name} {kind}\nlectern_{name} {v}"
            );
        };
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        put(
            "agents_online",
            "gauge",
            "Agents in a session now.",
            agents_online as u64,
        );
        put(
            "console_streams",
            "gauge",
            "Console live streams open now.",
            consoles as u64,
        );
        put(
            "agent_sessions_total",
            "counter",
            "Agent sessions accepted.",
            g(&self.agent_sessions),
        );
        put(
            "agent_refused_total",
            "counter",
            "Agent connections refused.",
            g(&self.agent_refused),
        );
        put(
            "bad_frames_total",
            "counter",
            "Malformed or oversized frames received.",
            g(&self.bad_frames),
        );
        put(
            "enrollments_total",
            "counter",
            "Devices enrolled.",
            g(&self.enrollments),
        );
        put(
            "school_code_refusals_total",
            "counter",
            "Registrations refused for a wrong or malformed school code.",
            g(&self.school_code_refusals),
        );
        put(
            "commands_sent_total",
            "counter",
            "Commands sent to devices.",
            g(&self.commands_sent),
        );
        put(
            "command_acks_total",
            "counter",
            "Command acknowledgements received.",
            g(&self.acks),
        );
        put(
            "thumbnails_received_total",
            "counter",
            "Thumbnails received from agents.",
            g(&self.thumbnails_received),
        );
        put(
            "activity_events_total",
            "counter",
            "Activity events stored (replays not counted).",
            g(&self.activity_events),
        );
        put(
            "thumbnails_forwarded_total",
            "counter",
            "Thumbnails sent to consoles.",
            g(&self.thumbnails_forwarded),
        );
        put(
            "logins_ok_total",
            "counter",
            "Successful console logins.",
            g(&self.logins_ok),
        );
        put(
            "logins_failed_total",
            "counter",
            "Failed console logins.",
            g(&self.logins_failed),
        );
        put(
            "logins_limited_total",
            "counter",
            "Console logins refused by the rate limiter.",
            g(&self.logins_limited),
        );
        let _ = writeln!(
            out,
            "# HELP lectern_device_limited_total Frames or items refused because a device exceeded its school's limits.\n# TYPE lectern_device_limited_total counter"
        );
        for (kind, c) in [
            ("events", &self.limited_events),
            ("violations", &self.limited_violations),
            ("evidence", &self.limited_evidence),
            ("evidence_not_allowed", &self.evidence_not_allowed),
            ("video", &self.limited_video),
        ] {
            let _ = writeln!(
                out,
                "lectern_device_limited_total{{kind=\"{kind}\"}} {}",
                g(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP lectern_safety_actions_quieted_total Keyword matches that did not act again within a burst.\n# TYPE lectern_safety_actions_quieted_total counter\nlectern_safety_actions_quieted_total {}",
            g(&self.actions_quieted)
        );
        let _ = writeln!(
            out,
            "# HELP lectern_commands_orphaned_total Commands failed because their device reconnected before acknowledging.\n# TYPE lectern_commands_orphaned_total counter\nlectern_commands_orphaned_total {}",
            g(&self.commands_orphaned)
        );
        out
    }
}

/// The live-view gauges: (live views open that get pictures, devices asked
/// to stream at live size), from [`crate::hub::Hub::live_counts`].
pub fn render_live((views, streams): (usize, usize)) -> String {
    format!(
        "# HELP lectern_live_views Console live views open now on a device whose pictures they may see.\n\
         # TYPE lectern_live_views gauge\nlectern_live_views {views}\n\
         # HELP lectern_live_streams Devices asked to stream at live-view size now.\n\
         # TYPE lectern_live_streams gauge\nlectern_live_streams {streams}\n"
    )
}

/// The listener's admission counters (see [`crate::connections`]).
pub fn render_connections(s: &crate::connections::ConnectionStats) -> String {
    let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let n = |c: &std::sync::atomic::AtomicUsize| c.load(Ordering::Relaxed) as u64;
    let mut out = String::new();
    let mut put = |name: &str, kind: &str, help: &str, rows: &[(&str, u64)]| {
        let _ = writeln!(
            out,
            "# HELP lectern_{name} {help}\n# TYPE lectern_{name} {kind}"
        );
        for (labels, v) in rows {
            let _ = writeln!(out, "lectern_{name}{labels} {v}");
        }
    };
    put(
        "connections_open",
        "gauge",
        "Connections open now.",
        &[("", n(&s.open))],
    );
    put(
        "connections_pending",
        "gauge",
        "Connections not yet authenticated.",
        &[("", n(&s.pending))],
    );
    put(
        "connections_open_peak",
        "gauge",
        "Most connections open at once since start.",
        &[("", n(&s.peak_open))],
    );
    put(
        "connections_pending_peak",
        "gauge",
        "Most unauthenticated connections at once since start.",
        &[("", n(&s.peak_pending))],
    );
    put(
        "connections_accepted_total",
        "counter",
        "Connections admitted.",
        &[("", g(&s.accepted))],
    );
    put(
        "connections_authenticated_total",
        "counter",
        "Connections that authenticated and left the pre-auth budget.",
        &[("", g(&s.promoted))],
    );
    put(
        "connections_refused_total",
        "counter",
        "Connections reset at accept, by the limit that refused them.",
        &[
            ("{reason=\"address\"}", g(&s.refused_address)),
            ("{reason=\"pending\"}", g(&s.refused_pending)),
            ("{reason=\"full\"}", g(&s.refused_full)),
        ],
    );
    put(
        "connections_cut_total",
        "counter",
        "Connections (or requests) ended by a deadline or displaced.",
        &[
            ("{reason=\"handshake\"}", g(&s.cut_handshake)),
            ("{reason=\"auth\"}", g(&s.cut_auth)),
            ("{reason=\"idle\"}", g(&s.cut_idle)),
            ("{reason=\"request\"}", g(&s.cut_request)),
            ("{reason=\"displaced\"}", g(&s.cut_displaced)),
        ],
    );
    out
}
