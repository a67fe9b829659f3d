//! Delegation: no one can grant more than they hold.
//!
//! Rights come from three places: access rules (features, access per group,
//! privacy bypass), the directory groups a user is in (rules for a directory
//! group apply to its members), and the members of the groups those rules
//! give access to (adding a computer to a group gives everyone with access to
//! the group access to the computer). Accounts matter too: whoever creates an
//! account knows its password and so holds whatever the account is granted.
//!
//! The rule, for anyone who is not an administrator:
//!
//! - **Access rules.** You may create a rule only if everything it grants is
//!   within your own rights, and change or delete a rule only if both its old
//!   and its new grants are (you cannot edit what you could not have written).
//! - **Directory memberships.** You never change your own. For anyone else,
//!   every directory group you add *or remove* must grant, through the rules
//!   written for it, nothing beyond your own rights.
//! - **Group settings, members and priority.** A group's settings (remote
//!   view, thumbnails, web and internet restrictions) apply to its members'
//!   devices, so changing its settings, members or priority, or deleting it,
//!   needs control of that group (control of Entire Network covers every
//!   group; Entire Network itself needs control of Entire Network). A new group
//!   is one no rule gives access to yet, so creating one with members or
//!   settings needs control of Entire Network.
//! - **Group members.** Changing who is in a group that some rule gives access
//!   to extends that access to the new members' devices, so it needs at least
//!   that access to Entire Network (every device).
//! - **Accounts.** Only administrators create administrators, and an account
//!   you create may hold, through rules for its name and its directory groups,
//!   nothing beyond your own rights.
//!
//! "Your own rights" are your *account's* rights: the rules for your user name
//! and your directory groups ([`account_rights`]). Rules for a computer's
//! address add to what you may do from that computer, never to what you may
//! grant, so a right you hold only at one desk cannot be copied onto your
//! account (or anyone's) and carried elsewhere. Because rules only ever add
//! (there are no deny rules), every grant within your account's rights leaves
//! everyone, you included, with no more than they had plus what you already
//! held, at every address: no sequence of changes raises your own rights.
//!
//! Every check returns a typed [`Refusal`]; [`Refusal::code`] is a stable
//! name the API returns next to its message.

use std::collections::BTreeSet;

use crate::access::{rights_for, Access, AccessRule, Caller, Principal, Rights};

/// The first thing a grant holds that the granter does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Excess {
    /// A feature.
    Feature(String),
    /// More access to a group than the granter has to it (or to Entire Network).
    Group {
        /// The group's id.
        group: i64,
        /// What the grant gives.
        wanted: Access,
        /// What the granter holds.
        held: Access,
    },
    /// Opening live views without asking the student.
    BypassPrivacy,
}

impl std::fmt::Display for Excess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Excess::Feature(k) => write!(f, "the {k:?} right, which you do not hold"),
            Excess::Group {
                group,
                wanted,
                held,
            } => write!(
                f,
                "{} access to group {group}, where you have {}",
                access_word(*wanted),
                access_word(*held)
            ),
            Excess::BypassPrivacy => {
                write!(f, "privacy bypass, which you do not hold")
            }
        }
    }
}

fn access_word(a: Access) -> &'static str {
    match a {
        Access::None => "no",
        Access::View => "view",
        Access::Control => "control",
    }
}

/// Why a change by a non-administrator is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Only administrators create administrators.
    #[error("only administrators can create administrators")]
    AdminOnly,
    /// Nobody but an administrator changes their own directory groups.
    #[error("only an administrator can change your own directory groups")]
    OwnMemberships,
    /// The rule as written grants more than the actor holds.
    #[error("this rule would grant {0}")]
    RuleGrants(Excess),
    /// The rule being changed or deleted already grants more than the actor holds.
    #[error("access rule {id} grants {excess}; only an administrator can change or delete it")]
    ExistingRule {
        /// The rule's id.
        id: i64,
        /// What it grants beyond the actor.
        excess: Excess,
    },
    /// A directory group being added or removed carries rights beyond the actor.
    #[error("the access rules for directory group {group:?} grant {excess}; only an administrator can add or remove its members")]
    DirectoryGroup {
        /// The directory group's name.
        group: String,
        /// What its rules grant beyond the actor.
        excess: Excess,
    },
    /// The account would hold more than its creator.
    #[error("an account named {username:?} would hold {excess}")]
    Account {
        /// The account's name.
        username: String,
        /// What it would hold beyond the actor.
        excess: Excess,
    },
    /// Changing a group's members would extend its access beyond the actor's.
    #[error("access rules give {} access to group {group}, so changing its members needs {} access to Entire Network (you have {})", access_word(*wanted), access_word(*wanted), access_word(*held))]
    GroupMembers {
        /// The group's id.
        group: i64,
        /// The highest access any rule gives to the group.
        wanted: Access,
        /// The actor's access to Entire Network.
        held: Access,
    },
    /// Changing a group's settings, members or priority needs control of it.
    #[error("changing group {group}'s settings, members or priority needs control of it (you have {} access)", access_word(*held))]
    GroupControl {
        /// The group's id.
        group: i64,
        /// The actor's access to it.
        held: Access,
    },
    /// A new group with members or settings needs control of Entire Network.
    #[error("creating a group with members or settings needs control of Entire Network (you have {} access)", access_word(*held))]
    NewGroup {
        /// The actor's access to Entire Network.
        held: Access,
    },
}

