//! The app's session key Secret: created with a fresh key when absent, never overwritten by a
//! re-apply, and stepped through its rotation (`build::KeyRing`) when a step is due. Replaced
//! with its resourceVersion, so two writers never interleave their steps.

use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client, ResourceExt};

use crate::api::McpApp;
use crate::build::{
    BuildError, FIELD_MANAGER, KEY_BYTES, KeyRing, session_keys_secret, session_keys_secret_name,
};

/// A request about the key Secret gives up after this long; the reconcile is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("session key Secret {name}: {source}")]
    Api {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("session key Secret {name}: no answer within {REQUEST_TIMEOUT:?}")]
    Timeout { name: String },
    #[error("session key Secret: {0}")]
    Build(#[from] BuildError),
    #[error("no randomness for a session key: {0}")]
    Random(getrandom::Error),
}

/// Makes sure `app`'s key Secret exists and takes the rotation step due at `now`. Returns how
/// long until the next step is due.
pub async fn converge(client: &Client, app: &McpApp, now: Timestamp) -> Result<Duration, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &app.namespace().unwrap_or_default());
    let name = session_keys_secret_name(app);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    // The key a new ring or a rotation would take; mostly unused, and cheap to make.
    let fresh = fresh_key()?;
    let ring = match bounded(&name, api.get_opt(&name)).await? {
        None => {
            let ring = KeyRing::new(fresh, now);
            match bounded(
                &name,
                api.create(&params, &session_keys_secret(app, &ring)?),
            )
            .await
            {
                // Created since the GET (another reconcile): it is read again next time.
                Err(Error::Api {
                    source: kube::Error::Api(e),
                    ..
                }) if e.code == 409 => {}
                other => {
                    other?;
                    tracing::info!(app = %app.name_any(), "created the session key Secret {name}");
                }
            }
            ring
        }
        Some(live) => {
            let read = KeyRing::read(&live, now, || fresh.clone());
            let wanted = read.next(now, || fresh.clone()).unwrap_or(read);
            let mut secret = session_keys_secret(app, &wanted)?;
            if !same_ring(&live, &secret) {
                secret.metadata.resource_version = live.resource_version();
                bounded(&name, api.replace(&name, &params, &secret)).await?;
                tracing::info!(app = %app.name_any(), step = ?wanted.step, "session key Secret {name} stepped");
            }
            wanted
        }
    };
    let until = ring.due().duration_since(now);
    Ok(Duration::try_from(until).unwrap_or_default())
}

/// Whether `live` already holds what `wanted` says (the keys and the rotation annotations);
/// other changes made to it (labels by someone else) are left alone.
fn same_ring(live: &Secret, wanted: &Secret) -> bool {
    let annotations_kept = wanted
        .annotations()
        .iter()
        .all(|(k, v)| live.annotations().get(k) == Some(v));
    annotations_kept && live.data == wanted.data
}

/// 32 random bytes, standard base64: a line of the companion's key file.
fn fresh_key() -> Result<String, Error> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes).map_err(Error::Random)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

async fn bounded<T>(
    name: &str,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(result) => result.map_err(|source| Error::Api {
            name: name.to_owned(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            name: name.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keys_are_32_random_bytes_in_base64() {
        let a = fresh_key().unwrap();
        let b = fresh_key().unwrap();
        assert_ne!(a, b);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&a)
            .unwrap();
        assert_eq!(bytes.len(), 32);
    }
}
