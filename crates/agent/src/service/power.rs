//! Power events for the activity log. The platform's boot id changes with
//! every boot (Linux: the kernel's, see `linux::this_boot`); the service keeps the last one and a timestamp it refreshes while
//! running, so after a reboot it can report when the machine went off and
//! when it came on.

use std::path::Path;
use std::time::Duration;

use lectern_proto::ActivityEvent;

/// How often the "still on" timestamp is refreshed.
pub const ALIVE_EVERY: Duration = Duration::from_secs(60);

/// Events for a boot the service has not seen yet: `power_off` at the last
/// time the previous boot was seen alive (if known), then `power_on` at this
/// boot's start. Empty when this boot was already reported.
pub fn boot_events(state_dir: &Path, boot_id: &str, boot_time_ms: i64) -> Vec<ActivityEvent> {
    let seen = std::fs::read_to_string(state_dir.join("boot_id")).unwrap_or_default();
    if seen.trim() == boot_id {
        return Vec::new();
    }
    let mut events = Vec::new();
    if !seen.trim().is_empty() {
        if let Some(at) = std::fs::read_to_string(state_dir.join("alive"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            events.push(ActivityEvent {
                kind: "power_off".into(),
                at,
                ..Default::default()
            });
        }
    }
    events.push(ActivityEvent {
        kind: "power_on".into(),
        at: boot_time_ms,
        ..Default::default()
    });
    let _ = std::fs::write(state_dir.join("boot_id"), boot_id);
    events
}

/// Records that the machine is on now.
pub fn mark_alive(state_dir: &Path) {
    let _ = std::fs::write(state_dir.join("alive"), crate::now_ms().to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_boot_reports_off_then_on_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = boot_events(dir.path(), "boot-a", 1_000);
        assert_eq!(first.len(), 1, "first ever start: only power_on");
        assert_eq!((first[0].kind.as_str(), first[0].at), ("power_on", 1_000));
        assert!(
            boot_events(dir.path(), "boot-a", 1_000).is_empty(),
            "same boot"
        );
        std::fs::write(dir.path().join("alive"), "5000").unwrap();
        let next = boot_events(dir.path(), "boot-b", 9_000);
        let kinds: Vec<_> = next.iter().map(|e| (e.kind.as_str(), e.at)).collect();
        assert_eq!(kinds, [("power_off", 5_000), ("power_on", 9_000)]);
    }
}