impl Refusal {
    /// A stable name for the reason, for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::AdminOnly => "admin_only",
            Refusal::OwnMemberships => "own_memberships",
            Refusal::RuleGrants(_) => "rule_exceeds_your_rights",
            Refusal::ExistingRule { .. } => "rule_beyond_your_rights",
            Refusal::DirectoryGroup { .. } => "directory_group_beyond_your_rights",
            Refusal::Account { .. } => "account_beyond_your_rights",
            Refusal::GroupMembers { .. } => "group_access_beyond_your_rights",
            Refusal::GroupControl { .. } | Refusal::NewGroup { .. } => "group_control_needed",
        }
    }
}

/// Does `held` cover `wanted`? Every feature of `wanted` must be in `held`,
/// its access to each group at most `held`'s access to that group or to
/// Entire Network (`entire_network`, which holds every device), and privacy
/// bypass only if `held` has it. An administrator's rights cover everything.
/// Returns the first thing not covered.
pub fn covers(held: &Rights, wanted: &Rights, entire_network: Option<i64>) -> Result<(), Excess> {
    if held.all {
        return Ok(());
    }
    if wanted.all {
        // Only administrators hold `all`; name something they have and we lack.
        return Err(Excess::BypassPrivacy);
    }
    if let Some(f) = wanted.features.iter().find(|f| !held.features.contains(*f)) {
        return Err(Excess::Feature(f.clone()));
    }
    for (&group, &want) in &wanted.group_access {
        let have = group_access(held, group, entire_network);
        if want > have {
            return Err(Excess::Group {
                group,
                wanted: want,
                held: have,
            });
        }
    }
    if wanted.bypass_privacy && !held.bypass_privacy {
        return Err(Excess::BypassPrivacy);
    }
    Ok(())
}

/// `rights`' access to a group: its own, or Entire Network's if higher.
pub fn group_access(rights: &Rights, group: i64, entire_network: Option<i64>) -> Access {
    if rights.all {
        return Access::Control;
    }
    let own = rights.group_access.get(&group).copied().unwrap_or_default();
    let everywhere = entire_network
        .and_then(|en| rights.group_access.get(&en).copied())
        .unwrap_or_default();
    own.max(everywhere)
}

/// What one rule grants, as rights.
pub fn rule_grant(rule: &AccessRule) -> Rights {
    Rights {
        all: false,
        features: rule.features.clone(),
        group_access: rule
            .group_access
            .iter()
            .filter(|(_, a)| **a > Access::None)
            .map(|(g, a)| (*g, *a))
            .collect(),
        bypass_privacy: rule.bypass_privacy,
    }
}

/// What the rules for a directory group grant its members.
pub fn directory_group_grant(rules: &[AccessRule], group: &str) -> Rights {
    let member = [group.to_string()];
    let caller = Caller {
        // No user name and no address: only directory-group rules can match.
        username: "",
        address: None,
        directory_groups: &member,
        admin: false,
    };
    let only_directory: Vec<AccessRule> = rules
        .iter()
        .filter(|r| matches!(r.principal, Principal::DirectoryGroup(_)))
        .cloned()
        .collect();
    rights_for(&only_directory, &caller)
}

