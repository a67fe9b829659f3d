//! A real OpenLDAP `slapd` (Debian's package) for directory tests: started
//! on free loopback ports with its own config, database and TLS certificate
//! (a CA made here signs it), seeded with users and nested groups, stopped
//! when dropped. Included by the directory tests with `#[path]`.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub const SUFFIX: &str = "dc=school,dc=test";
pub const ROOT_DN: &str = "cn=admin,dc=school,dc=test";
pub const ROOT_PW: &str = "bind-secret-pw";

/// A CA and a server certificate it signed, PEM.
pub struct Pki {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    Pki {
        ca: ca.pem(),
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn person(uid: &str, ou: &str, extra: &str) -> String {
    format!(
        "dn: uid={uid},ou={ou},{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {uid}-pass\n{extra}\n"
    )
}

pub fn group(cn: &str, members: &[&str]) -> String {
    let mut s = format!("dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n");
    for m in members {
        s += &format!("member: {m}\n");
    }
    s + "\n"
}

pub fn user_dn(uid: &str) -> String {
    format!("uid={uid},ou=people,{SUFFIX}")
}

pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},ou=groups,{SUFFIX}")
}

/// The seed: amy and eve teach (Teachers, nested in Staff, which is in a
/// cycle with All), bob is in IT, cat is a pupil, dan sits in the disabled
/// OU, and "admin" (a local account's name) is in IT too.
pub fn seed() -> String {
    let mut s = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: School\ndc: school\n\n"
    );
    for ou in ["people", "groups", "disabled"] {
        s += &format!("dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n");
    }
    for u in ["amy", "bob", "cat", "eve", "admin"] {
        s += &person(u, "people", "");
    }
    s += &person("dan", "disabled", "");
    s += &group("Teachers", &[&user_dn("amy"), &user_dn("eve")]);
    s += &group("Staff", &[&group_dn("Teachers"), &group_dn("All")]);
    s += &group("All", &[&group_dn("Staff")]);
    s += &group("IT", &[&user_dn("bob"), &user_dn("admin")]);
    s += &group("Pupils", &[&user_dn("cat")]);
    s += &group("Leavers", &[&format!("uid=dan,ou=disabled,{SUFFIX}")]);
    s
}

/// A running slapd: LDAP (for StartTLS) and LDAPS on loopback.
pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub ldap: u16,
    pub ldaps: u16,
    pub pki: Pki,
}

impl Slapd {
    pub fn start() -> Slapd {
        Slapd::start_with("", &seed())
    }

    /// Starts slapd with extra schema `include` lines and the LDIF `seed`.
    pub fn start_with(includes: &str, seed: &str) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        let pki = pki();
        std::fs::write(d.join("cert.pem"), &pki.cert).unwrap();
        std::fs::write(d.join("key.pem"), &pki.key).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
{includes}
pidfile {d}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {d}/cert.pem
TLSCertificateKeyFile {d}/key.pem
database mdb
maxsize 10485760
suffix \"{SUFFIX}\"
rootdn \"{ROOT_DN}\"
rootpw {ROOT_PW}
directory {d}/db
",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        std::fs::write(d.join("seed.ldif"), seed).unwrap();
        let out = Command::new("slapadd")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .arg("-l")
            .arg(d.join("seed.ldif"))
            .output()
            .expect("slapadd (Debian package slapd) must be installed");
        assert!(out.status.success(), "slapadd: {out:?}");
        let mut s = Slapd {
            dir,
            child: None,
            ldap: free_port(),
            ldaps: free_port(),
            pki,
        };
        s.run();
        s
    }

    /// Starts slapd in the foreground (`-d 0`) and waits for both ports.
    pub fn run(&mut self) {
        let d = self.dir.path();
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.ldap, self.ldaps
        );
        let child = Command::new("slapd")
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .args(["-h", &urls, "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("slapd must be installed");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for port in [self.ldap, self.ldaps] {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(std::time::Instant::now() < deadline, "slapd did not start");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Applies an LDIF change as the root DN (`ldapmodify`, LDAP on loopback).
    pub fn modify(&self, ldif: &str) {
        let mut c = Command::new("ldapmodify")
            .args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.ldap)])
            .args(["-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("ldapmodify (Debian package ldap-utils) must be installed");
        c.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success(), "ldapmodify failed: {ldif}");
    }

    /// Settings for LDAPS with this slapd's CA pinned.
    pub fn config(&self) -> Value {
        json!({
            "url": format!("ldaps://127.0.0.1:{}", self.ldaps),
            "ca_pem": self.pki.ca,
            "bind_dn": ROOT_DN,
            "user_base": format!("ou=people,{SUFFIX}"),
            "group_base": format!("ou=groups,{SUFFIX}"),
            "flavour": "openldap",
            "disabled_filter": "(employeeType=disabled)",
            "disabled_ou": format!("ou=disabled,{SUFFIX}"),
            "signin": [
                {"group": "Staff", "role": "teacher"},
                {"group": "IT", "role": "admin"},
            ],
        })
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

// Talking to a test server about its directory.

pub async fn send(
    ts: &crate::common::TestServer,
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

pub async fn put_config(
    ts: &crate::common::TestServer,
    token: &str,
    config: Value,
) -> (u16, Value) {
    let body = json!({"config": config, "bind_password": ROOT_PW});
    send(
        ts,
        token,
        reqwest::Method::PUT,
        "/api/v1/directory/config",
        Some(body),
    )
    .await
}

pub async fn sync(ts: &crate::common::TestServer, token: &str, dry_run: bool) -> (u16, Value) {
    let path = format!("/api/v1/directory/sync?dry_run={dry_run}");
    send(ts, token, reqwest::Method::POST, &path, None).await
}
