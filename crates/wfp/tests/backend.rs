//! The system backend: under Wine (scripts run this crate's tests for
//! x86_64-pc-windows-gnu with Wine as cargo's runner) and on Linux it must
//! say, with a typed error, that WFP is unsupported, never pretend to filter.

use lectern_wfp::{system_backend, wine_version, WfpError};

#[test]
fn unsupported_where_there_is_no_wfp() {
    if cfg!(windows) && wine_version().is_none() {
        // A real Windows machine: covered by the manual check list.
        return;
    }
    match system_backend() {
        Err(WfpError::Unsupported { reason }) => {
            if cfg!(windows) {
                assert!(reason.contains("Wine"), "{reason}");
            }
        }
        Err(e) => panic!("expected Unsupported, got {e}"),
        Ok(_) => panic!("expected Unsupported, got a backend"),
    }
}

#[test]
fn wine_is_detected_only_on_windows_builds() {
    if !cfg!(windows) {
        assert_eq!(wine_version(), None);
    }
}
