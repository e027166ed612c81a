//! Optional bearer-token authentication for the MCP endpoints, as a middleware layer. Tokens come
//! from a file (one per line, `#` comments), typically a mounted Secret; the file is re-read when
//! it changes, so rotated tokens apply without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
#[error("cannot read the token file {path}: {source}")]
pub struct TokenFileError {
    path: PathBuf,
    source: std::io::Error,
}

/// How the MCP routes authenticate callers.
#[derive(Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// Static bearer tokens from a file.
    Tokens(Arc<Tokens>),
    /// OAuth 2.1 access tokens (JWTs) of an authorization server.
    OAuth(Arc<crate::oauth::gate::OAuth>),
}

pub struct Tokens {
    path: PathBuf,
    cache: Mutex<(Option<SystemTime>, Arc<Vec<String>>)>,
}

impl Tokens {
    /// Loads the file now, so a missing or unreadable file stops the server at start-up.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let tokens = Self {
            path: path.to_owned(),
            cache: Mutex::new((None, Arc::new(Vec::new()))),
        };
        tokens.reload().map_err(|source| TokenFileError {
            path: path.to_owned(),
            source,
        })?;
        Ok(tokens)
    }

    fn reload(&self) -> std::io::Result<Arc<Vec<String>>> {
        let modified = std::fs::metadata(&self.path)?.modified().ok();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0.is_none() || cache.0 != modified {
            let text = std::fs::read_to_string(&self.path)?;
            let list = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            *cache = (modified, Arc::new(list));
        }
        Ok(Arc::clone(&cache.1))
    }

    /// Whether `candidate` is one of the tokens, compared in constant time.
    fn accepts(&self, candidate: &str) -> bool {
        let tokens = match self.reload() {
            Ok(t) => t,
            Err(e) => {
                // Failing closed: an unreadable file admits nobody.
                tracing::error!(path = %self.path.display(), error = %e, "cannot read the token file");
                return false;
            }
        };
        tokens.iter().fold(false, |found, t| {
            found | bool::from(t.as_bytes().ct_eq(candidate.as_bytes()))
        })
    }
}

pub async fn require_bearer(
    State(tokens): State<Arc<Tokens>>,
    request: Request,
    next: Next,
) -> Response {
    match bearer_token(request.headers()) {
        Some(token) if tokens.accepts(token) => next.run(request).await,
        Some(_) => challenge(r#"Bearer realm="mcp-server", error="invalid_token""#),
        None => challenge(r#"Bearer realm="mcp-server""#),
    }
}

/// The token of an `Authorization: Bearer` header (the scheme in any case, RFC 7235), if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn challenge(value: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(WWW_AUTHENTICATE, HeaderValue::from_static(value))],
        "authentication required\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_lines_and_reloaded_on_change() {
        let dir = std::env::temp_dir().join(format!("mcp-server-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(&path, "# rotated weekly\nalpha\n\n  beta  \n").unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert!(tokens.accepts("alpha") && tokens.accepts("beta"));
        assert!(
            !tokens.accepts("# rotated weekly") && !tokens.accepts("alph") && !tokens.accepts("")
        );
        // A later modification time makes the next check read the file again.
        std::fs::write(&path, "gamma\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(tokens.accepts("gamma") && !tokens.accepts("alpha"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_token_file_is_an_error_at_start() {
        assert!(Tokens::load(Path::new("/nonexistent/mcp-server/tokens")).is_err());
    }
}