/// An account's own rights, wherever it logs in from: the rules for its name
/// and its directory groups (rules for computers left out).
pub fn account_rights(
    rules: &[AccessRule],
    username: &str,
    directory_groups: &[String],
    admin: bool,
) -> Rights {
    rights_for(
        rules,
        &Caller {
            username,
            address: None,
            directory_groups,
            admin,
        },
    )
}

/// A console user about to change something that grants rights.
#[derive(Debug, Clone, Copy)]
pub struct Granter<'a> {
    /// Their user name.
    pub username: &'a str,
    /// Their account's rights ([`account_rights`]).
    pub held: &'a Rights,
    /// The id of the Entire Network group, access to which covers every group.
    pub entire_network: Option<i64>,
}

impl Granter<'_> {
    fn covers(&self, wanted: &Rights) -> Result<(), Excess> {
        covers(self.held, wanted, self.entire_network)
    }

    /// May they save `new`, replacing `old` (`None` when creating)?
    pub fn may_write_rule(
        &self,
        old: Option<&AccessRule>,
        new: &AccessRule,
    ) -> Result<(), Refusal> {
        if let Some(old) = old {
            self.may_delete_rule(old)?;
        }
        self.covers(&rule_grant(new)).map_err(Refusal::RuleGrants)
    }

    /// May they delete `rule`?
    pub fn may_delete_rule(&self, rule: &AccessRule) -> Result<(), Refusal> {
        self.covers(&rule_grant(rule))
            .map_err(|excess| Refusal::ExistingRule {
                id: rule.id,
                excess,
            })
    }

    /// May they change `username`'s directory groups from `before` to `after`?
    /// Names compare without regard to ASCII case, as rules match them.
    pub fn may_set_memberships(
        &self,
        rules: &[AccessRule],
        username: &str,
        before: &[String],
        after: &[String],
    ) -> Result<(), Refusal> {
        if self.held.all {
            return Ok(());
        }
        if username.eq_ignore_ascii_case(self.username) {
            return Err(Refusal::OwnMemberships);
        }
        let lower = |v: &[String]| -> BTreeSet<String> {
            v.iter().map(|g| g.to_ascii_lowercase()).collect()
        };
        let (b, a) = (lower(before), lower(after));
        for group in b.symmetric_difference(&a) {
            self.covers(&directory_group_grant(rules, group))
                .map_err(|excess| Refusal::DirectoryGroup {
                    group: group.clone(),
                    excess,
                })?;
        }
        Ok(())
    }

    /// May they create an account `username` (with the directory groups already
    /// recorded for that name), as an administrator if `admin`? This is also
    /// the check for setting or resetting an existing account's password
    /// (there is no such route yet): whoever knows the password holds the
    /// account.
    pub fn may_create_account(
        &self,
        rules: &[AccessRule],
        username: &str,
        directory_groups: &[String],
        admin: bool,
    ) -> Result<(), Refusal> {
        if self.held.all {
            return Ok(());
        }
        if admin {
            return Err(Refusal::AdminOnly);
        }
        self.covers(&account_rights(rules, username, directory_groups, false))
            .map_err(|excess| Refusal::Account {
                username: username.to_string(),
                excess,
            })
    }

    /// May they change group `group`'s settings, members or priority, or
    /// delete it? Needs control of it (or of Entire Network). For a group
    /// being created, pass `None`: only control of Entire Network will do.
    pub fn may_control_group(&self, group: Option<i64>) -> Result<(), Refusal> {
        let held = match (group, self.entire_network) {
            _ if self.held.all => Access::Control,
            (Some(g), en) => group_access(self.held, g, en),
            (None, Some(en)) => group_access(self.held, en, None),
            (None, None) => Access::None,
        };
        match group {
            _ if held == Access::Control => Ok(()),
            Some(group) => Err(Refusal::GroupControl { group, held }),
            None => Err(Refusal::NewGroup { held }),
        }
    }

    /// May they change the members of group `group`? (Besides
    /// [`Self::may_control_group`]: the access others have to it.)
    pub fn may_change_members(&self, rules: &[AccessRule], group: i64) -> Result<(), Refusal> {
        let wanted = rules
            .iter()
            .filter_map(|r| r.group_access.get(&group).copied())
            .max()
            .unwrap_or_default();
        let held = match self.entire_network {
            Some(en) => group_access(self.held, en, None),
            None if self.held.all => Access::Control,
            None => Access::None,
        };
        if wanted > held {
            return Err(Refusal::GroupMembers {
                group,
                wanted,
                held,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
