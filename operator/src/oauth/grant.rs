//! The client-credentials grant (RFC 6749 §4.4): one token request, its answer checked and
//! bounded.

use std::time::Duration;

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;

use super::discovery::Endpoint;
use super::http;

/// Longest access token accepted: it becomes a header of every handshake.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Lifetime assumed when the answer states none (RFC 6749 makes `expires_in` optional).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// What to ask for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    /// The RFC 8707 resource indicator, when sent.
    pub resource: Option<String>,
}

/// A token and how long it lasts from when it was asked for.
#[derive(Debug, Clone)]
pub struct Token {
    pub access_token: String,
    pub lifetime: Duration,
}

#[derive(Deserialize)]
struct Answer {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<f64>,
}

/// Asks `endpoint` for a token.
pub async fn request(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    ask: &Request,
) -> Result<Token, String> {
    let mut builder = client
        .post(endpoint.token_url.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(ask, endpoint.secret_in_body));
    if !endpoint.secret_in_body {
        builder = builder.header(AUTHORIZATION, basic(&ask.client_id, &ask.client_secret));
    }
    let (status, body) = http::send(builder).await?;
    if !status.is_success() {
        return Err(match http::oauth_error(&body) {
            Some(code) => format!("HTTP {} {code}", status.as_u16()),
            None => format!("HTTP {}", status.as_u16()),
        });
    }
    parse(&body)
}

/// The form body of the request, with the client's credentials when they go there.
fn form(ask: &Request, secret_in_body: bool) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if !ask.scopes.is_empty() {
        form.append_pair("scope", &ask.scopes.join(" "));
    }
    if let Some(audience) = &ask.audience {
        form.append_pair("audience", audience);
    }
    if let Some(resource) = &ask.resource {
        form.append_pair("resource", resource);
    }
    if secret_in_body {
        form.append_pair("client_id", &ask.client_id);
        form.append_pair("client_secret", &ask.client_secret);
    }
    form.finish()
}

/// HTTP Basic with the id and secret form-encoded first, as RFC 6749 §2.3.1 asks.
fn basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(id), encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn parse(body: &[u8]) -> Result<Token, String> {
    let answer: Answer = serde_json::from_slice(body)
        .map_err(|_| "the token answer is not the JSON expected (no access_token)".to_owned())?;
    if let Some(kind) = &answer.token_type
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err("the token answer's token_type is not Bearer".into());
    }
    let token = answer.access_token;
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the access token is empty or longer than {MAX_TOKEN_BYTES} bytes"
        ));
    }
    // It goes into a header: visible ASCII only (RFC 6750's b64token is narrower still).
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the access token holds characters no header may carry".into());
    }
    let lifetime = answer
        .expires_in
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
        .unwrap_or(DEFAULT_LIFETIME);
    Ok(Token {
        access_token: token,
        lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_encoded_then_base64() {
        // "a b:c" and "s&t" encode to "a+b%3Ac:s%26t".
        assert_eq!(basic("a b:c", "s&t"), "Basic YStiJTNBYzpzJTI2dA==");
    }

    #[test]
    fn the_form_asks_for_scopes_audience_and_resource() {
        let ask = Request {
            client_id: "probe".into(),
            client_secret: "s&t".into(),
            scopes: vec!["mcp".into(), "tools:admin".into()],
            audience: Some("weather".into()),
            resource: Some("https://mcp.example.com/mcp".into()),
        };
        assert_eq!(
            form(&ask, false),
            "grant_type=client_credentials&scope=mcp+tools%3Aadmin&audience=weather\
             &resource=https%3A%2F%2Fmcp.example.com%2Fmcp"
        );
        assert!(form(&ask, true).ends_with("&client_id=probe&client_secret=s%26t"));
    }

    #[test]
    fn a_token_answer_is_checked_before_it_is_kept() {
        let ok = parse(br#"{"access_token":"eyJ.x.y","token_type":"bearer","expires_in":3600}"#)
            .unwrap();
        assert_eq!(ok.access_token, "eyJ.x.y");
        assert_eq!(ok.lifetime, Duration::from_secs(3600));
        let no_expiry = parse(br#"{"access_token":"t"}"#).unwrap();
        assert_eq!(no_expiry.lifetime, DEFAULT_LIFETIME);
        let huge_expiry = parse(br#"{"access_token":"t","expires_in":1e300}"#).unwrap();
        assert_eq!(huge_expiry.lifetime, Duration::from_secs(86_400));
        for bad in [
            &br#"{"token_type":"bearer"}"#[..],
            br#"{"access_token":"","expires_in":60}"#,
            br#"{"access_token":"a\nb"}"#,
            br#"{"access_token":"t","token_type":"mac"}"#,
            b"not json",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let long = format!(
            r#"{{"access_token":"{}"}}"#,
            "a".repeat(MAX_TOKEN_BYTES + 1)
        );
        assert!(parse(long.as_bytes()).is_err());
    }
}
