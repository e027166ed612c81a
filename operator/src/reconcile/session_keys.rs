//! The app's session key Secret: created with a fresh key when absent, never overwritten by a
//! re-apply, and stepped through its rotation (`build::KeyRing`) when a step is due. Replaced
//! with its resourceVersion, so two writers never interleave their steps. The Secret last read
//! or written is remembered by resourceVersion: while the metadata watch reports that version, a
//! reconcile at rest makes no request for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};

use crate::api::McpApp;
use crate::build::{
    BuildError, FIELD_MANAGER, KEY_BYTES, KeyRing, session_keys_secret, session_keys_secret_name,
};
use crate::secrets::SecretMeta;

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

/// The key Secrets last read or written, each with its resourceVersion, checked against the
/// metadata watch of every Secret. One small Secret per app with a front door.
#[derive(Clone)]
pub struct KeySecrets {
    watched: Store<SecretMeta>,
    remembered: Arc<Mutex<HashMap<ObjectRef<SecretMeta>, Secret>>>,
}

impl KeySecrets {
    pub fn new(watched: Store<SecretMeta>) -> Self {
        KeySecrets {
            watched,
            remembered: Arc::default(),
        }
    }

    /// The remembered Secret, while the watch reports the version it was remembered at.
    fn current(&self, key: &ObjectRef<SecretMeta>) -> Option<Secret> {
        let watched = self.watched.get(key)?.metadata.resource_version.clone()?;
        let remembered = self.lock().get(key).cloned()?;
        (remembered.metadata.resource_version.as_deref() == Some(watched.as_str()))
            .then_some(remembered)
    }

    fn remember(&self, key: ObjectRef<SecretMeta>, secret: Secret) {
        self.lock().insert(key, secret);
    }

    fn forget(&self, key: &ObjectRef<SecretMeta>) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectRef<SecretMeta>, Secret>> {
        // A map of copies: a panicking holder leaves nothing half-done.
        self.remembered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes sure `app`'s key Secret exists and takes the rotation step due at `now`. Returns how
/// long until the next step is due.
pub async fn converge(
    client: &Client,
    known: &KeySecrets,
    app: &McpApp,
    now: Timestamp,
) -> Result<Duration, Error> {
    let namespace = app.namespace().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let name = session_keys_secret_name(app);
    let key = ObjectRef::new(&name).within(&namespace);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    // The key a new ring or a rotation would take; mostly unused, and cheap to make.
    let fresh = fresh_key()?;
    let live = match known.current(&key) {
        Some(remembered) => Some(remembered),
        None => bounded(&name, api.get_opt(&name)).await?,
    };
    let ring = match live {
        None => {
            known.forget(&key);
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
                    known.remember(key, other?);
                    tracing::info!(app = %app.name_any(), "created the session key Secret {name}");
                }
            }
            ring
        }
        Some(live) => {
            let read = KeyRing::read(&live, now, || fresh.clone());
            let wanted = read.next(now, || fresh.clone()).unwrap_or(read);
            let mut secret = session_keys_secret(app, &wanted)?;
            if same_ring(&live, &secret) {
                known.remember(key, live);
            } else {
                secret.metadata.resource_version = live.resource_version();
                let written = bounded(&name, api.replace(&name, &params, &secret)).await?;
                known.remember(key, written);
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
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    fn secret(version: &str) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some("app-session-keys".into());
        secret.metadata.namespace = Some("ns".into());
        secret.metadata.resource_version = Some(version.into());
        secret
    }

    fn watched(secret: &Secret) -> SecretMeta {
        SecretMeta {
            types: None,
            metadata: secret.metadata.clone(),
            _phantom: Default::default(),
        }
    }

    #[test]
    fn a_remembered_key_secret_is_used_only_while_the_watch_reports_its_version() {
        let (store, mut writer) = reflector::store();
        let known = KeySecrets::new(store);
        let key = ObjectRef::new("app-session-keys").within("ns");
        known.remember(key.clone(), secret("7"));
        // Not yet seen by the watch: read again.
        assert!(known.current(&key).is_none());
        writer.apply_watcher_event(&Event::Apply(watched(&secret("7"))));
        assert_eq!(
            known
                .current(&key)
                .unwrap()
                .metadata
                .resource_version
                .as_deref(),
            Some("7")
        );
        // Changed by someone else: read again.
        writer.apply_watcher_event(&Event::Apply(watched(&secret("9"))));
        assert!(known.current(&key).is_none());
        // Deleted: read again (and then created).
        writer.apply_watcher_event(&Event::Delete(watched(&secret("9"))));
        known.remember(key.clone(), secret("9"));
        assert!(known.current(&key).is_none());
    }

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
