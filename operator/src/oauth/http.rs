//! Bounded exchanges with an authorization server: every answer is read up to
//! [`MAX_BODY_BYTES`] within [`TIMEOUT`], redirects are failures, and no message quotes what the
//! server sent beyond a clipped OAuth error code.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use crate::text::clip;

/// Longest metadata document or token response read.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time one request may take, connection and body included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Longest OAuth error code quoted in a message.
const ERROR_CODE_BYTES: usize = 64;

/// A JSON document, or why there is none.
pub enum Fetched<T> {
    Ok(T),
    Failed(String),
}

/// GETs `url` and parses its JSON body.
pub async fn get_json<T: DeserializeOwned>(client: &reqwest::Client, url: &Url) -> Fetched<T> {
    match send(client.get(url.clone()).header("accept", "application/json")).await {
        Ok((status, body)) if status.is_success() => match serde_json::from_slice(&body) {
            Ok(value) => Fetched::Ok(value),
            Err(_) => Fetched::Failed("the answer is not the JSON document expected".into()),
        },
        Ok((status, _)) => Fetched::Failed(format!("HTTP {}", status.as_u16())),
        Err(why) => Fetched::Failed(why),
    }
}

/// Sends `request` and reads the whole answer, bounded in size and time.
pub async fn send(request: RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    tokio::time::timeout(TIMEOUT, async {
        let response = request.send().await.map_err(describe)?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "HTTP {} redirect, which is not followed",
                status.as_u16()
            ));
        }
        Ok((status, read(response).await?))
    })
    .await
    .map_err(|_| format!("no answer within {} s", TIMEOUT.as_secs()))?
}

async fn read(response: Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(describe)?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("the answer is larger than {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error in our words: the kind of failure, not the library's whole chain.
fn describe(e: reqwest::Error) -> String {
    if e.is_connect() {
        "the connection failed".into()
    } else if e.is_timeout() {
        "the request timed out".into()
    } else {
        clip(&format!("the request failed: {e}"), 200)
    }
}

/// The `error` code of an OAuth error answer (RFC 6749 §5.2), when it is one, clipped and
/// limited to the characters the RFC allows.
pub fn oauth_error(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = value.get("error")?.as_str()?;
    code.bytes()
        .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        .then(|| clip(code, ERROR_CODE_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_error_code_is_quoted() {
        assert_eq!(
            oauth_error(br#"{"error":"invalid_client","error_description":"x"}"#).as_deref(),
            Some("invalid_client")
        );
        assert_eq!(oauth_error(b"<html>"), None);
        assert_eq!(oauth_error(br#"{"error":"bad\u0007code"}"#), None);
        let long = format!(r#"{{"error":"{}"}}"#, "e".repeat(1000));
        assert!(oauth_error(long.as_bytes()).unwrap().len() <= ERROR_CODE_BYTES + 3);
    }
}
