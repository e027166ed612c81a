//! Host and Origin validation for the MCP endpoints, against DNS rebinding: a browser page on a
//! foreign origin must not be able to drive a local server. Applied as a middleware layer.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::reply::rpc_error;
use crate::message::RpcError;
use crate::message::jsonrpc::INVALID_REQUEST;

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowList {
    Any,
    Only(Vec<String>),
}

impl AllowList {
    /// From a flag's values: empty means `default`, `*` means any.
    pub fn from_flag(values: &[String], default: AllowList) -> Self {
        let values: Vec<String> = values
            .iter()
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            default
        } else if values.iter().any(|v| v == "*") {
            AllowList::Any
        } else {
            AllowList::Only(values)
        }
    }

    pub fn loopback() -> Self {
        AllowList::Only(LOOPBACK_NAMES.iter().map(|s| (*s).to_owned()).collect())
    }

    fn allows(&self, value: &str) -> bool {
        match self {
            AllowList::Any => true,
            AllowList::Only(list) => list.iter().any(|v| v.eq_ignore_ascii_case(value)),
        }
    }
}

/// Which origins and hosts may reach the MCP endpoints.
#[derive(Clone, Debug)]
pub struct OriginPolicy {
    /// Full origins (`https://app.example.com`) or, for the loopback default, host names.
    pub origins: AllowList,
    pub hosts: AllowList,
}

impl OriginPolicy {
    fn check(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        if self.hosts != AllowList::Any {
            // Exactly one readable Host naming an allowed host: a missing, unreadable or
            // repeated Host is refused like a wrong one.
            let mut hosts = headers.get_all(HOST).iter();
            let host = match (hosts.next(), hosts.next()) {
                (Some(host), None) => host.to_str().ok(),
                _ => None,
            };
            if !host.is_some_and(|h| self.hosts.allows(host_name(h))) {
                return Err("Host is not allowed");
            }
        }
        match headers.get(ORIGIN) {
            None => Ok(()),
            Some(origin) => {
                let origin = origin.to_str().map_err(|_| "Origin is not allowed")?;
                let allowed = self.origins.allows(origin.trim_end_matches('/'))
                    || origin_host(origin).is_some_and(|h| self.origins.allows(h));
                if allowed {
                    Ok(())
                } else {
                    Err("Origin is not allowed")
                }
            }
        }
    }
}

/// `example.com:8080` → `example.com`; `[::1]:8080` → `[::1]`.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// The host of an origin (`http://localhost:3000` → `localhost`).
fn origin_host(origin: &str) -> Option<&str> {
    let (_, rest) = origin.split_once("://")?;
    Some(host_name(rest.trim_end_matches('/')))
}

pub async fn check_origin_and_host(
    State(policy): State<Arc<OriginPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    match policy.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(reason) => rpc_error(
            StatusCode::FORBIDDEN,
            RpcError::new(INVALID_REQUEST, reason),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn loopback_origins_are_allowed_by_default_and_foreign_ones_are_not() {
        let p = OriginPolicy {
            origins: AllowList::loopback(),
            hosts: AllowList::Any,
        };
        assert!(p.check(&headers("svc:8080", None)).is_ok());
        assert!(
            p.check(&headers("svc:8080", Some("http://localhost:3000")))
                .is_ok()
        );
        assert!(
            p.check(&headers("svc:8080", Some("http://[::1]:3000")))
                .is_ok()
        );
        assert!(
            p.check(&headers("svc:8080", Some("https://evil.example")))
                .is_err()
        );
        assert!(p.check(&headers("svc:8080", Some("null"))).is_err());
    }

    #[test]
    fn configured_origins_are_matched_whole() {
        let p = OriginPolicy {
            origins: AllowList::from_flag(
                &["https://app.example.com".into()],
                AllowList::loopback(),
            ),
            hosts: AllowList::Any,
        };
        assert!(
            p.check(&headers("h", Some("https://app.example.com")))
                .is_ok()
        );
        assert!(
            p.check(&headers("h", Some("http://app.example.com")))
                .is_err()
        );
    }

    #[test]
    fn host_names_are_checked_without_their_port() {
        let p = OriginPolicy {
            origins: AllowList::Any,
            hosts: AllowList::loopback(),
        };
        assert!(p.check(&headers("127.0.0.1:8080", None)).is_ok());
        assert!(p.check(&headers("[::1]:8080", None)).is_ok());
        assert!(p.check(&headers("attacker.example:8080", None)).is_err());
    }

    #[test]
    fn a_missing_unreadable_or_repeated_host_is_refused_like_a_wrong_one() {
        let p = OriginPolicy {
            origins: AllowList::Any,
            hosts: AllowList::loopback(),
        };
        assert!(p.check(&HeaderMap::new()).is_err());
        let mut unreadable = HeaderMap::new();
        unreadable.insert(HOST, HeaderValue::from_bytes(b"local\xffhost").unwrap());
        assert!(p.check(&unreadable).is_err());
        let mut repeated = headers("localhost", None);
        repeated.append(HOST, HeaderValue::from_static("attacker.example"));
        assert!(p.check(&repeated).is_err());
        assert!(p.check(&headers("", None)).is_err());
        // With any host allowed there is nothing to check.
        let any = OriginPolicy {
            origins: AllowList::Any,
            hosts: AllowList::Any,
        };
        assert!(any.check(&HeaderMap::new()).is_ok());
    }
}
