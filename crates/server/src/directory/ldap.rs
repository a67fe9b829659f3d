//! Talking to the directory with `ldap3`: a TLS connection bound as the
//! school's bind account, reading users and groups, and checking a user's
//! password by binding as them.

use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use lectern_store::Role;

use super::resolve::{norm_dn, DirGroup, DirUser, Snapshot};
use super::{DirConfig, DirError, Flavour};

/// How long connecting (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one operation (bind, a whole search) may take.
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// Most users or groups one sync reads (memory stays bounded).
pub const MAX_ENTRIES: usize = 200_000;
/// Entries per page (AD answers at most 1000 without paging).
const PAGE: i32 = 500;
/// LDAP result code for invalid credentials.
const INVALID_CREDENTIALS: u32 = 49;

/// A bound connection.
pub struct Conn {
    ldap: Ldap,
}

/// The TLS settings: StartTLS or not, and the pinned CA if any.
fn settings(cfg: &DirConfig) -> Result<LdapConnSettings, DirError> {
    let mut s = LdapConnSettings::new()
        .set_conn_timeout(CONNECT_TIMEOUT)
        .set_starttls(cfg.starttls);
    if let Some(pem) = cfg.ca_pem.as_deref().filter(|p| !p.trim().is_empty()) {
        let mut roots = rustls::RootCertStore::empty();
        for cert in super::config::check_ca(pem).map_err(DirError::Unreachable)? {
            roots
                .add(cert)
                .map_err(|e| DirError::Unreachable(format!("the pinned CA is unusable: {e}")))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DirError::Unreachable(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        s = s.set_config(Arc::new(tls));
    }
    // Without a pinned CA, ldap3 checks against the system's store.
    Ok(s)
}

/// Opens a TLS connection (no bind yet).
async fn open(cfg: &DirConfig) -> Result<Ldap, DirError> {
    let s = settings(cfg)?;
    let (conn, mut ldap) = LdapConnAsync::with_settings(s, &cfg.url)
        .await
        .map_err(unreachable)?;
    // The connection's driver ends when the last handle is dropped.
    ldap3::drive!(conn);
    ldap.with_timeout(OP_TIMEOUT);
    Ok(ldap)
}

fn unreachable(e: LdapError) -> DirError {
    DirError::Unreachable(e.to_string())
}

/// Binds `dn` with `password`: Ok(false) for wrong credentials.
async fn bind(ldap: &mut Ldap, dn: &str, password: &str) -> Result<bool, DirError> {
    // An empty password is an "unauthenticated bind", which servers accept
    // without checking anything: never let it through.
    if password.is_empty() {
        return Ok(false);
    }
    ldap.with_timeout(OP_TIMEOUT);
    let res = ldap.simple_bind(dn, password).await.map_err(unreachable)?;
    match res.rc {
        0 => Ok(true),
        INVALID_CREDENTIALS => Ok(false),
        rc => Err(DirError::Search(format!(
            "bind answered {rc}: {}",
            res.text
        ))),
    }
}

impl Conn {
    /// Connects and binds as the school's bind account.
    pub async fn open(cfg: &DirConfig, password: &str) -> Result<Self, DirError> {
        let mut ldap = open(cfg).await?;
        if !bind(&mut ldap, &cfg.bind_dn, password).await? {
            return Err(DirError::BindRefused);
        }
        Ok(Conn { ldap })
    }

    /// Every entry under `base` matching `filter`, paged, at most [`MAX_ENTRIES`].
    async fn search(
        &mut self,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Vec<SearchEntry>, DirError> {
        let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
            Box::new(EntriesOnly::new()),
            Box::new(PagedResults::new(PAGE)),
        ];
        self.ldap.with_timeout(OP_TIMEOUT);
        let mut stream = self
            .ldap
            .streaming_search_with(adapters, base, Scope::Subtree, filter, attrs)
            .await
            .map_err(|e| DirError::Search(e.to_string()))?;
        let mut out = Vec::new();
        while let Some(entry) = stream
            .next()
            .await
            .map_err(|e| DirError::Search(e.to_string()))?
        {
            if out.len() == MAX_ENTRIES {
                return Err(DirError::TooMany(MAX_ENTRIES));
            }
            out.push(SearchEntry::construct(entry));
        }
        stream
            .finish()
            .await
            .success()
            .map_err(|e| DirError::Search(format!("{base}: {e}")))?;
        Ok(out)
    }

    /// The DNs of users matching the configured disabled filter (OpenLDAP).
    async fn disabled_dns(
        &mut self,
        cfg: &DirConfig,
        base: &str,
    ) -> Result<std::collections::HashSet<String>, DirError> {
        let Some(f) = cfg.disabled_filter.as_deref().filter(|f| !f.is_empty()) else {
            return Ok(Default::default());
        };
        let filter = format!("(&{}{f})", cfg.user_filter());
        let found = self.search(base, &filter, vec!["1.1".into()]).await?;
        Ok(found.iter().map(|e| norm_dn(&e.dn)).collect())
    }

    /// Users under `base` matching the user filter and `extra` (a filter or "").
    async fn users(
        &mut self,
        cfg: &DirConfig,
        base: &str,
        extra: &str,
    ) -> Result<Vec<DirUser>, DirError> {
        let login = cfg.login_attribute().to_string();
        let filter = match extra {
            "" => cfg.user_filter().to_string(),
            x => format!("(&{}{x})", cfg.user_filter()),
        };
        let attrs = vec![
            login.clone(),
            "memberOf".into(),
            "userAccountControl".into(),
        ];
        let entries = self.search(base, &filter, attrs).await?;
        let off = self.disabled_dns(cfg, base).await?;
        Ok(entries
            .into_iter()
            .filter_map(|e| user_of(cfg, &login, &off, e))
            .collect())
    }

    /// Every group under the group base.
    async fn groups(&mut self, cfg: &DirConfig) -> Result<Vec<DirGroup>, DirError> {
        let attrs = ["cn", "member", "uniqueMember", "memberOf"]
            .map(String::from)
            .to_vec();
        let entries = self
            .search(&cfg.group_base, cfg.group_filter(), attrs)
            .await?;
        Ok(entries.into_iter().filter_map(group_of).collect())
    }

    /// Reads every user and group.
    pub async fn snapshot(&mut self, cfg: &DirConfig) -> Result<Snapshot, DirError> {
        let users = self.users(cfg, &cfg.user_base.clone(), "").await?;
        if users.is_empty() {
            return Err(DirError::NoUsers(cfg.user_base.clone()));
        }
        let groups = self.groups(cfg).await?;
        Ok(Snapshot { users, groups })
    }
}

/// A user from a search entry; entries without the login attribute are skipped.
fn user_of(
    cfg: &DirConfig,
    login: &str,
    off: &std::collections::HashSet<String>,
    e: SearchEntry,
) -> Option<DirUser> {
    let name = first(&e, login)?.trim().to_string();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return None;
    }
    let dn = norm_dn(&e.dn);
    let disabled = match cfg.flavour {
        // ACCOUNTDISABLE is bit 2 of userAccountControl.
        Flavour::ActiveDirectory => first(&e, "userAccountControl")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|v| v & 2 != 0),
        Flavour::Openldap => {
            off.contains(&dn)
                || cfg
                    .disabled_ou
                    .as_deref()
                    .filter(|ou| !ou.is_empty())
                    .is_some_and(|ou| dn.ends_with(&format!(",{}", norm_dn(ou))))
        }
    };
    Some(DirUser {
        member_of: all(&e, "memberOf"),
        dn: e.dn,
        name,
        disabled,
    })
}

