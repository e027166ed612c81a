//! MCP protocol revisions: the ones this project speaks, how `initialize` negotiates one, and what
//! each requires on the wire. Revisions are ordered by date, oldest first.

use std::fmt;
use std::str::FromStr;

/// A protocol revision this project knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Revision {
    /// HTTP+SSE transport (`GET /sse` + `POST /messages`).
    V2024_11_05,
    /// Streamable HTTP; JSON-RPC batches allowed.
    V2025_03_26,
    /// Batches removed; `MCP-Protocol-Version` header required after initialization.
    V2025_06_18,
    /// Streams primed with an event id so clients can resume them.
    V2025_11_25,
    /// Stateless: no handshake, no sessions; every request carries its version in `_meta`.
    V2026_07_28,
}

/// How a client starts talking to a server of a revision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// `initialize`, then `notifications/initialized`, within a session.
    Initialize,
    /// No handshake: `server/discover` says who the server is, every request stands alone.
    Discover,
}

/// Every revision, oldest first.
pub const ALL: [Revision; 5] = [
    Revision::V2024_11_05,
    Revision::V2025_03_26,
    Revision::V2025_06_18,
    Revision::V2025_11_25,
    Revision::V2026_07_28,
];

/// Revisions reachable through the `initialize` handshake, oldest first.
pub const HANDSHAKE_REVISIONS: [Revision; 4] = [
    Revision::V2024_11_05,
    Revision::V2025_03_26,
    Revision::V2025_06_18,
    Revision::V2025_11_25,
];

/// Revisions served statelessly (per-request `_meta`, `server/discover`).
pub const STATELESS_REVISIONS: [Revision; 1] = [Revision::V2026_07_28];

/// The newest revision `initialize` can agree on: what a server offers when a client asks for
/// one it does not speak, and what a client asks for when it falls back to the handshake.
pub const LATEST_HANDSHAKE: Revision = Revision::V2025_11_25;

/// The newest revision, the stateless one.
pub const LATEST: Revision = Revision::V2026_07_28;

/// A revision name this project does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown MCP protocol revision {0:?}; known: {known}", known = all_names().join(", "))]
pub struct UnknownRevision(pub String);

impl Revision {
    /// The revision named `text` (`2025-06-18`), if this project knows it.
    pub fn parse(text: &str) -> Option<Self> {
        ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// The wire name, a date.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    pub fn handshake(self) -> Handshake {
        if self.is_stateless() {
            Handshake::Discover
        } else {
            Handshake::Initialize
        }
    }

    pub fn is_stateless(self) -> bool {
        STATELESS_REVISIONS.contains(&self)
    }

    /// JSON-RPC batches were part of MCP only until 2025-06-18 removed them.
    pub fn allows_batches(self) -> bool {
        self <= Self::V2025_03_26
    }

    /// Whether requests name the revision in the `MCP-Protocol-Version` header: after
    /// `initialize` from 2025-06-18 on (earlier servers did not know the header), and on every
    /// request of the stateless revision.
    pub fn requires_version_header(self) -> bool {
        self >= Self::V2025_06_18
    }

    /// Whether a session's SSE streams open with a priming event (an id and empty data) that a
    /// client can resume from: from 2025-11-25 on; older clients fail on empty data, and the
    /// stateless revision has no resumption.
    pub fn primes_streams(self) -> bool {
        self >= Self::V2025_11_25 && self.handshake() == Handshake::Initialize
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Revision {
    type Err = UnknownRevision;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text).ok_or_else(|| UnknownRevision(text.to_owned()))
    }
}

impl serde::Serialize for Revision {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Revision {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The revision a server answers an `initialize` with: the client's when the server speaks it
/// through the handshake, otherwise the latest one (the client then decides whether it can
/// continue).
pub fn negotiate(requested: &str) -> Revision {
    Revision::parse(requested)
        .filter(|r| r.handshake() == Handshake::Initialize)
        .unwrap_or(LATEST_HANDSHAKE)
}

/// Every revision name, oldest first, for error messages.
pub fn all_names() -> Vec<&'static str> {
    ALL.iter().map(|r| r.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_order_by_their_dates() {
        let mut by_name = ALL;
        by_name.sort_by_key(|r| r.as_str());
        assert_eq!(by_name, ALL);
        assert!(ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ALL.iter().max(), Some(&LATEST));
        assert_eq!(HANDSHAKE_REVISIONS.iter().max(), Some(&LATEST_HANDSHAKE));
    }

    #[test]
    fn names_round_trip_through_parse_display_and_serde() {
        for revision in ALL {
            let name = revision.to_string();
            assert_eq!(name.parse::<Revision>(), Ok(revision));
            let json = serde_json::to_value(revision).unwrap();
            assert_eq!(json, serde_json::Value::String(name));
            assert_eq!(serde_json::from_value::<Revision>(json).unwrap(), revision);
        }
        assert_eq!(Revision::parse("2025-6-18"), None);
        let e = "1999-01-01".parse::<Revision>().unwrap_err();
        assert!(e.to_string().contains("2024-11-05, 2025-03-26"), "{e}");
        assert!(serde_json::from_str::<Revision>(r#""1999-01-01""#).is_err());
    }

    #[test]
    fn the_handshake_and_statelessness_split_the_list() {
        for revision in ALL {
            let initialize = HANDSHAKE_REVISIONS.contains(&revision);
            assert_eq!(initialize, !STATELESS_REVISIONS.contains(&revision));
            assert_eq!(initialize, revision.handshake() == Handshake::Initialize);
            assert_eq!(!initialize, revision.is_stateless());
        }
        assert_eq!(Revision::V2026_07_28.handshake(), Handshake::Discover);
    }

    #[test]
    fn supported_revision_is_echoed_and_unknown_gets_latest() {
        assert_eq!(negotiate("2025-03-26"), Revision::V2025_03_26);
        assert_eq!(negotiate("2024-11-05"), Revision::V2024_11_05);
        assert_eq!(negotiate("1999-01-01"), LATEST_HANDSHAKE);
        // The stateless revision has no handshake, so initialize never lands there.
        assert_eq!(negotiate("2026-07-28"), LATEST_HANDSHAKE);
    }

    #[test]
    fn batches_end_and_the_version_header_starts_with_2025_06_18() {
        assert!(Revision::V2025_03_26.allows_batches());
        assert!(!Revision::V2025_06_18.allows_batches());
        assert!(!Revision::V2025_03_26.requires_version_header());
        assert!(Revision::V2025_06_18.requires_version_header());
        assert!(Revision::V2026_07_28.requires_version_header());
    }

    #[test]
    fn only_session_revisions_from_2025_11_25_prime_their_streams() {
        let primed: Vec<Revision> = ALL.into_iter().filter(|r| r.primes_streams()).collect();
        assert_eq!(primed, [Revision::V2025_11_25]);
    }
}
