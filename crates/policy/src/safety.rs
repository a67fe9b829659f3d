//! Which texts of an activity event are scanned for keywords, shared by the
//! agent (which scans its own activity) and the server (which scans devices
//! that do not, such as Chromebooks).

use lectern_proto::ActivityEvent;

/// Query parameters that carry what a student typed into a search box.
const SEARCH_PARAMS: &[&str] = &["q", "query", "p", "search_query", "search", "text", "wd"];

/// Characters of context kept on each side of a match.
pub const CONTEXT_CHARS: usize = 80;

/// The texts to scan in `e`, each with its source: the page or window title,
/// the search a URL carries (decoded), and the URL itself.
pub fn event_texts(e: &ActivityEvent) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(t) = e.title.as_deref().filter(|t| !t.is_empty()) {
        out.push((
            if e.kind == "app" {
                "window_title"
            } else {
                "title"
            },
            t.to_string(),
        ));
    }
    if let Some(u) = e.url.as_deref() {
        if let Ok(parsed) = url::Url::parse(u) {
            for (k, v) in parsed.query_pairs() {
                if SEARCH_PARAMS.contains(&k.as_ref()) && !v.trim().is_empty() {
                    out.push(("search", v.into_owned()));
                }
            }
        }
        out.push(("url", u.to_string()));
    }
    out
}

/// `text[start..end]` with up to [`CONTEXT_CHARS`] characters either side.
pub fn context(text: &str, start: usize, end: usize) -> String {
    let (start, end) = (start.min(text.len()), end.min(text.len()));
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(CONTEXT_CHARS - 1)
        .map_or(0, |(i, _)| i);
    let to = text[end..]
        .char_indices()
        .nth(CONTEXT_CHARS)
        .map_or(text.len(), |(i, _)| end + i);
    text[from..to].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_are_decoded_from_urls() {
        let e = ActivityEvent {
            url: Some("https://search.example/results?q=how+to+make+a%20bomb&lang=en".into()),
            title: Some("Results".into()),
            ..Default::default()
        };
        let texts = event_texts(&e);
        assert!(
            texts.contains(&("search", "how to make a bomb".to_string())),
            "{texts:?}"
        );
        assert!(texts.iter().any(|(s, _)| *s == "url"));
        assert!(texts.contains(&("title", "Results".to_string())));
    }

    #[test]
    fn context_is_cut_on_char_boundaries() {
        let text = format!("{}KILL{}", "é".repeat(200), "ü".repeat(200));
        let start = text.find("KILL").unwrap();
        let c = context(&text, start, start + 4);
        assert_eq!(c.chars().count(), 80 + 4 + 80);
        assert!(c.contains("KILL"));
    }
}
