//! The token the operator's handshakes send: a static one from a Secret
//! (`probe.bearerTokenSecretRef`), or an OAuth access token from the client-credentials grant
//! (`probe.clientCredentials`), asked for once per app and kept until shortly before it expires.
//!
//! The authorization server is outside the cluster's trust: its answers are bounded
//! ([`http`]), its token endpoint is found through the metadata of the issuer the app names
//! ([`discovery`]), and a server that fails is asked again at most every [`RETRY_AFTER`] per
//! app, so a down identity provider is not flooded by every pod's handshake.

mod discovery;
mod grant;
mod http;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use reqwest::Url;

use discovery::Endpoint;
use grant::Request;

use crate::api::{ClientCredentialsSpec, McpApp, TokenEndpointAuthMethod};
use crate::build::ProbeSettings;
use crate::external::connect::{Connect, MAX_CA_BUNDLE_BYTES};
use crate::gate::Failure;
use crate::gate::target::{bearer_token, read, secret_text};
use crate::secrets::SecretReads;

/// The reason of a handshake that could not get its token.
pub const TOKEN_REQUEST_FAILED: &str = "TokenRequestFailed";
/// Share of a token's lifetime after which a new one is asked for.
const RENEW_AT: f64 = 0.8;
/// A token is not sent in its last seconds: the handshake must arrive before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Time between requests to an authorization server that failed, per app.
pub const RETRY_AFTER: Duration = Duration::from_secs(15);
/// How long an issuer's token endpoint is kept.
const ENDPOINT_TTL: Duration = Duration::from_secs(600);
/// Where the Secret of `probe.clientCredentials` keeps the client's id and secret.
pub const CLIENT_ID_KEY: &str = "client-id";
pub const CLIENT_SECRET_KEY: &str = "client-secret";

/// Each app's token, behind a lock of its own: one request per app at a time.
type Slots = HashMap<ObjectRef<McpApp>, Arc<tokio::sync::Mutex<Held>>>;

/// The handshake's credentials for every app; cheap to clone.
#[derive(Clone)]
pub struct Credentials {
    secrets: SecretReads,
    connect: Connect,
    tokens: Arc<Mutex<Slots>>,
}

/// One app's token, and its last failure.
#[derive(Default)]
struct Held {
    /// What was asked for, and where: a change asks again.
    asked: Option<Request>,
    token: Option<Kept>,
    endpoint: Option<(String, Endpoint, Instant)>,
    failed: Option<(Instant, Failure)>,
}

struct Kept {
    access_token: String,
    renew_at: Instant,
    expires_at: Instant,
}

impl Credentials {
    pub fn new(secrets: SecretReads, connect: Connect) -> Self {
        Self {
            secrets,
            connect,
            tokens: Arc::default(),
        }
    }

    /// The bearer token a handshake of `app`, probed with `settings`, sends; None when it
    /// sends none.
    pub async fn bearer(
        &self,
        app: &McpApp,
        settings: &ProbeSettings,
    ) -> Result<Option<String>, Failure> {
        match &settings.probe.client_credentials {
            Some(cc) => self.oauth_token(app, cc).await.map(Some),
            None => bearer_token(app, settings, &self.secrets).await,
        }
    }

    /// A handshake with the token was answered 401: the next one asks for a new token.
    pub fn refused(&self, app: &McpApp) {
        if let Some(held) = self.slot_if_any(app)
            && let Ok(mut held) = held.try_lock()
        {
            held.token = None;
        }
    }

    /// Forgets the tokens of apps that are gone.
    pub fn retain(&self, exists: impl Fn(&ObjectRef<McpApp>) -> bool) {
        self.lock().retain(|app, _| exists(app));
    }

    async fn oauth_token(
        &self,
        app: &McpApp,
        cc: &ClientCredentialsSpec,
    ) -> Result<String, Failure> {
        let slot = self.slot(app);
        // One request per app at a time: the other pods' handshakes wait for its token.
        let mut held = slot.lock().await;
        let now = Instant::now();
        let request = self.request(app, cc).await?;
        if let Some(kept) = &held.token
            && held.asked.as_ref() == Some(&request)
            && now < kept.renew_at
        {
            return Ok(kept.access_token.clone());
        }
        if let Some((at, failure)) = &held.failed
            && now.duration_since(*at) < RETRY_AFTER
        {
            return usable(&held, &request, now).ok_or_else(|| failure.clone());
        }
        match self.fetch(app, cc, &request, &mut held).await {
            Ok(token) => {
                let renew = token.lifetime.mul_f64(RENEW_AT);
                held.token = Some(Kept {
                    access_token: token.access_token.clone(),
                    renew_at: now + renew,
                    expires_at: now + token.lifetime.saturating_sub(EXPIRY_MARGIN),
                });
                held.asked = Some(request);
                held.failed = None;
                Ok(token.access_token)
            }
            Err(message) => {
                let failure = Failure {
                    reason: TOKEN_REQUEST_FAILED,
                    message: crate::text::clip(
                        &format!("probe.clientCredentials: {message}"),
                        crate::gate::book::MESSAGE_BYTES,
                    ),
                };
                tracing::warn!(app = %app.name_any(), namespace = %app.namespace().unwrap_or_default(),
                    "{}", failure.message);
                held.failed = Some((now, failure.clone()));
                // A token that still lasts is sent while the server cannot give a new one.
                usable(&held, &request, now).ok_or(failure)
            }
        }
    }

