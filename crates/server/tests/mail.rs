//! Safeguarding mail against a real SMTP server (Python's aiosmtpd, started
//! by each test on loopback with a certificate the test makes and pins):
//! alerts with counts and a console link and no student text or names,
//! STARTTLS and implicit TLS, wrong credentials and refused certificates as
//! clear test-send results, the daily digest at its time on the server's
//! clock (scoped to what a console user may see), and rights.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::{json, Value};

const SMTP_PASSWORD: &str = "smtp-secret-9e1f";
const CONSOLE: &str = "https://lectern.test:30016";

/// A CA and a server certificate it signed for 127.0.0.1, PEM.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

/// A running aiosmtpd that saves what it accepts under `out`.
struct Smtpd {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
}

impl Smtpd {
    /// `mode`: plain, starttls or tls; `auth`: require this user and password.
    fn start(mode: &str, pki: &Pki, auth: Option<(&str, &str)>) -> Smtpd {
        let out = tempfile::tempdir().unwrap();
        let (cert, key) = (out.path().join("cert.pem"), out.path().join("key.pem"));
        std::fs::write(&cert, &pki.cert).unwrap();
        std::fs::write(&key, &pki.key).unwrap();
        let mail = out.path().join("mail");
        std::fs::create_dir(&mail).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mail/smtpd.py");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script).arg(mode).arg(&mail).arg(&cert).arg(&key);
        if let Some((u, p)) = auth {
            cmd.arg(u).arg(p);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 with aiosmtpd (Debian python3-aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("smtpd did not start: {line:?}"))
            .parse()
            .unwrap();
        Smtpd { child, port, out }
    }

    fn dir(&self) -> PathBuf {
        self.out.path().join("mail")
    }

    /// The messages received so far, decoded (headers unfolded, body
    /// quoted-printable decoded), in arrival order.
    fn messages(&self) -> Vec<String> {
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(self.dir())
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let n = p.file_stem()?.to_str()?.parse().ok()?;
                (p.extension()? == "eml").then_some((n, p))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, p)| decode(&std::fs::read_to_string(p).unwrap()))
            .collect()
    }

    /// Waits for the `n`th message (1-based) and returns it.
    async fn wait_message(&self, n: usize) -> String {
        wait_for(|| async { self.messages().get(n - 1).cloned() }).await
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Unfolds headers and decodes quoted-printable soft breaks and escapes.
fn decode(raw: &str) -> String {
    let s = raw
        .replace("\r\n", "\n")
        .replace("\n ", " ")
        .replace("=\n", "");
    let mut out = String::new();
    let mut rest = s.as_str();
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 1..i + 3).unwrap_or("");
        match u8::from_str_radix(hex, 16) {
            Ok(b) if hex.len() == 2 => {
                out.push(b as char);
                rest = &rest[i + 3..];
            }
            _ => {
                out.push('=');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

async fn send(
    ts: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = ts.client().request(method, ts.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn settings(smtpd: &Smtpd, security: &str, ca: Option<&str>, user: Option<&str>) -> Value {
    json!({
        "host": "127.0.0.1",
        "port": smtpd.port,
        "security": security,
        "ca_pem": ca,
        "username": user,
        "from": "lectern@school.test",
        "console_url": CONSOLE,
    })
}

async fn put_settings(
    ts: &TestServer,
    token: &str,
    config: Value,
    password: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({ "config": config });
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    send(
        ts,
        token,
        reqwest::Method::PUT,
        "/api/v1/mail/settings",
        Some(body),
    )
    .await
}

async fn put_rules(ts: &TestServer, token: &str, rules: Value) {
    let (s, v) = send(
        ts,
        token,
        reqwest::Method::PUT,
        "/api/v1/mail/rules",
        Some(json!({ "rules": rules })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
}

async fn test_send(ts: &TestServer, token: &str) -> (u16, Value) {
    ts.post(token, "/api/v1/mail/test", json!({"to": "dsl@school.test"}))
        .await
}

/// Adds the term `volcano` (category test, severity 3) to the library.
async fn add_term(ts: &TestServer, token: &str) {
    let csv = ts
        .client()
        .get(ts.url("/api/v1/keywords/csv"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = ts
        .client()
        .put(ts.url("/api/v1/keywords/csv"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(format!("{csv}volcano,test,3,whole_word,\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Has `agent` visit a page whose address holds the term, and waits until
/// the school has `total` violations.
async fn violate(ts: &TestServer, token: &str, agent: &TestAgent, url: &str, total: usize) {
    ts.command(
        token,
        &[agent.id()],
        json!({"type": "launch_url", "url": url}),
    )
    .await;
    wait_for(|| async {
        let v = ts.get(token, "/api/v1/violations?category=test").await;
        (v.as_array().unwrap().len() >= total).then_some(())
    })
    .await;
}

/// What must never be in a mail: the student, the computer, the term, what
/// was matched and where.
fn assert_no_student_text(mail: &str) {
    let lower = mail.to_lowercase();
    for secret in ["amy", "safe-pc", "volcan", "example.org", "facts"] {
        assert!(!lower.contains(secret), "{secret:?} in the mail:\n{mail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_carry_counts_and_a_link_over_starttls_and_tls_and_never_student_text() {
    let pki = pki();
    let smtpd = Smtpd::start("starttls", &pki, Some(("lectern", SMTP_PASSWORD)));
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    let (s, v) = put_settings(
        &ts,
        &admin,
        settings(&smtpd, "starttls", Some(&pki.ca), Some("lectern")),
        Some(SMTP_PASSWORD),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The password is never returned, audited or stored in plain text.
    let got = ts.get(&admin, "/api/v1/mail/settings").await;
    assert_eq!(got["password_set"], true, "{got}");
    assert!(!got.to_string().contains(SMTP_PASSWORD));
    let audit = ts.get(&admin, "/api/v1/audit?action=mail.settings").await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    assert!(!audit.to_string().contains(SMTP_PASSWORD), "{audit}");
    for f in ["lectern.db", "lectern.db-wal"] {
        if let Ok(bytes) = std::fs::read(ts.data_dir().join(f)) {
            assert!(
                !bytes
                    .windows(SMTP_PASSWORD.len())
                    .any(|w| w == SMTP_PASSWORD.as_bytes()),
                "{f}"
            );
        }
    }

    // A test message over STARTTLS with the pinned CA and credentials.
    let (s, v) = test_send(&ts, &admin).await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    let first = smtpd.wait_message(1).await;
    assert!(
        first.contains("Subject: Lectern test message from Test School"),
        "{first}"
    );

    // An immediate rule, then a violation: one alert with counts and a link.
    put_rules(&ts, &admin, json!([{"severities": [3, 4, 5], "recipients": [{"address": "dsl@school.test"}], "mode": "immediate"}])).await;
    add_term(&ts, &admin).await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let amy = start_agent(&ts, &enroll, "SAFE-PC01", Some("amy")).await;
    violate(&ts, &admin, &amy, "https://example.org/VOLCAN0-facts", 1).await;
    let alert = smtpd.wait_message(2).await;
    assert!(alert.starts_with("To: dsl@school.test"), "{alert}");
    assert!(
        alert.contains("Subject: Lectern safeguarding alert: 1 violation at Test School"),
        "{alert}"
    );
    assert!(
        alert.contains("severity 3: 1") && alert.contains("test: 1"),
        "{alert}"
    );
    assert!(
        alert.contains(&format!("{CONSOLE}/logs?min_severity=3&since=")),
        "{alert}"
    );
    assert_no_student_text(&alert);
    let sent = wait_for(|| async {
        let a = ts.get(&admin, "/api/v1/audit?action=mail.alert").await;
        (!a.as_array().unwrap().is_empty()).then_some(a)
    })
    .await;
    assert_eq!(sent[0]["outcome"], "ok", "{sent}");

    // Implicit TLS, no credentials: the stored password is cleared with "".
    let tls = Smtpd::start("tls", &pki, None);
    let (s, v) = put_settings(
        &ts,
        &admin,
        settings(&tls, "tls", Some(&pki.ca), None),
        Some(""),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        ts.get(&admin, "/api/v1/mail/settings").await["password_set"],
        false
    );
    let (s, v) = test_send(&ts, &admin).await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    assert!(tls.wait_message(1).await.contains("Lectern test message"));
    amy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_and_refused_certificates_are_clear_test_results() {
    let pki = pki();
    let smtpd = Smtpd::start("starttls", &pki, Some(("lectern", SMTP_PASSWORD)));
    let ts = TestServer::start().await;
    let admin = ts.login().await;

    // No settings yet: a clear 409.
    let (s, _) = test_send(&ts, &admin).await;
    assert_eq!(s, 409);

    // Bad settings name their field and save nothing.
    let mut bad = settings(&smtpd, "none", None, Some("lectern"));
    let (s, v) = put_settings(&ts, &admin, bad.clone(), Some(SMTP_PASSWORD)).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("username"), "{v}");
    bad["security"] = json!("starttls");
    bad["console_url"] = json!("http://lectern.test");
    let (s, v) = put_settings(&ts, &admin, bad, None).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(
        ts.get(&admin, "/api/v1/mail/settings").await["configured"],
        false
    );

    // Wrong password.
    let (s, _) = put_settings(
        &ts,
        &admin,
        settings(&smtpd, "starttls", Some(&pki.ca), Some("lectern")),
        Some("wrong"),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = test_send(&ts, &admin).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&v["ok"], &v["kind"]),
        (&json!(false), &json!("credentials")),
        "{v}"
    );
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("user name or password"),
        "{v}"
    );
    // An alert that cannot be sent is audited as failed and never holds up
    // the violation, which is stored and shown as usual.
    put_rules(&ts, &admin, json!([{"severities": [3], "recipients": [{"address": "dsl@school.test"}], "mode": "immediate"}])).await;
    add_term(&ts, &admin).await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let amy = start_agent(&ts, &enroll, "SAFE-PC01", Some("amy")).await;
    violate(&ts, &admin, &amy, "https://example.org/volcano-1", 1).await;
    let failed = wait_for(|| async {
        let a = ts.get(&admin, "/api/v1/audit?action=mail.alert").await;
        a.as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(failed["outcome"], "failed: credentials", "{failed}");
    assert_eq!(
        failed["detail"]
            .as_str()
            .map(|d| d.contains("\"attempts\":1")),
        Some(true),
        "not retried: {failed}"
    );
    amy.stop().await;

    // The right password, but another CA pinned: the certificate is refused.
    let other = pki_other();
    let (s, _) = put_settings(
        &ts,
        &admin,
        settings(&smtpd, "starttls", Some(&other), Some("lectern")),
        Some(SMTP_PASSWORD),
    )
    .await;
    assert_eq!(s, 200);
    let (_, v) = test_send(&ts, &admin).await;
    assert_eq!(v["kind"], "certificate", "{v}");
    // No CA pinned: the system's store does not know the test CA either.
    let (s, _) = put_settings(
        &ts,
        &admin,
        settings(&smtpd, "starttls", None, Some("lectern")),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (_, v) = test_send(&ts, &admin).await;
    assert_eq!(v["kind"], "certificate", "{v}");
    assert!(smtpd.messages().is_empty());

    // Each attempt is audited as failed; then the allowance runs out.
    let audit = ts.get(&admin, "/api/v1/audit?action=mail.test").await;
    let outcomes: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "failed: certificate",
            "failed: certificate",
            "failed: credentials"
        ]
    );
    for _ in 0..2 {
        assert_eq!(test_send(&ts, &admin).await.0, 200);
    }
    let (s, v) = test_send(&ts, &admin).await;
    assert_eq!(s, 429, "{v}");
    assert_eq!(v["reason"], "rate_limited");
}

/// The CA of another PKI.
fn pki_other() -> String {
    pki().ca
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_gathers_the_violations_at_its_time_scoped_to_each_recipient() {
    let pki = pki();
    let smtpd = Smtpd::start("tls", &pki, None);
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    add_term(&ts, &admin).await;
    let enroll = ts.enrollment_token(&admin, 2).await;
    let one = start_agent(&ts, &enroll, "SAFE-PC01", Some("amy")).await;
    let two = start_agent(&ts, &enroll, "SAFE-PC02", Some("amy")).await;
    let room = computer_group(&ts, &admin, "Room 1", "SAFE-PC01").await;
    // Tina may see the log of Room 1 only.
    teacher_with_access(
        &ts,
        &admin,
        "tina",
        &["activity.view"],
        &[(room, "view")],
        false,
    )
    .await;

    let mut config = settings(&smtpd, "tls", Some(&pki.ca), None);
    config["digest_time"] = json!("07:00");
    let (s, v) = put_settings(&ts, &admin, config, None).await;
    assert_eq!(s, 200, "{v}");
    let due = v["next_digest"].as_i64().unwrap();
    put_rules(
        &ts,
        &admin,
        json!([{"severities": [1, 2, 3, 4, 5], "categories": ["test"], "mode": "digest",
                "recipients": [{"address": "digest@school.test"}, {"address": "tina@school.test", "user": "tina"}]}]),
    )
    .await;

    violate(&ts, &admin, &one, "https://example.org/VOLCAN0-facts", 1).await;
    violate(&ts, &admin, &two, "https://example.org/volcano-facts", 2).await;
    // Digest rules send nothing as it happens.
    assert!(smtpd.messages().is_empty());

    // Just before its time: nothing. At its time: one digest each.
    let (s, v) = send(
        &ts,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/debug/clock",
        Some(json!({"now": due - 60_000})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        ts.get(&admin, "/api/v1/mail/settings").await["next_digest"],
        due
    );
    let (s, v) = send(
        &ts,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/debug/clock",
        Some(json!({"now": due + 60_000})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let next = ts.get(&admin, "/api/v1/mail/settings").await["next_digest"]
        .as_i64()
        .unwrap();
    assert!(
        next > due + 23 * 3_600_000,
        "the next digest is a day later: {next} vs {due}"
    );
    smtpd.wait_message(2).await;
    let mails = smtpd.messages();
    let to = |who: &str| {
        mails
            .iter()
            .find(|m| m.starts_with(&format!("To: {who}")))
            .unwrap_or_else(|| panic!("{who}: {mails:?}"))
    };
    let all = to("digest@school.test");
    assert!(
        all.contains("Subject: Lectern daily safeguarding digest: 2 violations at Test School"),
        "{all}"
    );
    assert!(
        all.contains("severity 3: 2") && all.contains("test: 2"),
        "{all}"
    );
    assert!(all.contains(&format!("{CONSOLE}/logs?")), "{all}");
    assert_no_student_text(all);
    let tina = to("tina@school.test");
    assert!(tina.contains("digest: 1 violation at"), "{tina}");
    assert_no_student_text(tina);
    one.stop().await;
    two.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_routes_need_settings_manage_and_refusals_are_audited() {
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let group = entire_network(&ts, &admin).await;
    let tina = teacher_with_access(
        &ts,
        &admin,
        "tina",
        &["activity.view"],
        &[(group, "control")],
        false,
    )
    .await;
    use reqwest::Method;
    for (method, path, body) in [
        (Method::GET, "/api/v1/mail/settings", None),
        (
            Method::PUT,
            "/api/v1/mail/settings",
            Some(json!({"config": {}})),
        ),
        (Method::GET, "/api/v1/mail/rules", None),
        (
            Method::PUT,
            "/api/v1/mail/rules",
            Some(json!({"rules": []})),
        ),
        (
            Method::POST,
            "/api/v1/mail/test",
            Some(json!({"to": "x@school.test"})),
        ),
    ] {
        let (s, v) = send(&ts, &tina, method, path, body).await;
        assert_eq!(s, 403, "{path}: {v}");
        assert_eq!(v["reason"], "missing_right", "{v}");
        assert_eq!(v["feature"], "settings.manage", "{v}");
    }
    let denied = ts.get(&admin, "/api/v1/audit?action=access.denied").await;
    assert!(denied.as_array().unwrap().len() >= 5, "{denied}");
    // A rule naming a console user that does not exist is refused whole.
    let (s, v) = send(
        &ts,
        &admin,
        Method::PUT,
        "/api/v1/mail/rules",
        Some(json!({"rules": [{"severities": [5], "mode": "immediate", "recipients": [{"address": "a@school.test", "user": "nobody"}]}]})),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("rule 1"), "{v}");
    assert_eq!(
        ts.get(&admin, "/api/v1/mail/rules").await["rules"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_beyond_the_hourly_allowance_wait_and_go_out_together() {
    let pki = pki();
    let smtpd = Smtpd::start("plain", &pki, None);
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let mut config = settings(&smtpd, "none", None, None);
    config["per_hour"] = json!(1);
    let (s, v) = put_settings(&ts, &admin, config, None).await;
    assert_eq!(s, 200, "{v}");
    put_rules(&ts, &admin, json!([{"severities": [3], "recipients": [{"address": "dsl@school.test"}], "mode": "immediate"}])).await;
    add_term(&ts, &admin).await;
    let enroll = ts.enrollment_token(&admin, 1).await;
    let amy = start_agent(&ts, &enroll, "SAFE-PC01", Some("amy")).await;
    let notes = |n: u64| {
        let ts = &ts;
        async move {
            wait_for(|| async { (ts.metric("lectern_mail_notes_total").await >= n).then_some(()) })
                .await
        }
    };

    // The first goes at once and uses the hour's only round.
    violate(&ts, &admin, &amy, "https://example.org/volcano-1", 1).await;
    assert!(smtpd
        .wait_message(1)
        .await
        .contains("alert: 1 violation at"));
    notes(1).await;
    // Two more wait in one batch: no second mail within the hour.
    violate(&ts, &admin, &amy, "https://example.org/volcano-2", 2).await;
    violate(&ts, &admin, &amy, "https://example.org/volcano-3", 3).await;
    notes(3).await;
    assert_eq!(smtpd.messages().len(), 1);
    assert_eq!(ts.metric("lectern_mail_notes_dropped_total").await, 0);

    // An hour on, they go out together as one alert.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (s, v) = send(
        &ts,
        &admin,
        reqwest::Method::PUT,
        "/api/v1/debug/clock",
        Some(json!({"now": now + 61 * 60_000})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let batch = smtpd.wait_message(2).await;
    assert!(
        batch.contains("alert: 2 violations at") && batch.contains("severity 3: 2"),
        "{batch}"
    );
    assert_no_student_text(&batch);
    amy.stop().await;
}
