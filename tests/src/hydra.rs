//! Ory Hydra, a real OAuth 2.1 authorization server, for the OAuth tests: `hydra serve all --dev`
//! with an in-memory database and JWT access tokens, plus the admin calls the tests make (clients,
//! token lifespans, key rotation) and the client-credentials token request.
//!
//! Where it runs is the caller's choice: [`Hydra::start`] runs it on the caller's own network,
//! [`Hydra::start_in`] inside the test environment's (reachable from pods at the addresses given),
//! and [`Hydra::attach`] takes over one started any other way.
//!
//! ```no_run
//! # async fn demo(env: &mcp_testenv::TestEnv) -> Result<(), mcp_testenv::Error> {
//! use mcp_testenv::hydra::{Hydra, Settings};
//! // On the pod network's gateway, where pods reach it.
//! let public = "10.244.0.1:4444".parse().unwrap();
//! let admin = "10.244.0.1:4445".parse().unwrap();
//! let hydra = Hydra::start_in(env, "hydra", Settings::local(public, admin)).await?;
//! let client = hydra.create_client(&["http://app.example/mcp"], &["mcp"]).await?;
//! let token = hydra.token(&client, &["mcp"], &["http://app.example/mcp"]).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::Error;
use crate::http::Response;
use crate::mcp::Connect;
use crate::process::{Supervised, log_tail};

/// The key set Hydra signs JWT access tokens with.
pub const ACCESS_TOKEN_KEYS: &str = "hydra.jwt.access-token";
/// How long [`Hydra::attach`] waits for Hydra to answer ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Every admin or token request gets this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How one Hydra is started: its listen addresses and the issuer its tokens name.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The public port: metadata, JWKS, `/oauth2/token`.
    pub public: SocketAddr,
    /// The admin port: clients and keys.
    pub admin: SocketAddr,
    /// `URLS_SELF_ISSUER`: the issuer as clients reach it (it need not be `public`'s address, e.g.
    /// a Service name inside the environment).
    pub issuer: String,
    /// `SECRETS_SYSTEM`, random unless set.
    pub system_secret: String,
}

impl Settings {
    pub fn new(public: SocketAddr, admin: SocketAddr, issuer: impl Into<String>) -> Self {
        Settings {
            public,
            admin,
            issuer: issuer.into(),
            system_secret: random_hex(24),
        }
    }

    /// Hydra listening on `public` with the issuer `http://{public}/`.
    pub fn local(public: SocketAddr, admin: SocketAddr) -> Self {
        Self::new(public, admin, format!("http://{public}/"))
    }

    /// The command line after the binary.
    pub fn args(&self) -> Vec<String> {
        // --dev allows an http issuer; --sqa-opt-out keeps Hydra from reporting usage to Ory.
        ["serve", "all", "--dev", "--sqa-opt-out"]
            .map(String::from)
            .to_vec()
    }

