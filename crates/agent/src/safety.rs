//! Keyword detection on the device: the agent scans its own activity (window
//! titles, page titles, searches, URLs) with the school's library and keeps
//! the evidence of the moment: its rolling buffer of recent frames plus a
//! frame taken at detection. Violations wait in memory until they can be
//! sent; the server decides what follows (alert, lock).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use lectern_keywords::{Library, Scanner};
use lectern_proto::{ActivityEvent, ViolationReport};

/// One evidence frame: width, height, JPEG.
pub type EvidenceFrame = (u16, u16, Vec<u8>);

/// Most violations kept while offline.
const MAX_PENDING: usize = 50;

/// The agent's keyword state.
pub struct Safety {
    scanner: Option<Arc<Scanner>>,
    file: Option<PathBuf>,
    /// Recent frames, oldest first.
    pub evidence: VecDeque<EvidenceFrame>,
    /// Most frames kept in `evidence`.
    pub capacity: usize,
    /// Violations not yet sent, with their evidence.
    pub pending: VecDeque<(ViolationReport, Vec<EvidenceFrame>)>,
    next_local: u64,
    /// `keyword_policies` of the policy in force.
    pub enabled: bool,
}

impl Safety {
    /// Off: the device leaves scanning to the server (the simulator).
    pub fn off() -> Self {
        Safety {
            scanner: None,
            file: None,
            evidence: VecDeque::new(),
            capacity: 0,
            pending: VecDeque::new(),
            next_local: 1,
            enabled: false,
        }
    }

    /// Scanning with the library stored in `file` (the school's, as last
    /// received), or the built-in one until the server sends it.
    pub fn new(file: Option<PathBuf>, capacity: usize) -> Self {
        let lib = file
            .as_deref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| serde_json::from_str::<Library>(&t).ok())
            .unwrap_or_else(Library::default_library);
        Safety {
            scanner: Scanner::new(&lib).ok().map(Arc::new),
            file,
            capacity,
            enabled: true,
            ..Self::off()
        }
    }

    /// Whether this agent scans (and so announces `KeywordScan`).
    pub fn scans(&self) -> bool {
        self.scanner.is_some()
    }

    /// Installs the school's library and keeps it for offline use.
    pub fn set_library(&mut self, library: serde_json::Value) {
        if self.scanner.is_none() {
            return;
        }
        let lib: Library = match serde_json::from_value(library.clone()) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("ignoring an unreadable keyword library: {e}");
                return;
            }
        };
        match Scanner::new(&lib) {
            Ok(s) => {
                tracing::info!(terms = lib.terms.len(), "keyword library installed");
                self.scanner = Some(Arc::new(s));
                if let Some(f) = &self.file {
                    let _ = std::fs::write(f, library.to_string());
                }
            }
            Err(e) => tracing::warn!("cannot compile the keyword library: {e}"),
        }
    }

    /// Matches in `events`, one per term and event, as reports without evidence.
    pub fn scan(&mut self, events: &[ActivityEvent]) -> Vec<ViolationReport> {
        let Some(scanner) = self.scanner.clone().filter(|_| self.enabled) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in events {
            let texts = lectern_policy::safety::event_texts(e);
            for (source, text, m) in scanner.scan_each_term_once(&texts) {
                let context = lectern_policy::safety::context(text, m.start, m.end);
                out.push(self.report(m, context, source, e.user.clone(), e.at));
            }
        }
        out
    }

    /// Matches in text typed into a page (source `text`), one per term.
    pub fn scan_typed(&mut self, t: &crate::TypedText) -> Vec<ViolationReport> {
        let Some(scanner) = self.scanner.clone().filter(|_| self.enabled) else {
            return Vec::new();
        };
        let texts = [("text", t.text.clone())];
        let mut out = Vec::new();
        for (source, text, m) in scanner.scan_each_term_once(&texts) {
            let mut context = lectern_policy::safety::context(text, m.start, m.end);
            if let Some(u) = &t.url {
                context = format!("{context} (typed on {u})");
            }
            out.push(self.report(m, context, source, t.user.clone(), t.at));
        }
        out
    }

    /// A report numbered with the next local id.
    fn report(
        &mut self,
        m: lectern_keywords::Match,
        context: String,
        source: &str,
        user: Option<String>,
        at: i64,
    ) -> ViolationReport {
        let r = ViolationReport {
            local_id: self.next_local,
            term: m.term,
            category: m.category,
            severity: m.severity,
            matched: m.matched.to_string(),
            context,
            source: source.into(),
            user,
            at,
        };
        self.next_local += 1;
        r
    }

    /// Queues a violation with its evidence (the oldest go when full).
    pub fn hold(&mut self, report: ViolationReport, frames: Vec<EvidenceFrame>) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((report, frames));
    }

    /// Adds a frame to the rolling buffer.
    pub fn remember(&mut self, f: EvidenceFrame) {
        if self.capacity == 0 {
            return;
        }
        while self.evidence.len() >= self.capacity {
            self.evidence.pop_front();
        }
        self.evidence.push_back(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_titles_searches_and_urls_with_the_school_library() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keywords.json");
        let mut s = Safety::new(Some(file.clone()), 3);
        assert!(s.scans());
        let e = ActivityEvent {
            url: Some("https://search.example/?q=k%20i%20l%20l%20myself".into()),
            title: Some("Search".into()),
            at: 5,
            ..Default::default()
        };
        let found = s.scan(std::slice::from_ref(&e));
        assert!(
            !found.is_empty(),
            "the built-in library finds self-harm searches"
        );
        assert!(found.iter().any(|r| r.source == "search"), "{found:?}");

        let lib = Library::from_csv(
            "term,category,severity,match,exceptions\nvolcano,test,2,whole_word,\n",
        )
        .unwrap();
        s.set_library(serde_json::to_value(&lib).unwrap());
        assert!(
            s.scan(std::slice::from_ref(&e)).is_empty(),
            "the school's library replaces it"
        );
        let v = ActivityEvent {
            kind: "app".into(),
            title: Some("Volcano notes".into()),
            ..Default::default()
        };
        let found = s.scan(&[v]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].term.as_str(), found[0].source.as_str()),
            ("volcano", "window_title")
        );
        // Kept for the next start, offline.
        let again = Safety::new(Some(file), 3);
        assert!(again.scanner.is_some());
        s.enabled = false;
        assert!(s
            .scan(&[ActivityEvent {
                title: Some("volcano".into()),
                ..Default::default()
            }])
            .is_empty());
    }

    #[test]
    fn typed_text_is_scanned_with_its_page() {
        let mut s = Safety::new(None, 0);
        let t = crate::TypedText {
            text: "honestly you are w0rthless".into(),
            url: Some("https://chat.example/room".into()),
            user: Some("amy".into()),
            at: 9,
        };
        let found = s.scan_typed(&t);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].source, "text");
        assert!(found[0].context.contains("chat.example"));
        assert!(s
            .scan_typed(&crate::TypedText {
                text: "a lovely day".into(),
                ..t
            })
            .is_empty());
    }

    #[test]
    fn the_rolling_buffer_keeps_the_latest_frames() {
        let mut s = Safety::new(None, 2);
        for i in 0..5u16 {
            s.remember((i, i, vec![]));
        }
        let kept: Vec<u16> = s.evidence.iter().map(|f| f.0).collect();
        assert_eq!(kept, [3, 4]);
        assert!(!Safety::off().scans());
    }
}
