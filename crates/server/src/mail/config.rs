//! A school's mail settings and alert rules: what may be stored, checked
//! before anything is saved. Every check names its field.

use serde::{Deserialize, Serialize};

/// Largest pinned CA (PEM), bytes; the same bound as the directory's.
pub const MAX_CA_PEM: usize = 64 * 1024;
/// Longest SMTP password accepted.
pub const MAX_PASSWORD: usize = 1024;
/// Most rules a school may have.
pub const MAX_RULES: usize = 50;
/// Most recipients a rule may have.
pub const MAX_RECIPIENTS: usize = 20;
/// Most categories a rule may name.
pub const MAX_CATEGORIES: usize = 32;
/// Bounds of `per_hour`, the immediate mails a school sends in an hour.
pub const PER_HOUR: std::ops::RangeInclusive<u32> = 1..=60;
/// `per_hour` when not given.
pub const DEFAULT_PER_HOUR: u32 = 10;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain SMTP (no credentials allowed).
    None,
    /// Plain, then STARTTLS before anything else (required, never optional).
    #[default]
    Starttls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// A school's SMTP settings (the password is kept apart, sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server: a host name or an IP address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// none, starttls or tls.
    #[serde(default)]
    pub security: Security,
    /// CA certificate(s) to trust instead of the system's (PEM).
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// SMTP user name (none: no authentication).
    #[serde(default)]
    pub username: Option<String>,
    /// The sender address.
    pub from: String,
    /// The console's address for links (`https://host[:port]`).
    pub console_url: String,
    /// At most this many immediate mails an hour; the rest are batched.
    #[serde(default = "default_per_hour")]
    pub per_hour: u32,
    /// The daily digest's local time (`HH:MM`); none: no digest.
    #[serde(default)]
    pub digest_time: Option<String>,
}

fn default_per_hour() -> u32 {
    DEFAULT_PER_HOUR
}

/// When a rule's matches are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// As they happen (within the school's hourly allowance).
    Immediate,
    /// In the daily digest.
    Digest,
}

/// One recipient: an address, and the console user it belongs to if any
/// (whose rights then scope the counts the mail carries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// Where the mail goes.
    pub address: String,
    /// A console user name: the mail counts only what they may see.
    #[serde(default)]
    pub user: Option<String>,
}

/// Which violations go to whom, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Severities (1–5) that match.
    pub severities: Vec<u8>,
    /// Categories that match (empty: every category).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Who is told.
    pub recipients: Vec<Recipient>,
    /// Immediately or in the digest.
    pub mode: Mode,
}

impl Rule {
    /// Whether a violation of this severity and category matches.
    pub fn matches(&self, severity: u8, category: &str) -> bool {
        self.severities.contains(&severity)
            && (self.categories.is_empty()
                || self
                    .categories
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(category)))
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Checks an e-mail address (the sender's or a recipient's).
pub fn check_address(field: &str, a: &str) -> Result<(), String> {
    if a.len() > 254 || has_control(a) {
        return Err(format!("{field}: at most 254 characters, on one line"));
    }
    a.parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|_| format!("{field}: “{a}” is not an e-mail address"))
}

fn check_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && (host.parse::<std::net::IpAddr>().is_ok()
            || host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            }));
    if ok {
        Ok(())
    } else {
        Err("host: a host name or an IP address".into())
    }
}

