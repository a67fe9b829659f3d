//! A school's directory settings: what is stored, the defaults each flavour
//! brings, and the checks every saved configuration passes.

use lectern_store::Role;
use serde::{Deserialize, Serialize};

/// Which kind of directory: it decides the attribute names and how a
/// disabled account is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    /// Active Directory: `sAMAccountName`, `memberOf`, `userAccountControl`
    /// bit 2 (ACCOUNTDISABLE).
    ActiveDirectory,
    /// OpenLDAP and the like: `uid`, groups' `member`/`uniqueMember` (and
    /// `memberOf` where the overlay provides it); disabled accounts by a
    /// configured filter or OU.
    #[default]
    Openldap,
}

/// Which directory group may sign in to the console, and as what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRule {
    /// A directory group's name (its `cn`), nested membership counts.
    pub group: String,
    /// `teacher` or `admin`.
    pub role: String,
}

/// The stored settings (the bind password is kept apart, never in here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DirConfig {
    /// `ldaps://host[:port]` or `ldap://host[:port]` (then `starttls` is required).
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// The CA certificate(s) to trust, PEM; none: the system's store.
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// The bind account's DN (AD also takes `user@domain`).
    pub bind_dn: String,
    /// Where users are searched (subtree).
    pub user_base: String,
    /// Which entries are users; empty: the flavour's default.
    #[serde(default)]
    pub user_filter: Option<String>,
    /// Where groups are searched (subtree).
    pub group_base: String,
    /// Which entries are groups; empty: the flavour's default.
    #[serde(default)]
    pub group_filter: Option<String>,
    /// AD or OpenLDAP.
    #[serde(default)]
    pub flavour: Flavour,
    /// The sign-in name's attribute; empty: `sAMAccountName` (AD) or `uid`.
    /// AD schools may use `userPrincipalName`.
    #[serde(default)]
    pub login_attribute: Option<String>,
    /// OpenLDAP: users matching this filter are disabled.
    #[serde(default)]
    pub disabled_filter: Option<String>,
    /// OpenLDAP: users under this DN are disabled.
    #[serde(default)]
    pub disabled_ou: Option<String>,
    /// Which groups may sign in, with which role (the highest role wins).
    #[serde(default)]
    pub signin: Vec<SignInRule>,
    /// Sync every this many minutes (15 to 1440), or 0: only on demand.
    #[serde(default)]
    pub sync_minutes: u32,
}

/// Most sign-in rules.
pub const MAX_SIGNIN_RULES: usize = 100;
/// Largest CA bundle accepted.
pub const MAX_CA_PEM: usize = 64 * 1024;
/// Longest DN or filter accepted.
pub const MAX_DN: usize = 1024;

impl DirConfig {
    /// The attribute users sign in with.
    pub fn login_attribute(&self) -> &str {
        match (self.login_attribute.as_deref(), self.flavour) {
            (Some(a), _) if !a.is_empty() => a,
            (_, Flavour::ActiveDirectory) => "sAMAccountName",
            (_, Flavour::Openldap) => "uid",
        }
    }

    /// The filter selecting users.
    pub fn user_filter(&self) -> &str {
        match (self.user_filter.as_deref(), self.flavour) {
            (Some(f), _) if !f.is_empty() => f,
            (_, Flavour::ActiveDirectory) => "(&(objectCategory=person)(objectClass=user))",
            (_, Flavour::Openldap) => "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
        }
    }

    /// The filter selecting groups.
    pub fn group_filter(&self) -> &str {
        match (self.group_filter.as_deref(), self.flavour) {
            (Some(f), _) if !f.is_empty() => f,
            (_, Flavour::ActiveDirectory) => "(objectClass=group)",
            (_, Flavour::Openldap) => {
                "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"
            }
        }
    }

    /// The role a member of `groups` signs in with, if any rule lets them.
    pub fn role_for(&self, groups: &[String]) -> Option<Role> {
        let mut best = None;
        for rule in &self.signin {
            if groups.iter().any(|g| g.eq_ignore_ascii_case(&rule.group)) {
                match Role::parse(&rule.role) {
                    Some(Role::Admin) => return Some(Role::Admin),
                    Some(r) => best = Some(r),
                    None => {}
                }
            }
        }
        best
    }

