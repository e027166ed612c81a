//! Signed session ids (format `m1`): the id a client receives names the replica that owns the
//! session, so any replica can route a request for it, and carries an HMAC-SHA256 tag so that
//! no client can make a replica connect to an address of its choosing. Pure: no I/O, keys given.
//!
//! ```text
//! m1.<owner>.<local>.<tag>
//! owner  base64url (no padding) of the owner's address: IPv4 (4 bytes) or IPv6 (16 bytes),
//!        then the port (2 bytes, big-endian): 8 or 24 characters
//! local  the session's 128 random bits as 32 lowercase hex digits
//! tag    base64url (no padding) of HMAC-SHA256(key, "m1.<owner>.<local>"): 43 characters
//! ```
//!
//! Every character is visible ASCII and URL-safe (the id also travels in a query string), and an
//! id is at most [`MAX_LEN`] bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// The format's version prefix; a later format gets another one.
const PREFIX: &str = "m1.";
/// Hex digits of the local part.
const LOCAL_LEN: usize = 32;
/// Bytes of an HMAC-SHA256 tag.
const TAG_BYTES: usize = 32;
/// The longest id this format produces (an IPv6 owner): anything longer is not one of ours.
pub const MAX_LEN: usize = PREFIX.len() + 24 + 1 + LOCAL_LEN + 1 + 43;
/// Shortest key accepted: HMAC-SHA256's own output size.
pub const MIN_KEY_BYTES: usize = 32;

/// A signing or verifying key, keyed once.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl Key {
    /// `None` when shorter than [`MIN_KEY_BYTES`].
    pub fn new(secret: &[u8]) -> Option<Self> {
        if secret.len() < MIN_KEY_BYTES {
            return None;
        }
        Hmac::<Sha256>::new_from_slice(secret).ok().map(Self)
    }

    fn tag(&self, signed: &str) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Constant-time comparison of `tag` with this key's tag over `signed`.
    fn verifies(&self, signed: &str, tag: &[u8]) -> bool {
        let mut mac = self.0.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(tag).is_ok()
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// The public id of the session `local` owned by `owner`, signed with `key`.
pub fn sign(key: &Key, owner: SocketAddr, local: &str) -> String {
    let signed = format!(
        "{PREFIX}{}.{local}",
        URL_SAFE_NO_PAD.encode(owner_bytes(owner))
    );
    let tag = URL_SAFE_NO_PAD.encode(key.tag(&signed));
    format!("{signed}.{tag}")
}

/// The owner named by `id` when it is well-formed and one of `keys` signed it; `None` for
/// anything else (garbage, wrong length, non-ASCII, tampered, signed with an unknown key).
pub fn verify<'k>(keys: impl IntoIterator<Item = &'k Key>, id: &[u8]) -> Option<SocketAddr> {
    if id.len() > MAX_LEN {
        return None;
    }
    let id = std::str::from_utf8(id).ok()?;
    let (signed, tag) = id.rsplit_once('.')?;
    let (owner, local) = signed.strip_prefix(PREFIX)?.split_once('.')?;
    if local.len() != LOCAL_LEN
        || !local
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let owner = parse_owner(&URL_SAFE_NO_PAD.decode(owner).ok()?)?;
    let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
    if tag.len() != TAG_BYTES {
        return None;
    }
    // Every key is tried, so the time taken does not tell which one matched.
    let matched = keys
        .into_iter()
        .fold(false, |found, key| key.verifies(signed, &tag) | found);
    matched.then_some(owner)
}

fn owner_bytes(owner: SocketAddr) -> Vec<u8> {
    let mut bytes = match owner.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    bytes.extend_from_slice(&owner.port().to_be_bytes());
    bytes
}

fn parse_owner(bytes: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = bytes.split_at_checked(bytes.len().checked_sub(2)?)?;
    let port = u16::from_be_bytes(port.try_into().ok()?);
    let ip = match ip.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip).ok()?)),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?)),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: &str = "0123456789abcdef0123456789abcdef";

    fn key(byte: u8) -> Key {
        Key::new(&[byte; 32]).unwrap()
    }

    fn owner() -> SocketAddr {
        "10.1.2.3:8080".parse().unwrap()
    }

    #[test]
    fn an_id_round_trips_to_its_owner() {
        for owner in ["10.1.2.3:8080", "[fd00::1:2]:65535", "127.0.0.1:1"] {
            let owner: SocketAddr = owner.parse().unwrap();
            let id = sign(&key(1), owner, LOCAL);
            assert_eq!(verify([&key(1)], id.as_bytes()), Some(owner), "{id}");
        }
    }

    #[test]
    fn ids_are_visible_url_safe_ascii_within_the_bound() {
        let v6: SocketAddr = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
            .parse()
            .unwrap();
        let longest = sign(&key(1), v6, LOCAL);
        assert_eq!(longest.len(), MAX_LEN);
        let id = sign(&key(1), owner(), LOCAL);
        assert!(id.len() < MAX_LEN && id.starts_with("m1."));
        for id in [id, longest] {
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{id}"
            );
        }
    }

    #[test]
    fn any_changed_character_is_refused() {
        let id = sign(&key(1), owner(), LOCAL);
        for i in 0..id.len() {
            let mut bytes = id.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            assert_eq!(verify([&key(1)], &bytes), None, "changed at {i}: {bytes:?}");
        }
    }

    #[test]
    fn an_id_signed_with_another_key_is_refused() {
        let id = sign(&key(2), owner(), LOCAL);
        assert_eq!(verify([&key(1)], id.as_bytes()), None);
        // Either key of a ring verifies: the old one stays valid during a rotation.
        assert_eq!(verify([&key(1), &key(2)], id.as_bytes()), Some(owner()));
        assert_eq!(verify([], id.as_bytes()), None);
    }

    #[test]
    fn malformed_ids_are_refused() {
        let id = sign(&key(1), owner(), LOCAL);
        let oversized = format!("{id}{}", "A".repeat(MAX_LEN));
        let swapped_owner = id.replacen(
            &URL_SAFE_NO_PAD.encode(owner_bytes(owner())),
            &URL_SAFE_NO_PAD.encode(owner_bytes("10.1.2.4:8080".parse().unwrap())),
            1,
        );
        for bad in [
            "".as_bytes(),
            b"0123456789abcdef0123456789abcdef",
            b"m1...",
            "m1.é.ü.ö".as_bytes(),
            id.trim_end_matches(|c| c != '.').as_bytes(),
            id.replacen("m1.", "m2.", 1).as_bytes(),
            oversized.as_bytes(),
            swapped_owner.as_bytes(),
        ] {
            assert_eq!(verify([&key(1)], bad), None, "{bad:?}");
        }
        let uppercase = sign(&key(1), owner(), &LOCAL.to_uppercase());
        assert_eq!(verify([&key(1)], uppercase.as_bytes()), None);
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Key::new(&[7; 31]).is_none());
        assert!(Key::new(&[7; 32]).is_some());
    }
}