    /// What to ask for: the client from its Secret, the scopes and the audience.
    async fn request(&self, app: &McpApp, cc: &ClientCredentialsSpec) -> Result<Request, Failure> {
        let ns = app.namespace().unwrap_or_default();
        let field = "probe.clientCredentials.secretName";
        let data = read(&self.secrets, &ns, &cc.secret_name, field).await?;
        let text = |key| secret_text(data.as_deref(), field, &ns, &cc.secret_name, key);
        Ok(Request {
            client_id: text(CLIENT_ID_KEY)?,
            client_secret: text(CLIENT_SECRET_KEY)?,
            scopes: cc.scopes.clone(),
            audience: cc.audience.clone(),
            resource: cc.resource.then(|| crate::build::oauth_resource(app)),
        })
    }

    /// The token endpoint and a token from it.
    async fn fetch(
        &self,
        app: &McpApp,
        cc: &ClientCredentialsSpec,
        request: &Request,
        held: &mut Held,
    ) -> Result<grant::Token, String> {
        let oauth = app.spec.auth.as_ref().and_then(|a| a.oauth.as_ref());
        let ca = match oauth.and_then(|o| o.ca_bundle_secret_ref.as_ref()) {
            Some(r) => {
                let ns = app.namespace().unwrap_or_default();
                let field = "auth.oauth.caBundleSecretRef";
                let data = read(&self.secrets, &ns, &r.name, field)
                    .await
                    .map_err(|f| f.message)?;
                let pem = data.as_deref().and_then(|d| d.get(&r.key)).ok_or_else(|| {
                    format!(
                        "{field}: Secret {ns}/{} or its key {} not found",
                        r.name, r.key
                    )
                })?;
                if pem.0.len() > MAX_CA_BUNDLE_BYTES {
                    return Err(format!("{field}: larger than {MAX_CA_BUNDLE_BYTES} bytes"));
                }
                Some(pem.0.clone())
            }
            None => None,
        };
        let (client, _) = self.connect.client(ca.as_deref())?;
        let endpoint = match (&cc.token_url, oauth) {
            (Some(url), _) => Endpoint {
                token_url: Url::parse(url).map_err(|e| format!("tokenUrl: {e}"))?,
                secret_in_body: false,
            },
            (None, Some(oauth)) => match &held.endpoint {
                Some((issuer, endpoint, at))
                    if *issuer == oauth.issuer && at.elapsed() < ENDPOINT_TTL =>
                {
                    endpoint.clone()
                }
                _ => {
                    let endpoint = discovery::token_endpoint(&client, &oauth.issuer).await?;
                    held.endpoint = Some((oauth.issuer.clone(), endpoint.clone(), Instant::now()));
                    endpoint
                }
            },
            (None, None) => {
                return Err("no token endpoint: set tokenUrl or auth.oauth.issuer".into());
            }
        };
        let endpoint = Endpoint {
            secret_in_body: match cc.token_endpoint_auth_method {
                Some(method) => method == TokenEndpointAuthMethod::ClientSecretPost,
                None => endpoint.secret_in_body,
            },
            ..endpoint
        };
        let token = grant::request(&client, &endpoint, request)
            .await
            .map_err(|why| format!("token request to {}: {why}", endpoint.token_url))?;
        Ok(token)
    }

    fn slot(&self, app: &McpApp) -> Arc<tokio::sync::Mutex<Held>> {
        self.lock()
            .entry(ObjectRef::from_obj(app))
            .or_default()
            .clone()
    }

    fn slot_if_any(&self, app: &McpApp) -> Option<Arc<tokio::sync::Mutex<Held>>> {
        self.lock().get(&ObjectRef::from_obj(app)).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The kept token, when it was asked for with `request` and has not expired.
fn usable(held: &Held, request: &Request, now: Instant) -> Option<String> {
    let kept = held.token.as_ref()?;
    (held.asked.as_ref()? == request && now < kept.expires_at).then(|| kept.access_token.clone())
}
