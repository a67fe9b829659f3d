//! The UDP broadcast that lets an agent find its school's server on the local
//! network (the last discovery step, after the fixed-address file, DNS names and
//! DNS-SD).
//!
//! An agent broadcasts a [`DiscoveryMsg::Query`] to UDP port
//! [`DEFAULT_PORT`](crate::DEFAULT_PORT); each server answers by unicast with a
//! [`DiscoveryMsg::Answer`] that echoes the query's nonce and carries its HTTPS
//! port, school name and certificate fingerprint. Both are small JSON objects:
//!
//! ```json
//! {"type":"query","magic":"lectern-discovery","version":1,"nonce":"<32 hex>"}
//! {"type":"answer","magic":"lectern-discovery","version":1,"nonce":"<32 hex>",
//!  "port":30016,"school":"Hillside","fingerprint":"<64 hex>"}
//! ```
//!
//! Nothing here is authenticated: an answer only says where to look. The agent
//! still checks the certificate over TLS, and ignores answers whose fingerprint
//! differs from the one it pins.
//!
//! ```
//! use lectern_proto::discovery::{DiscoveryAnswer, DiscoveryMsg, DiscoveryQuery};
//! let q = DiscoveryQuery::new([7; 16]);
//! let bytes = DiscoveryMsg::Query(q.clone()).encode();
//! assert_eq!(DiscoveryMsg::decode(&bytes).unwrap(), DiscoveryMsg::Query(q.clone()));
//! let a = DiscoveryAnswer::new(&q, 30016, "Hillside", &"ab".repeat(32));
//! assert!(DiscoveryMsg::decode(&DiscoveryMsg::Answer(a).encode()).is_ok());
//! assert!(DiscoveryMsg::decode(b"{\"type\":\"query\"}").is_err());
//! ```

use serde::{Deserialize, Serialize};

/// The `magic` every discovery datagram carries, so that stray traffic on the
/// port is told apart from Lectern's at once.
pub const DISCOVERY_MAGIC: &str = "lectern-discovery";

/// Version of the discovery datagrams spoken by this build.
pub const DISCOVERY_VERSION: u32 = 1;

/// Largest discovery datagram either side sends or accepts, in bytes. Small, so
/// that an answer is never much bigger than a query (no amplification) and fits
/// one unfragmented packet on any link.
pub const MAX_DISCOVERY_DATAGRAM: usize = 512;

/// Longest school name an answer carries, in bytes; longer names are cut (on a
/// character boundary) by [`DiscoveryAnswer::new`].
pub const MAX_SCHOOL_LEN: usize = 200;

/// Length of a nonce in hex digits (16 random bytes).
pub const NONCE_HEX_LEN: usize = 32;

/// A discovery datagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DiscoveryMsg {
    /// "Who is the Lectern server?", broadcast by an agent.
    Query(DiscoveryQuery),
    /// A server's unicast answer to one query.
    Answer(DiscoveryAnswer),
}

/// An agent's broadcast question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryQuery {
    /// Always [`DISCOVERY_MAGIC`].
    pub magic: String,
    /// Always [`DISCOVERY_VERSION`].
    pub version: u32,
    /// Random, lowercase hex ([`NONCE_HEX_LEN`] digits); the answer echoes it so
    /// the agent can ignore answers to someone else's query.
    pub nonce: String,
}

/// A server's answer to a [`DiscoveryQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryAnswer {
    /// Always [`DISCOVERY_MAGIC`].
    pub magic: String,
    /// Always [`DISCOVERY_VERSION`].
    pub version: u32,
    /// The query's nonce.
    pub nonce: String,
    /// TCP port of the server's HTTPS listener; the host is the answer's source
    /// address.
    pub port: u16,
    /// The school's name, at most [`MAX_SCHOOL_LEN`] bytes.
    pub school: String,
    /// SHA-256 of the server's certificate, 64 lowercase hex digits.
    pub fingerprint: String,
}

/// Why a datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// Longer than [`MAX_DISCOVERY_DATAGRAM`].
    #[error("discovery datagram of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not JSON of the expected shape.
    #[error("malformed discovery datagram: {0}")]
    Malformed(String),
    /// Wrong `magic`: not Lectern's traffic.
    #[error("not a Lectern discovery datagram")]
    WrongMagic,
    /// A `version` this build does not speak.
    #[error("unsupported discovery version {0}")]
    UnsupportedVersion(u32),
    /// A field out of range: nonce, port, school or fingerprint.
    #[error("invalid discovery field {0}")]
    InvalidField(&'static str),
}