    /// The environment Hydra reads its configuration from.
    pub fn envs(&self) -> Vec<(String, String)> {
        [
            ("DSN", "memory".to_owned()),
            ("URLS_SELF_ISSUER", self.issuer.clone()),
            ("SECRETS_SYSTEM", self.system_secret.clone()),
            ("STRATEGIES_ACCESS_TOKEN", "jwt".to_owned()),
            ("SERVE_PUBLIC_HOST", self.public.ip().to_string()),
            ("SERVE_PUBLIC_PORT", self.public.port().to_string()),
            ("SERVE_ADMIN_HOST", self.admin.ip().to_string()),
            ("SERVE_ADMIN_PORT", self.admin.port().to_string()),
            ("LOG_LEVEL", "info".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }
}

/// An OAuth client registered at Hydra.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

/// A running Hydra, killed when dropped.
pub struct Hydra {
    process: Supervised,
    settings: Settings,
    log: PathBuf,
    admin: Connect,
    public: Connect,
}

impl Hydra {
    /// Starts `binary` on the caller's network, logging to `log`, and waits until it is ready.
    pub async fn start(binary: &Path, settings: Settings, log: &Path) -> Result<Self, Error> {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(settings.args())
            .envs(settings.envs())
            .kill_on_drop(true);
        let process = Supervised::spawn("hydra", cmd, log)?;
        let (admin, public) = (connect_here(settings.admin), connect_here(settings.public));
        Self::attach(process, settings, log, admin, public).await
    }

    /// Starts Hydra inside the test environment's network, logging to the environment's
    /// `logs/{name}.log`, and waits until it is ready. It stops with the environment at the latest.
    pub async fn start_in(
        env: &crate::TestEnv,
        name: &str,
        settings: Settings,
    ) -> Result<Self, Error> {
        let binary = crate::binaries::hydra()?;
        let args = settings.args();
        let envs = settings.envs();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let process = env.spawn(name, &binary, &args, &envs).await?;
        let log = env.dir().join("logs").join(format!("{name}.log"));
        let (admin, public) = (
            env.connector(settings.admin),
            env.connector(settings.public),
        );
        Self::attach(process, settings, &log, admin, public).await
    }

    /// Takes over a Hydra started elsewhere and waits until it is ready; `admin` and `public`
    /// open connections to its two ports.
    pub async fn attach(
        process: Supervised,
        settings: Settings,
        log: &Path,
        admin: Connect,
        public: Connect,
    ) -> Result<Self, Error> {
        let hydra = Hydra {
            process,
            settings,
            log: log.to_owned(),
            admin,
            public,
        };
        hydra.wait_ready().await?;
        Ok(hydra)
    }

    /// Hydra's `/health/ready` answers 200 on both ports once its database is migrated.
    async fn wait_ready(&self) -> Result<(), Error> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let admin = self.admin_request("GET", "/health/ready", None).await;
            let public = self.exchange(
                &self.public,
                self.settings.public,
                "GET",
                "/health/ready",
                &[],
                "",
            );
            if let (Ok(a), Ok(p)) = (admin, public.await)
                && a.status == 200
                && p.status == 200
            {
                return Ok(());
            }
            if let Some(status) = self.process.exit_status() {
                return Err(Error::ProcessExited {
                    name: "hydra".into(),
                    status: status.to_string(),
                    log: log_tail(&self.log, 40),
                });
            }
            if Instant::now() > deadline {
                return Err(Error::Timeout(format!(
                    "Hydra to be ready\n{}",
                    log_tail(&self.log, 40)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The issuer, exactly as Hydra's metadata and tokens name it.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Registers a client of the client-credentials grant that may ask for `audiences` and
    /// `scopes`, authenticating with HTTP Basic (`client_secret_basic`).
    pub async fn create_client(
        &self,
        audiences: &[&str],
        scopes: &[&str],
    ) -> Result<Client, Error> {
        let body = json!({
            "grant_types": ["client_credentials"],
            "audience": audiences,
            "scope": scopes.join(" "),
            "token_endpoint_auth_method": "client_secret_basic",
        });
        let created = self
            .admin_json("POST", "/admin/clients", Some(&body), 201)
            .await?;
        match (
            created["client_id"].as_str(),
            created["client_secret"].as_str(),
        ) {
            (Some(id), Some(secret)) => Ok(Client {
                id: id.to_owned(),
                secret: secret.to_owned(),
            }),
            _ => Err(Error::Hydra(format!(
                "the new client has no id or secret: {created}"
            ))),
        }
    }

    /// Access tokens of the client-credentials grant for `client` live `lifespan` from now on.
    pub async fn set_token_lifespan(
        &self,
        client: &Client,
        lifespan: Duration,
    ) -> Result<(), Error> {
        let body = json!({
            "client_credentials_grant_access_token_lifespan": format!("{}s", lifespan.as_secs()),
        });
        let path = format!("/admin/clients/{}/lifespans", client.id);
        self.admin_json("PUT", &path, Some(&body), 200).await?;
        Ok(())
    }

    /// Adds a new RS256 key to the access-token key set: Hydra signs the tokens it issues from
    /// now on with it, and keeps publishing the older keys. Returns the new key id.
    pub async fn rotate_access_token_key(&self) -> Result<String, Error> {
        let kid = format!("rotated-{}", random_hex(8));
        let body = json!({"alg": "RS256", "use": "sig", "kid": kid});
        let path = format!("/admin/keys/{ACCESS_TOKEN_KEYS}");
        self.admin_json("POST", &path, Some(&body), 201).await?;
        Ok(kid)
    }

    /// The access-token key set, private halves included (admin API).
    pub async fn access_token_keys(&self) -> Result<Value, Error> {
        let path = format!("/admin/keys/{ACCESS_TOKEN_KEYS}");
        self.admin_json("GET", &path, None, 200).await
    }

    /// Replaces the access-token key set with `keys` (a JWKS with private keys): this Hydra then
    /// signs with those keys.
    pub async fn set_access_token_keys(&self, keys: &Value) -> Result<(), Error> {
        let path = format!("/admin/keys/{ACCESS_TOKEN_KEYS}");
        self.admin_json("PUT", &path, Some(keys), 200).await?;
        Ok(())
    }

    /// The public JWKS (`/.well-known/jwks.json`), what resource servers verify tokens with.
    pub async fn jwks(&self) -> Result<Value, Error> {
        let response = self
            .exchange(
                &self.public,
                self.settings.public,
                "GET",
                "/.well-known/jwks.json",
                &[],
                "",
            )
            .await?;
        expect_json(response, 200, "GET /.well-known/jwks.json")
    }

    /// Requests an access token for `client` with the client-credentials grant, asking for
    /// `scopes` and, with Hydra's `audience` parameter, `audiences` (Hydra ignores RFC 8707's
    /// `resource`). Hydra's answer as it came: the status and the body.
    pub async fn request_token(
        &self,
        client: &Client,
        scopes: &[&str],
        audiences: &[&str],
    ) -> Result<Response, Error> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        if !audiences.is_empty() {
            form.push(("audience", audiences.join(" ")));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        // RFC 6749 2.3.1: id and secret are form-encoded before they are joined.
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(&client.id),
            form_encode(&client.secret)
        ));
        let authorization = format!("Basic {basic}");
        let headers = [
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", authorization.as_str()),
        ];
        self.exchange(
            &self.public,
            self.settings.public,
            "POST",
            "/oauth2/token",
            &headers,
            &body,
        )
        .await
    }

    /// [`Self::request_token`], expecting a token: the access token.
    pub async fn token(
        &self,
        client: &Client,
        scopes: &[&str],
        audiences: &[&str],
    ) -> Result<String, Error> {
        let response = self.request_token(client, scopes, audiences).await?;
        let body = expect_json(response, 200, "POST /oauth2/token")?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Hydra(format!("token response without access_token: {body}")))
    }

    /// One request to the admin port, with a JSON body if given.
    pub async fn admin_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, Error> {
        let text = body.map(Value::to_string).unwrap_or_default();
        let headers: &[(&str, &str)] = if body.is_some() {
            &[("content-type", "application/json")]
        } else {
            &[]
        };
        self.exchange(
            &self.admin,
            self.settings.admin,
            method,
            path,
            headers,
            &text,
        )
        .await
    }

    async fn admin_json(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> Result<Value, Error> {
        let response = self.admin_request(method, path, body).await?;
        expect_json(response, status, &format!("{method} {path}"))
    }

    async fn exchange(
        &self,
        connect: &Connect,
        addr: SocketAddr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<Response, Error> {
        let what = format!("Hydra {method} {path}");
        let request = async {
            let stream = connect().await?;
            crate::http::request(stream, &addr.to_string(), method, path, headers, body).await
        };
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| Error::Timeout(what.clone()))?
            .map_err(|e| Error::io(&what, e))
    }
}

impl Drop for Hydra {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// Connections to `addr` from the caller's own network.
pub fn connect_here(addr: SocketAddr) -> Connect {
    Arc::new(move || Box::pin(tokio::net::TcpStream::connect(addr)) as BoxFuture<'static, _>)
}

fn expect_json(response: Response, status: u16, what: &str) -> Result<Value, Error> {
    if response.status != status {
        return Err(Error::Hydra(format!(
            "{what}: HTTP {} (expected {status}): {}",
            response.status,
            response.body.chars().take(500).collect::<String>()
        )));
    }
    serde_json::from_str(&response.body)
        .map_err(|e| Error::Hydra(format!("{what}: not JSON ({e})")))
}

/// `application/x-www-form-urlencoded` of one value: unreserved characters as they are, every
/// other byte percent-encoded.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `bytes` random bytes from the kernel, hex-encoded.
fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("/dev/urandom is readable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_keep_unreserved_characters_only() {
        assert_eq!(form_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(
            form_encode("http://h:1/mcp a+b"),
            "http%3A%2F%2Fh%3A1%2Fmcp%20a%2Bb"
        );
    }

    #[test]
    fn settings_name_the_addresses_and_a_fresh_secret() {
        let public: SocketAddr = "127.0.0.1:4444".parse().unwrap();
        let admin: SocketAddr = "127.0.0.1:4445".parse().unwrap();
        let a = Settings::local(public, admin);
        let b = Settings::local(public, admin);
        assert_eq!(a.issuer, "http://127.0.0.1:4444/");
        assert_ne!(a.system_secret, b.system_secret);
        assert_eq!(a.system_secret.len(), 48);
        let envs = a.envs();
        let get = |k: &str| envs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("SERVE_ADMIN_PORT"), Some("4445"));
        assert_eq!(get("STRATEGIES_ACCESS_TOKEN"), Some("jwt"));
        assert_eq!(get("DSN"), Some("memory"));
    }
}
