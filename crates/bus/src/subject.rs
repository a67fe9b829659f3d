//! Subjects: every name a message travels under, built only from checked
//! parts, so that a node's name or an id can never add a token or a
//! wildcard to a subject (`a.>` as a node name would otherwise hear every
//! node's commands).

use std::fmt;

use crate::BusError;

/// A node's name in the cluster: 1–64 characters of `A–Z a–z 0–9 _ -`
/// (one NATS subject token, no wildcard).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

impl NodeId {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<NodeId, BusError> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(NodeId(name.to_string()))
        } else {
            Err(BusError::BadName(name.chars().take(80).collect()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a message is published: one of the subjects below.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    /// Commands for the devices `node` holds (one message per node, which
    /// fans out to its own connections).
    pub fn node_commands(node: &NodeId) -> Subject {
        Subject(format!("lectern.node.{node}.commands"))
    }

    /// Receipts for the commands `node` relayed: which devices each gateway
    /// found connected ([`crate::relay`]).
    pub fn node_receipts(node: &NodeId) -> Subject {
        Subject(format!("lectern.node.{node}.receipts"))
    }

    /// Who watches which of `node`'s devices' screens, and until when
    /// ([`crate::screens`]).
    pub fn node_watch(node: &NodeId) -> Subject {
        Subject(format!("lectern.node.{node}.watch"))
    }

    /// `school`'s settings, groups or keyword libraries changed: every node
    /// reads them again.
    pub fn school_policy(school: i64) -> Subject {
        Subject(format!("lectern.school.{school}.policy"))
    }

    /// The school a subject heard under [`Filter::all_school_policy`]
    /// names; `None` for any other subject.
    pub fn policy_school(subject: &str) -> Option<i64> {
        subject
            .strip_prefix("lectern.school.")?
            .strip_suffix(".policy")?
            .parse()
            .ok()
    }

    /// Screen pictures of one device, published by the node that holds it
    /// while someone watches.
    pub fn device_frames(school: i64, device: i64) -> Subject {
        Subject(format!("lectern.school.{school}.device.{device}.frames"))
    }

    /// `node`'s presence beats.
    pub fn presence(node: &NodeId) -> Subject {
        Subject(format!("lectern.presence.{node}"))
    }

    /// The subject as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a subscription hears: a subject, or a family of them with NATS
/// wildcards (`*` one token, `>` the rest), built only here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter(String);

impl Filter {
    /// Exactly `subject`.
    pub fn exactly(subject: &Subject) -> Filter {
        Filter(subject.0.clone())
    }

    /// Every school's policy changes.
    pub fn all_school_policy() -> Filter {
        Filter("lectern.school.*.policy".into())
    }

    /// Every node's presence beats.
    pub fn all_presence() -> Filter {
        Filter("lectern.presence.*".into())
    }

    /// The filter as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `subject` is heard (NATS's rules: tokens split on `.`, `*`
    /// matches one token, a last `>` one or more).
    pub fn matches(&self, subject: &str) -> bool {
        let mut want = self.0.split('.');
        let mut got = subject.split('.');
        loop {
            match (want.next(), got.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(w), Some(g)) if w == g => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_one_token_without_wildcards() {
        for bad in ["", "a.b", "a*", ">", "a b", "é", &"x".repeat(65)] {
            assert!(NodeId::new(bad).is_err(), "{bad:?}");
        }
        for good in ["gw-1", "API_2", &"x".repeat(64)] {
            assert!(NodeId::new(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn filters_match_as_nats_does() {
        let gw = NodeId::new("gw-1").unwrap();
        let f = Filter::exactly(&Subject::node_commands(&gw));
        assert!(f.matches("lectern.node.gw-1.commands"));
        assert!(!f.matches("lectern.node.gw-2.commands"));
        assert!(!f.matches("lectern.node.gw-1.commands.x"));
        assert!(!f.matches(Subject::node_receipts(&gw).as_str()));
        let all = Filter::all_school_policy();
        assert!(all.matches(Subject::school_policy(7).as_str()));
        assert!(!all.matches(Subject::device_frames(7, 1).as_str()));
        assert!(Filter("lectern.>".into()).matches("lectern.a.b"));
        assert!(!Filter("lectern.>".into()).matches("lectern"));
        assert!(Filter::all_presence().matches(Subject::presence(&gw).as_str()));
    }

    #[test]
    fn a_policy_subject_gives_its_school_back() {
        assert_eq!(
            Subject::policy_school(Subject::school_policy(42).as_str()),
            Some(42)
        );
        for other in [
            Subject::device_frames(42, 1).as_str(),
            "lectern.school.x.policy",
            "lectern.school..policy",
            "lectern.school.42.policy.x",
        ] {
            assert_eq!(Subject::policy_school(other), None, "{other}");
        }
    }
}