impl DiscoveryQuery {
    /// A query with the given random nonce.
    pub fn new(nonce: [u8; 16]) -> Self {
        DiscoveryQuery {
            magic: DISCOVERY_MAGIC.into(),
            version: DISCOVERY_VERSION,
            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

impl DiscoveryAnswer {
    /// The answer to `query`, cutting `school` to [`MAX_SCHOOL_LEN`] bytes.
    pub fn new(query: &DiscoveryQuery, port: u16, school: &str, fingerprint: &str) -> Self {
        let mut end = school.len().min(MAX_SCHOOL_LEN);
        while !school.is_char_boundary(end) {
            end -= 1;
        }
        DiscoveryAnswer {
            magic: DISCOVERY_MAGIC.into(),
            version: DISCOVERY_VERSION,
            nonce: query.nonce.clone(),
            port,
            school: school[..end].to_string(),
            fingerprint: fingerprint.to_string(),
        }
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl DiscoveryMsg {
    /// Parses and validates one datagram: size, JSON shape, magic, version, and
    /// every field's range. Never panics, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DiscoveryError> {
        if bytes.len() > MAX_DISCOVERY_DATAGRAM {
            return Err(DiscoveryError::TooLarge(bytes.len()));
        }
        let msg: DiscoveryMsg =
            serde_json::from_slice(bytes).map_err(|e| DiscoveryError::Malformed(e.to_string()))?;
        let (magic, version, nonce) = match &msg {
            DiscoveryMsg::Query(q) => (&q.magic, q.version, &q.nonce),
            DiscoveryMsg::Answer(a) => (&a.magic, a.version, &a.nonce),
        };
        if magic != DISCOVERY_MAGIC {
            return Err(DiscoveryError::WrongMagic);
        }
        if version != DISCOVERY_VERSION {
            return Err(DiscoveryError::UnsupportedVersion(version));
        }
        if !is_lower_hex(nonce, NONCE_HEX_LEN) {
            return Err(DiscoveryError::InvalidField("nonce"));
        }
        if let DiscoveryMsg::Answer(a) = &msg {
            if a.port == 0 {
                return Err(DiscoveryError::InvalidField("port"));
            }
            // The school name ends up in logs and on screen: no control characters.
            if a.school.len() > MAX_SCHOOL_LEN || a.school.chars().any(char::is_control) {
                return Err(DiscoveryError::InvalidField("school"));
            }
            if !is_lower_hex(&a.fingerprint, 64) {
                return Err(DiscoveryError::InvalidField("fingerprint"));
            }
        }
        Ok(msg)
    }

    /// The datagram's bytes (compact JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("discovery messages always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> DiscoveryQuery {
        DiscoveryQuery::new([0xab; 16])
    }

    #[test]
    fn round_trips_and_fits() {
        let q = query();
        assert_eq!(q.nonce, "ab".repeat(16));
        let a = DiscoveryAnswer::new(&q, 30016, &"é".repeat(300), &"0f".repeat(32));
        assert!(a.school.len() <= MAX_SCHOOL_LEN);
        let bytes = DiscoveryMsg::Answer(a.clone()).encode();
        assert!(bytes.len() <= MAX_DISCOVERY_DATAGRAM, "{}", bytes.len());
        assert_eq!(
            DiscoveryMsg::decode(&bytes).unwrap(),
            DiscoveryMsg::Answer(a)
        );
    }

    #[test]
    fn refuses_bad_datagrams() {
        let good = DiscoveryMsg::Query(query()).encode();
        assert!(DiscoveryMsg::decode(&good).is_ok());
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
            f(&mut v);
            DiscoveryMsg::decode(&serde_json::to_vec(&v).unwrap())
        };
        assert_eq!(
            edit(&|v| v["magic"] = "other".into()),
            Err(DiscoveryError::WrongMagic)
        );
        assert_eq!(
            edit(&|v| v["version"] = 2.into()),
            Err(DiscoveryError::UnsupportedVersion(2))
        );
        assert_eq!(
            edit(&|v| v["nonce"] = "AB".repeat(16).into()),
            Err(DiscoveryError::InvalidField("nonce"))
        );
        assert!(matches!(
            edit(&|v| v["type"] = "answer".into()),
            Err(DiscoveryError::Malformed(_))
        ));
        assert!(matches!(
            DiscoveryMsg::decode(&[0xff, 0, 1, 2]),
            Err(DiscoveryError::Malformed(_))
        ));
        assert!(matches!(
            DiscoveryMsg::decode(&[b' '; MAX_DISCOVERY_DATAGRAM + 1]),
            Err(DiscoveryError::TooLarge(_))
        ));
        let answer = |port: u16, school: &str, fp: &str| {
            let a = DiscoveryAnswer {
                port,
                school: school.into(),
                fingerprint: fp.into(),
                ..DiscoveryAnswer::new(&query(), 1, "", "")
            };
            DiscoveryMsg::decode(&DiscoveryMsg::Answer(a).encode())
        };
        let fp = "ab".repeat(32);
        assert!(answer(30016, "Hillside", &fp).is_ok());
        assert!(answer(0, "Hillside", &fp).is_err());
        assert!(answer(30016, "Hill\u{7}side", &fp).is_err());
        assert!(answer(30016, "Hillside", "abc").is_err());
    }
}
