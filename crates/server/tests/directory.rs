//! Directory sync and sign-in against a real OpenLDAP `slapd` (Debian's
//! package), started by each test on free loopback ports with its own
//! config, database and TLS certificate (a CA made here signs it), seeded
//! with users and nested groups, and stopped when the test ends.

mod common;
#[path = "common/slapd.rs"]
mod slapd;

use common::{TestServer, PASSWORD};
use serde_json::{json, Value};
use slapd::*;

async fn sign_in(ts: &TestServer, user: &str, password: &str) -> (u16, Value) {
    let r = ts
        .client()
        .post(ts.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The directory users and their groups, sorted.
async fn memberships(ts: &TestServer, token: &str) -> Vec<(String, Vec<String>)> {
    let v = ts.get(token, "/api/v1/directory/users").await;
    let mut out: Vec<(String, Vec<String>)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let mut g: Vec<String> = u["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap().to_string())
                .collect();
            g.sort();
            (u["username"].as_str().unwrap().to_string(), g)
        })
        .collect();
    out.sort();
    out
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[tokio::test]
async fn dry_run_shows_changes_and_sync_applies_nested_groups() {
    let slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    // The password is never shown back.
    let got = ts.get(&admin, "/api/v1/directory/config").await;
    assert_eq!(got["bind_password_set"], true);
    assert!(!got.to_string().contains(ROOT_PW));

    let (s, dry) = sync(&ts, &admin, true).await;
    assert_eq!(s, 200, "{dry}");
    let plan = &dry["plan"];
    assert_eq!(
        names(&plan["added"]),
        ["amy", "bob", "cat", "eve"],
        "{plan}"
    );
    // "admin" is a local account's name: the directory's admin is left alone.
    assert_eq!(names(&plan["local_names"]), ["admin"]);
    assert_eq!(plan["users"], 5);
    assert_eq!(plan["groups"], 6);
    // A dry run changes nothing.
    assert!(memberships(&ts, &admin).await.is_empty());

    let (s, done) = sync(&ts, &admin, false).await;
    assert_eq!(s, 200, "{done}");
    let m = memberships(&ts, &admin).await;
    let amy = m.iter().find(|(u, _)| u == "amy").unwrap();
    // Teachers directly; Staff through Teachers; All through the Staff/All cycle.
    assert_eq!(amy.1, ["All", "Staff", "Teachers"]);
    let cat = m.iter().find(|(u, _)| u == "cat").unwrap();
    assert_eq!(cat.1, ["Pupils"]);
    // dan is in the disabled OU: never listed with groups; the local admin
    // gets no groups from the directory's "admin" (in IT).
    assert!(m.iter().all(|(u, _)| u != "dan" && u != "admin"), "{m:?}");

    // A second sync finds nothing to change.
    let (_, again) = sync(&ts, &admin, true).await;
    assert_eq!(again["plan"]["added_total"], 0);
    assert_eq!(again["plan"]["memberships_total"], 0);

    // The directory's groups are offered to the group and access editors.
    let groups = ts.get(&admin, "/api/v1/directory/groups").await;
    assert_eq!(
        names(&groups),
        ["All", "IT", "Leavers", "Pupils", "Staff", "Teachers"]
    );
    // And an access rule for a nested group reaches its members.
    let (s, _) = ts
        .post(
            &admin,
            "/api/v1/access-rules",
            json!({"principal": {"type": "directory_group", "value": "Staff"}, "features": ["reports.manage"], "group_access": {}}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, body) = sign_in(&ts, "amy", "amy-pass").await;
    assert_eq!(s, 200, "{body}");
    let amy = body["token"].as_str().unwrap();
    let me = ts.get(amy, "/api/v1/me").await;
    assert!(me.to_string().contains("reports.manage"), "{me}");
    let runs = ts.get(&admin, "/api/v1/directory/sync").await;
    assert_eq!(runs.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn sign_in_binds_to_the_directory_and_follows_the_sign_in_rules() {
    let slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);

    // Good password: a teacher (Staff, through Teachers) and an admin (IT).
    let (s, amy) = sign_in(&ts, "amy", "amy-pass").await;
    assert_eq!(s, 200, "{amy}");
    assert_eq!(amy["user"]["role"], "teacher");
    let (s, bob) = sign_in(&ts, "BOB", "bob-pass").await;
    assert_eq!(s, 200, "{bob}");
    assert_eq!(bob["user"], json!({"username": "bob", "role": "admin"}));
    // The directory's groups are recorded for the new console user.
    let m = memberships(&ts, &admin).await;
    assert!(m.iter().any(|(u, g)| u == "bob" && g == &["IT"]), "{m:?}");

    // Wrong and empty passwords (an empty bind is "unauthenticated": always refused).
    assert_eq!(sign_in(&ts, "eve", "wrong").await.0, 401);
    assert_eq!(sign_in(&ts, "eve", "").await.0, 401);
    assert_eq!(sign_in(&ts, "nobody", "x").await.0, 401);
    // In no group that may sign in (a pupil), with the right password.
    let (s, cat) = sign_in(&ts, "cat", "cat-pass").await;
    assert_eq!(s, 403, "{cat}");
    assert_eq!(cat["reason"], "directory_not_allowed");
    // A disabled account (in the disabled OU).
    assert_eq!(sign_in(&ts, "dan", "dan-pass").await.0, 401);

    // A local account's name is never the directory's: "admin" exists in the
    // directory (in IT) but only the local password signs in.
    assert_eq!(sign_in(&ts, "admin", "admin-pass").await.0, 401);
    assert_eq!(sign_in(&ts, "admin", PASSWORD).await.0, 200);

    // The login rate limits apply to directory attempts too.
    let mut limited = false;
    for _ in 0..8 {
        let (s, _) = sign_in(&ts, "eve", "guess").await;
        limited |= s == 429;
    }
    assert!(
        limited,
        "repeated directory failures were never rate-limited"
    );

    // The password is kept nowhere: not in the database file.
    let db = std::fs::read(ts.data_dir().join("lectern.db")).unwrap();
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains("amy-pass") && !hay.contains("bob-pass"));
    let audit = ts.get(&admin, "/api/v1/audit?limit=200").await.to_string();
    assert!(audit.contains("not_allowed"), "{audit}");
}

#[tokio::test]
async fn a_disabled_or_deleted_account_loses_console_access() {
    let slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    let amy = sign_in(&ts, "amy", "amy-pass").await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let eve = sign_in(&ts, "eve", "eve-pass").await.1["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sync(&ts, &admin, false).await.0, 200);
    ts.get(&amy, "/api/v1/session").await;

    // amy is disabled (the configured filter), eve deleted.
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n\ndn: {}\nchangetype: delete\n",
        user_dn("amy"),
        user_dn("eve")
    ));
    let (_, dry) = sync(&ts, &admin, true).await;
    assert_eq!(names(&dry["plan"]["disabled"]), ["amy"], "{dry}");
    assert_eq!(names(&dry["plan"]["removed"]), ["eve"], "{dry}");
    // The dry run left their sessions alone.
    ts.get(&amy, "/api/v1/session").await;

    let (s, done) = sync(&ts, &admin, false).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["sessions_ended"], 2);
    for token in [&amy, &eve] {
        let (s, _) = send(&ts, token, reqwest::Method::GET, "/api/v1/session", None).await;
        assert_eq!(s, 401);
    }
    assert_eq!(sign_in(&ts, "amy", "amy-pass").await.0, 401);
    assert_eq!(sign_in(&ts, "eve", "eve-pass").await.0, 401);
    let m = memberships(&ts, &admin).await;
    assert!(m.iter().all(|(u, _)| u != "amy" && u != "eve"), "{m:?}");
    let audit = ts.get(&admin, "/api/v1/audit?limit=200").await.to_string();
    assert!(audit.contains("directory.sync"));
}

#[tokio::test]
async fn the_directory_down_is_a_clear_error_and_deletes_nothing() {
    let mut slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    assert_eq!(sync(&ts, &admin, false).await.0, 200);
    let before = memberships(&ts, &admin).await;
    assert!(!before.is_empty());

    slapd.stop();
    let (s, err) = sync(&ts, &admin, false).await;
    assert_eq!(s, 502, "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{err}"
    );
    assert_eq!(memberships(&ts, &admin).await, before);
    let runs = ts.get(&admin, "/api/v1/directory/sync").await;
    assert_eq!(runs[0]["outcome"], "error");
    // Directory accounts can't sign in now, and are told why; local ones can.
    let (s, body) = sign_in(&ts, "amy", "amy-pass").await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(sign_in(&ts, "admin", PASSWORD).await.0, 200);

    // Back up: the sync works again.
    slapd.run();
    assert_eq!(sync(&ts, &admin, false).await.0, 200);
    assert_eq!(memberships(&ts, &admin).await, before);
}

#[tokio::test]
async fn starttls_works_plain_ldap_is_refused_and_a_wrong_ca_fails() {
    let slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let test = |body: Value| {
        let ts = &ts;
        let admin = admin.clone();
        async move {
            let body = json!({"config": body, "bind_password": ROOT_PW});
            send(
                ts,
                &admin,
                reqwest::Method::POST,
                "/api/v1/directory/test",
                Some(body),
            )
            .await
        }
    };
    // LDAPS with the pinned CA.
    let (s, ok) = test(slapd.config()).await;
    assert_eq!((s, &ok["ok"]), (200, &json!(true)), "{ok}");
    assert_eq!(ok["users"], 5);
    // StartTLS on the plain port.
    let mut starttls = slapd.config();
    starttls["url"] = json!(format!("ldap://127.0.0.1:{}", slapd.ldap));
    starttls["starttls"] = json!(true);
    let (_, ok) = test(starttls.clone()).await;
    assert_eq!(ok["ok"], true, "{ok}");
    // Plain LDAP is refused before anything is sent.
    let mut plain = starttls.clone();
    plain["starttls"] = json!(false);
    let (s, err) = put_config(&ts, &admin, plain).await;
    assert_eq!(s, 400);
    assert!(
        err["error"].as_str().unwrap().contains("in the clear"),
        "{err}"
    );
    // A CA that did not sign the server's certificate: refused, over LDAPS and StartTLS.
    let other = pki().ca;
    for mut cfg in [slapd.config(), starttls] {
        cfg["ca_pem"] = json!(other);
        let (_, res) = test(cfg.clone()).await;
        assert_eq!(res["ok"], false, "{res}");
        assert!(res["error"].as_str().unwrap().contains("reached"), "{res}");
        // Saved, a sync fails the same way and signs nobody in.
        assert_eq!(put_config(&ts, &admin, cfg).await.0, 200);
        assert_eq!(sync(&ts, &admin, false).await.0, 502);
        assert_eq!(sign_in(&ts, "amy", "amy-pass").await.0, 503);
    }
}

#[tokio::test]
async fn only_administrators_configure_the_connection() {
    let slapd = Slapd::start();
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    assert_eq!(put_config(&ts, &admin, slapd.config()).await.0, 200);
    // A teacher holding directory.manage: may read (no password) and sync,
    // not change the connection.
    let tess =
        common::teacher_with_access(&ts, &admin, "tess", &["directory.manage"], &[], false).await;
    let got = ts.get(&tess, "/api/v1/directory/config").await;
    assert!(!got.to_string().contains(ROOT_PW));
    let (s, err) = put_config(&ts, &tess, slapd.config()).await;
    assert_eq!(s, 403);
    assert_eq!(err["reason"], "admin_only");
    assert_eq!(sync(&ts, &tess, true).await.0, 200);
    // Without the right: nothing.
    let tim = common::teacher_with_access(&ts, &admin, "tim", &["groups.view"], &[], false).await;
    assert_eq!(sync(&ts, &tim, true).await.0, 403);
    let (s, _) = send(
        &ts,
        &tim,
        reqwest::Method::GET,
        "/api/v1/directory/config",
        None,
    )
    .await;
    assert_eq!(s, 403);
}

/// An Active Directory look-alike: Debian's `msuser.schema` in slapd, users
/// with `sAMAccountName`, `userAccountControl` and AD-style `memberOf` on
/// users and groups (no `member` lists to follow).
fn ad_seed() -> String {
    let top = "instanceType: 4\nnTSecurityDescriptor: AA==\n";
    let mut s = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: School\ndc: school\n\n"
    );
    for ou in ["people", "groups"] {
        s += &format!("dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n");
    }
    for (cn, parent) in [("Teachers", Some("Staff")), ("Staff", None)] {
        s += &format!(
            "dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: group\n{top}objectCategory: cn=Group\ncn: {cn}\ngroupType: -2147483646\n"
        );
        if let Some(p) = parent {
            s += &format!("memberOf: {}\n", group_dn(p));
        }
        s += "\n";
    }
    // 512: a normal account; 514: the same, disabled (bit 2).
    for (name, uac) in [("amy", 512), ("zed", 514)] {
        s += &format!(
            "dn: cn={name},ou=people,{SUFFIX}\nobjectClass: user\nobjectClass: extensibleObject\n{top}objectCategory: cn=Person\ncn: {name}\nsn: {name}\nsAMAccountName: {name}\nuserAccountControl: {uac}\nmemberOf: {}\nuserPassword: {name}-pass\n\n",
            group_dn("Teachers")
        );
    }
    s
}

#[tokio::test]
async fn the_active_directory_flavour_reads_member_of_and_the_disabled_flag() {
    let slapd = Slapd::start_with("include /etc/ldap/schema/msuser.schema", &ad_seed());
    let ts = TestServer::start().await;
    let admin = ts.login().await;
    let mut cfg = slapd.config();
    cfg["flavour"] = json!("active_directory");
    // slapd cannot match AD's objectCategory=person shorthand.
    cfg["user_filter"] = json!("(objectClass=user)");
    cfg["disabled_filter"] = Value::Null;
    cfg["disabled_ou"] = Value::Null;
    let (s, v) = put_config(&ts, &admin, cfg).await;
    assert_eq!(s, 200, "{v}");
    let (s, done) = sync(&ts, &admin, false).await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(names(&done["plan"]["added"]), ["amy", "zed"]);
    // amy: Teachers by her memberOf, Staff by Teachers' memberOf; zed is
    // disabled (userAccountControl 514) and gets no groups.
    let m = memberships(&ts, &admin).await;
    assert_eq!(
        m,
        [(
            "amy".to_string(),
            vec!["Staff".to_string(), "Teachers".to_string()]
        )]
    );
}