/// The console's base address: `https://` with a host, and nothing after
/// the port. Returned without a trailing slash.
pub fn check_console_url(u: &str) -> Result<String, String> {
    const WHAT: &str =
        "console_url: the console's https:// address, e.g. https://lectern.school.example:30016";
    let url = url::Url::parse(u).map_err(|_| WHAT.to_string())?;
    let bare = url.scheme() == "https"
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !bare {
        return Err(WHAT.into());
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// Parses `HH:MM` into minutes after midnight.
pub fn digest_minute(t: &str) -> Option<u32> {
    let (h, m) = t.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl MailConfig {
    /// Checks every field; the first problem, naming its field. Also
    /// normalises: the console address without a trailing slash, empty
    /// optional fields as none.
    pub fn validate(&mut self) -> Result<(), String> {
        self.host = self.host.trim().to_string();
        check_host(&self.host)?;
        if self.port == 0 {
            return Err("port: 1 to 65535".into());
        }
        if self.ca_pem.as_deref().is_some_and(|p| p.trim().is_empty()) {
            self.ca_pem = None;
        }
        if let Some(pem) = &self.ca_pem {
            if pem.len() > MAX_CA_PEM {
                return Err(format!("ca_pem: at most {} KiB", MAX_CA_PEM / 1024));
            }
            crate::directory::config::check_ca(pem)?;
        }
        if self.username.as_deref().is_some_and(|u| u.is_empty()) {
            self.username = None;
        }
        if let Some(u) = &self.username {
            if u.len() > 256 || has_control(u) {
                return Err("username: at most 256 characters, on one line".into());
            }
            if self.security == Security::None {
                return Err("username: credentials need STARTTLS or TLS (security)".into());
            }
        }
        check_address("from", &self.from)?;
        self.console_url = check_console_url(&self.console_url)?;
        if !PER_HOUR.contains(&self.per_hour) {
            return Err(format!(
                "per_hour: {} to {}",
                PER_HOUR.start(),
                PER_HOUR.end()
            ));
        }
        if self.digest_time.as_deref().is_some_and(str::is_empty) {
            self.digest_time = None;
        }
        if let Some(t) = &self.digest_time {
            digest_minute(t).ok_or("digest_time: HH:MM (00:00 to 23:59), or empty for none")?;
        }
        Ok(())
    }
}

/// Checks a school's rules as a whole; `user_exists` says whether a
/// console user of that name exists. Problems name the rule (1-based).
pub fn check_rules(rules: &[Rule], user_exists: impl Fn(&str) -> bool) -> Result<(), String> {
    if rules.len() > MAX_RULES {
        return Err(format!("rules: at most {MAX_RULES}"));
    }
    for (i, r) in rules.iter().enumerate() {
        let n = i + 1;
        if r.severities.is_empty() || r.severities.iter().any(|s| !(1..=5).contains(s)) {
            return Err(format!("rule {n}: severities: one or more of 1 to 5"));
        }
        if r.categories.len() > MAX_CATEGORIES
            || r.categories
                .iter()
                .any(|c| c.trim().is_empty() || c.chars().count() > 64 || has_control(c))
        {
            return Err(format!(
                "rule {n}: categories: at most {MAX_CATEGORIES}, each 1 to 64 characters"
            ));
        }
        if r.recipients.is_empty() || r.recipients.len() > MAX_RECIPIENTS {
            return Err(format!("rule {n}: recipients: 1 to {MAX_RECIPIENTS}"));
        }
        for p in &r.recipients {
            check_address(&format!("rule {n}: address"), &p.address)?;
            if let Some(u) = &p.user {
                if !user_exists(u) {
                    return Err(format!("rule {n}: user: no console user “{u}”"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> MailConfig {
        MailConfig {
            host: "smtp.school.example".into(),
            port: 587,
            security: Security::Starttls,
            ca_pem: Some(" ".into()),
            username: Some("lectern".into()),
            from: "lectern@school.example".into(),
            console_url: "https://lectern.school.example:30016/".into(),
            per_hour: 10,
            digest_time: Some("07:30".into()),
        }
    }

    #[test]
    fn settings_are_checked_and_normalised() {
        let mut c = good();
        c.validate().unwrap();
        assert_eq!(c.console_url, "https://lectern.school.example:30016");
        assert_eq!(c.ca_pem, None);
        type Spoil = fn(&mut MailConfig);
        let bad: [(&str, Spoil); 9] = [
            ("host", |c| c.host = "smtp school".into()),
            ("port", |c| c.port = 0),
            ("username", |c| c.security = Security::None),
            ("from", |c| c.from = "not an address".into()),
            ("console_url", |c| c.console_url = "http://x.example".into()),
            ("console_url", |c| {
                c.console_url = "https://x.example/logs?a=1".into()
            }),
            ("per_hour", |c| c.per_hour = 0),
            ("digest_time", |c| c.digest_time = Some("7:30".into())),
            ("ca_pem", |c| c.ca_pem = Some("not pem".into())),
        ];
        for (field, spoil) in bad {
            let mut c = good();
            spoil(&mut c);
            let e = c.validate().unwrap_err();
            assert!(e.starts_with(field), "{field}: {e}");
        }
    }

    #[test]
    fn rules_are_checked_and_match_by_severity_and_category() {
        let rule = Rule {
            severities: vec![4, 5],
            categories: vec!["Self-harm".into()],
            recipients: vec![Recipient {
                address: "dsl@school.example".into(),
                user: Some("dsl".into()),
            }],
            mode: Mode::Immediate,
        };
        assert!(check_rules(std::slice::from_ref(&rule), |u| u == "dsl").is_ok());
        assert!(check_rules(std::slice::from_ref(&rule), |_| false)
            .unwrap_err()
            .contains("no console user"));
        assert!(rule.matches(5, "self-harm"));
        assert!(!rule.matches(3, "self-harm"));
        assert!(!rule.matches(5, "violence"));
        let mut any = rule.clone();
        any.categories.clear();
        assert!(any.matches(4, "violence"));
        any.severities = vec![6];
        assert!(check_rules(&[any], |_| true)
            .unwrap_err()
            .contains("severities"));
    }

    #[test]
    fn digest_times_parse() {
        assert_eq!(digest_minute("07:30"), Some(450));
        assert_eq!(digest_minute("23:59"), Some(1439));
        for bad in ["24:00", "7:30", "07:60", "0730", ""] {
            assert_eq!(digest_minute(bad), None, "{bad}");
        }
    }
}