fn group_of(e: SearchEntry) -> Option<DirGroup> {
    let name = first(&e, "cn")?.to_string();
    let mut members = all(&e, "member");
    members.extend(all(&e, "uniqueMember"));
    Some(DirGroup {
        member_of: all(&e, "memberOf"),
        members,
        name,
        dn: e.dn,
    })
}

/// An attribute's values, its name matched in any case (servers differ).
fn all(e: &SearchEntry, attr: &str) -> Vec<String> {
    e.attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

fn first<'a>(e: &'a SearchEntry, attr: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first())
        .map(String::as_str)
}

/// A directory sign-in that succeeded.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The login name as the directory spells it.
    pub username: String,
    /// The user's DN.
    pub dn: String,
    /// The user's groups (nested followed).
    pub groups: Vec<String>,
    /// The role the sign-in rules give.
    pub role: Role,
}

/// Why a directory sign-in was refused.
#[derive(Debug)]
pub enum SignInRefusal {
    /// No such user, disabled, or the wrong password: the caller says only
    /// "wrong user name or password".
    BadCredentials,
    /// The password was right, but no sign-in rule names any of the user's groups.
    NotAllowed {
        /// The user's name as the directory spells it.
        username: String,
    },
    /// The directory could not answer.
    Directory(DirError),
}

impl From<DirError> for SignInRefusal {
    fn from(e: DirError) -> Self {
        SignInRefusal::Directory(e)
    }
}

/// Signs `username` in: finds the one enabled user with that login under the
/// user base (as the bind account), resolves their groups, then binds as them
/// with `password`. The password is used for that bind only, never kept.
pub async fn sign_in(
    cfg: &DirConfig,
    bind_password: &str,
    username: &str,
    password: &str,
) -> Result<SignedIn, SignInRefusal> {
    if password.is_empty() || username.is_empty() {
        return Err(SignInRefusal::BadCredentials);
    }
    let mut conn = Conn::open(cfg, bind_password).await?;
    let filter = format!("({}={})", cfg.login_attribute(), ldap_escape(username));
    let base = cfg.user_base.clone();
    let mut found = conn.users(cfg, &base, &filter).await?;
    if found.len() != 1 || found[0].disabled {
        return Err(SignInRefusal::BadCredentials);
    }
    let user = found.remove(0);
    let groups = conn.groups(cfg).await?;
    let snap = Snapshot {
        users: vec![user.clone()],
        groups,
    };
    let groups: Vec<String> = snap
        .memberships()
        .remove(&user.name)
        .unwrap_or_default()
        .into_iter()
        .collect();
    // The user's own bind, on a fresh connection so the bind account's
    // session is never mixed with theirs.
    let mut ldap = open(cfg).await?;
    if !bind(&mut ldap, &user.dn, password).await? {
        return Err(SignInRefusal::BadCredentials);
    }
    let _ = ldap.unbind().await;
    let Some(role) = cfg.role_for(&groups) else {
        return Err(SignInRefusal::NotAllowed {
            username: user.name,
        });
    };
    Ok(SignedIn {
        username: user.name,
        dn: user.dn,
        groups,
        role,
    })
}