    /// Checks every field; the message names the field and what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.check_url()?;
        if let Some(pem) = self.ca_pem.as_deref().filter(|p| !p.trim().is_empty()) {
            check_ca(pem)?;
        }
        check_dn("bind_dn", &self.bind_dn, false)?;
        check_dn("user_base", &self.user_base, false)?;
        check_dn("group_base", &self.group_base, false)?;
        for (field, v) in [
            ("user_filter", &self.user_filter),
            ("group_filter", &self.group_filter),
            ("disabled_filter", &self.disabled_filter),
        ] {
            if let Some(f) = v.as_deref().filter(|f| !f.is_empty()) {
                check_filter(field, f)?;
            }
        }
        if let Some(ou) = self.disabled_ou.as_deref().filter(|d| !d.is_empty()) {
            check_dn("disabled_ou", ou, false)?;
        }
        if let Some(a) = self.login_attribute.as_deref().filter(|a| !a.is_empty()) {
            let ok = a.len() <= 64
                && a.starts_with(|c: char| c.is_ascii_alphabetic())
                && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(format!("login_attribute: {a:?} is not an attribute name"));
            }
        }
        self.check_signin()?;
        if self.sync_minutes != 0 && !(15..=1440).contains(&self.sync_minutes) {
            return Err("sync_minutes: 0 (only on demand) or 15 to 1440".into());
        }
        Ok(())
    }

    fn check_url(&self) -> Result<(), String> {
        let url = url::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("url: name the directory's host, e.g. ldaps://dc1.school.example".into());
        }
        if url.path() != "" && url.path() != "/" || url.query().is_some() {
            return Err(
                "url: only scheme, host and port (put base DNs in their own fields)".into(),
            );
        }
        match (url.scheme(), self.starttls) {
            ("ldaps", false) => Ok(()),
            ("ldaps", true) => Err("url: ldaps:// is already TLS; turn StartTLS off".into()),
            ("ldap", true) => Ok(()),
            ("ldap", false) => Err(
                "url: plain LDAP would send passwords in the clear; use ldaps:// or turn StartTLS on"
                    .into(),
            ),
            (s, _) => Err(format!("url: scheme {s:?} is not ldaps:// or ldap://")),
        }
    }

    fn check_signin(&self) -> Result<(), String> {
        if self.signin.len() > MAX_SIGNIN_RULES {
            return Err(format!("signin: at most {MAX_SIGNIN_RULES} rules"));
        }
        for (i, r) in self.signin.iter().enumerate() {
            let g = r.group.trim();
            if g.is_empty() || g.chars().count() > 256 || g.chars().any(char::is_control) {
                return Err(format!(
                    "signin rule {}: the group is 1 to 256 printable characters",
                    i + 1
                ));
            }
            if Role::parse(&r.role).is_none() {
                return Err(format!(
                    "signin rule {}: role is \"teacher\" or \"admin\", not {:?}",
                    i + 1,
                    r.role
                ));
            }
        }
        Ok(())
    }
}

fn check_dn(field: &str, dn: &str, may_be_empty: bool) -> Result<(), String> {
    if dn.trim().is_empty() && !may_be_empty {
        return Err(format!("{field}: required"));
    }
    if dn.len() > MAX_DN || dn.chars().any(char::is_control) {
        return Err(format!(
            "{field}: at most {MAX_DN} characters, no control characters"
        ));
    }
    Ok(())
}

fn check_filter(field: &str, f: &str) -> Result<(), String> {
    if f.len() > MAX_DN {
        return Err(format!("{field}: at most {MAX_DN} characters"));
    }
    ldap3::parse_filter(f)
        .map(|_| ())
        .map_err(|_| format!("{field}: {f:?} is not an LDAP filter, e.g. (objectClass=person)"))
}

/// The certificates in a PEM bundle (at least one).
pub fn check_ca(pem: &str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    if pem.len() > MAX_CA_PEM {
        return Err(format!("ca_pem: at most {} KiB", MAX_CA_PEM / 1024));
    }
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("ca_pem: not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("ca_pem: no certificate found (expected -----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> DirConfig {
        DirConfig {
            url: "ldaps://dc1.school.example".into(),
            bind_dn: "cn=lectern,dc=school".into(),
            user_base: "ou=people,dc=school".into(),
            group_base: "ou=groups,dc=school".into(),
            ..Default::default()
        }
    }

    #[test]
    fn plain_ldap_is_refused_and_tls_accepted() {
        assert!(good().validate().is_ok());
        let plain = DirConfig {
            url: "ldap://dc1.school.example".into(),
            ..good()
        };
        assert!(plain.validate().unwrap_err().contains("in the clear"));
        let starttls = DirConfig {
            starttls: true,
            ..plain
        };
        assert!(starttls.validate().is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let c = DirConfig {
            user_filter: Some("objectClass=person(".into()),
            ..good()
        };
        assert!(c.validate().unwrap_err().starts_with("user_filter"));
        let c = DirConfig {
            ca_pem: Some("hello".into()),
            ..good()
        };
        assert!(c.validate().unwrap_err().starts_with("ca_pem"));
        let c = DirConfig {
            sync_minutes: 5,
            ..good()
        };
        assert!(c.validate().unwrap_err().starts_with("sync_minutes"));
        let c = DirConfig {
            signin: vec![SignInRule {
                group: "Staff".into(),
                role: "root".into(),
            }],
            ..good()
        };
        assert!(c.validate().unwrap_err().contains("role"));
    }

    #[test]
    fn the_highest_role_of_any_matching_rule_wins() {
        let c = DirConfig {
            signin: vec![
                SignInRule {
                    group: "Teachers".into(),
                    role: "teacher".into(),
                },
                SignInRule {
                    group: "IT".into(),
                    role: "admin".into(),
                },
            ],
            ..good()
        };
        assert_eq!(c.role_for(&["teachers".into()]), Some(Role::Teacher));
        assert_eq!(
            c.role_for(&["Teachers".into(), "it".into()]),
            Some(Role::Admin)
        );
        assert_eq!(c.role_for(&["Pupils".into()]), None);
        assert_eq!(c.login_attribute(), "uid");
        let ad = DirConfig {
            flavour: Flavour::ActiveDirectory,
            ..good()
        };
        assert_eq!(ad.login_attribute(), "sAMAccountName");
    }
}
