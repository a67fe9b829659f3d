//! What an alert or digest says: counts by severity and category, the
//! school's name and a link into the console. Never a student's name, a
//! computer's name, a term, the matched text or its context.

use std::collections::BTreeMap;

use lectern_store::mail::ViolationCount;

use super::smtp::Outgoing;

/// The category shown for one no library term has (a device reported it):
/// a device's own words never reach a mail.
pub const OTHER: &str = "other";

/// Which kind of mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sent as violations happen.
    Alert,
    /// The daily summary.
    Digest,
}

/// Counts for one recipient, already matched and scoped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// By severity (1–5).
    pub by_severity: BTreeMap<u8, i64>,
    /// By category (library categories, else [`OTHER`]).
    pub by_category: BTreeMap<String, i64>,
}

impl Counts {
    /// Adds one row; `known` says whether a category is the library's.
    pub fn add(&mut self, c: &ViolationCount, known: impl Fn(&str) -> bool) {
        *self.by_severity.entry(c.severity).or_default() += c.count;
        let cat = if known(&c.category) {
            c.category.to_lowercase()
        } else {
            OTHER.to_string()
        };
        *self.by_category.entry(cat).or_default() += c.count;
    }

    /// How many violations in all.
    pub fn total(&self) -> i64 {
        self.by_severity.values().sum()
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Keeps a school name to one printable line.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(120).collect()
}

/// The link: the violations log from `since` (local `YYYY-MM-DDTHH:MM`, as
/// the log's filter takes it) at the lowest severity counted.
pub fn link(console_url: &str, counts: &Counts, since_ms: i64) -> String {
    let min = counts.by_severity.keys().next().copied().unwrap_or(1);
    let since = crate::clock::local_of(since_ms).format("%Y-%m-%dT%H:%M");
    format!("{console_url}/logs?min_severity={min}&since={since}")
}

/// The message for one recipient.
pub fn compose(kind: Kind, school: &str, to: &str, counts: &Counts, link: &str) -> Outgoing {
    let school = clean(school);
    let n = counts.total();
    let what = plural(n, "violation", "violations");
    let subject = match kind {
        Kind::Alert => format!("Lectern safeguarding alert: {what} at {school}"),
        Kind::Digest => format!("Lectern daily safeguarding digest: {what} at {school}"),
    };
    let mut body = match kind {
        Kind::Alert => {
            format!("Lectern recorded {what} at {school} that match your alert rules.\n")
        }
        Kind::Digest => {
            format!("Since the last digest, Lectern recorded {what} at {school} that match your digest rules.\n")
        }
    };
    body.push_str("\nBy severity (5 is the highest):\n");
    for (sev, c) in counts.by_severity.iter().rev() {
        body.push_str(&format!("  severity {sev}: {c}\n"));
    }
    body.push_str("\nBy category:\n");
    for (cat, c) in &counts.by_category {
        body.push_str(&format!("  {cat}: {c}\n"));
    }
    body.push_str(&format!(
        "\nReview them in the console (you will be asked to sign in):\n{link}\n\n\
         This message carries counts only. Who, where and what was seen are in the console, \
         for those allowed to see them.\n"
    ));
    Outgoing {
        to: to.to_string(),
        subject,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_has_counts_and_a_link_and_unknown_categories_are_other() {
        let mut c = Counts::default();
        let row = |sev, cat: &str, n| ViolationCount {
            device_id: 1,
            severity: sev,
            category: cat.into(),
            count: n,
        };
        let known = |c: &str| c == "Bullying";
        c.add(&row(4, "Bullying", 2), known);
        c.add(&row(2, "amy smith typed this", 1), known);
        assert_eq!(c.total(), 3);
        let m = compose(
            Kind::Alert,
            "Test\nSchool",
            "dsl@x.example",
            &c,
            "https://l.example/logs",
        );
        assert_eq!(
            m.subject,
            "Lectern safeguarding alert: 3 violations at TestSchool"
        );
        assert!(
            m.body.contains("severity 4: 2") && m.body.contains("bullying: 2"),
            "{}",
            m.body
        );
        assert!(
            m.body.contains("other: 1") && !m.body.contains("amy"),
            "{}",
            m.body
        );
        assert!(link("https://l.example", &c, 0)
            .starts_with("https://l.example/logs?min_severity=2&since="));
    }
}
