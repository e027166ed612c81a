//! Who may call the app: OAuth 2.1 access tokens, checked by the companion in front of the
//! server (the MCP authorization spec's protected resource).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretKeyRef;

/// How clients authenticate to the app.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Require OAuth 2.1 access tokens (JWTs) from an authorization server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthSpec>,
}

/// The authorization server whose access tokens the app accepts, and what a token must carry.
/// The companion checks every request before the server sees it: the default image, the stdio
/// bridge, or the front door in front of an own image.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OAuthSpec {
    /// The authorization server's issuer identifier, exactly as its metadata and tokens name it
    /// (for example `https://id.example.com/realms/mcp`). Its keys are found through its
    /// metadata (RFC 8414, then OpenID Connect discovery) unless `jwksUrl` is set.
    #[schemars(length(min = 1, max = 2048), regex(pattern = r"^https?://[^\s?#]+$"))]
    pub issuer: String,

    /// The app's resource identifier, the URL clients connect to. Defaults to `status.url`
    /// (the Ingress or route URL, else the in-cluster Service URL); set it when the app is
    /// reached through something the operator does not manage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s?#@]+$"))]
    pub resource: Option<String>,

    /// Token audiences (`aud`) accepted. Defaults to the resource identifier, the value MCP
    /// clients ask for with the RFC 8707 `resource` parameter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(length(min = 1, max = 512), regex(pattern = r"^[^\s,]+$"))
    )]
    pub audiences: Vec<String>,

    /// Scopes every token must carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 256), regex(pattern = r"^[!#-+\--:<-\[\]-~]+$"))
    )]
    pub required_scopes: Vec<String>,

    /// The authorization server's JWKS URL, when its metadata cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s#]+$"))]
    pub jwks_url: Option<String>,

    /// Seconds of clock difference allowed when checking a token's `exp` and `nbf`.
    #[serde(default = "default_clock_skew_seconds")]
    #[schemars(range(min = 0, max = 600))]
    pub clock_skew_seconds: i32,

    /// Scopes a token needs to call a tool. A token without them gets 403 for `tools/call`,
    /// and `tools/list` leaves the tool out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["tool".to_owned()]))]
    pub tool_scopes: Vec<ToolScopes>,

    /// PEM CA certificates trusted for the authorization server besides the system's (a
    /// private CA), used by the companion and by the operator's token requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<SecretKeyRef>,

    /// Pass the client's `Authorization` header on to the server behind the front door. Off by
    /// default: the MCP spec forbids passing tokens through, and the server gets the caller's
    /// identity in `X-MCP-Subject`, `X-MCP-Scopes` and `X-MCP-Client-Id` instead.
    #[serde(default)]
    pub pass_token: bool,
}

/// The scopes one tool needs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolScopes {
    /// The tool's name, as `tools/list` gives it.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[^=;,\s]+$"))]
    pub tool: String,

    /// Scopes a token needs, all of them, to call the tool.
    #[schemars(
        length(min = 1, max = 16),
        inner(length(min = 1, max = 256), regex(pattern = r"^[!#-+\--:<-\[\]-~]+$"))
    )]
    pub scopes: Vec<String>,
}

fn default_clock_skew_seconds() -> i32 {
    60
}

/// The handshake's OAuth client: a token from the client-credentials grant (RFC 6749 §4.4),
/// kept until shortly before it expires.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCredentialsSpec {
    /// Secret in the app's namespace with the keys `client-id` and `client-secret`.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,

    /// Scopes asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(min = 1, max = 256), regex(pattern = r"^[!#-+\--:<-\[\]-~]+$"))
    )]
    pub scopes: Vec<String>,

    /// Value of the `audience` token-request parameter, for authorization servers that take
    /// the audience that way (Auth0, Ory Hydra).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub audience: Option<String>,

    /// Send the RFC 8707 `resource` parameter: the app's resource identifier. Turn it off for
    /// servers that refuse it (Microsoft Entra ID v2 asks for a `.default` scope instead).
    #[serde(default = "default_true")]
    pub resource: bool,

    /// How the client authenticates to the token endpoint. Defaults to `client_secret_basic`,
    /// or `client_secret_post` when the issuer's metadata offers only that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<TokenEndpointAuthMethod>,

    /// The token endpoint. Defaults to `token_endpoint` from the metadata of `auth.oauth.issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^\s#@]+$"))]
    pub token_url: Option<String>,
}

/// Where the client's secret goes in a token request (RFC 7591 names).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TokenEndpointAuthMethod {
    /// HTTP Basic authentication (RFC 6749 §2.3.1).
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
}

fn default_true() -> bool {
    true
}
