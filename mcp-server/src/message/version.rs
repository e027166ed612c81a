//! MCP protocol revisions: which ones this server speaks, how `initialize` negotiates one, and what
//! each revision allows on the wire.

use std::fmt;

/// A protocol revision this server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Revision {
    /// HTTP+SSE transport (`GET /sse` + `POST /messages`).
    V2024_11_05,
    /// Streamable HTTP; JSON-RPC batches allowed.
    V2025_03_26,
    /// Batches removed; `MCP-Protocol-Version` header required after initialization.
    V2025_06_18,
    V2025_11_25,
    /// Stateless: no handshake, no sessions; every request carries its version in `_meta`.
    V2026_07_28,
}

/// Revisions reachable through the `initialize` handshake, oldest first.
pub const HANDSHAKE_REVISIONS: [Revision; 4] = [
    Revision::V2024_11_05,
    Revision::V2025_03_26,
    Revision::V2025_06_18,
    Revision::V2025_11_25,
];

/// The revision offered when a client asks for one this server does not speak.
pub const LATEST_HANDSHAKE: Revision = Revision::V2025_11_25;

/// Revisions served statelessly (per-request `_meta`, `server/discover`).
pub const STATELESS_REVISIONS: [Revision; 1] = [Revision::V2026_07_28];

impl Revision {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "2024-11-05" => Self::V2024_11_05,
            "2025-03-26" => Self::V2025_03_26,
            "2025-06-18" => Self::V2025_06_18,
            "2025-11-25" => Self::V2025_11_25,
            "2026-07-28" => Self::V2026_07_28,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// JSON-RPC batches were part of MCP only until 2025-06-18 removed them.
    pub fn allows_batches(self) -> bool {
        self <= Self::V2025_03_26
    }

    pub fn is_stateless(self) -> bool {
        STATELESS_REVISIONS.contains(&self)
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The revision to answer an `initialize` with: the client's when this server speaks it through
/// the handshake, otherwise the latest one (the client then decides whether it can continue).
pub fn negotiate(requested: &str) -> Revision {
    Revision::parse(requested)
        .filter(|r| HANDSHAKE_REVISIONS.contains(r))
        .unwrap_or(LATEST_HANDSHAKE)
}

/// Every revision name this server accepts, for error messages.
pub fn all_names() -> Vec<&'static str> {
    HANDSHAKE_REVISIONS
        .iter()
        .chain(STATELESS_REVISIONS.iter())
        .map(|r| r.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_revision_is_echoed_and_unknown_gets_latest() {
        assert_eq!(negotiate("2025-03-26"), Revision::V2025_03_26);
        assert_eq!(negotiate("2024-11-05"), Revision::V2024_11_05);
        assert_eq!(negotiate("1999-01-01"), LATEST_HANDSHAKE);
        // The stateless revision has no handshake, so initialize never lands there.
        assert_eq!(negotiate("2026-07-28"), LATEST_HANDSHAKE);
    }

    #[test]
    fn batches_end_with_2025_06_18() {
        assert!(Revision::V2025_03_26.allows_batches());
        assert!(!Revision::V2025_06_18.allows_batches());
        assert!(!Revision::V2025_11_25.allows_batches());
    }

    #[test]
    fn names_round_trip() {
        for name in all_names() {
            assert_eq!(Revision::parse(name).map(Revision::as_str), Some(name));
        }
    }
}
