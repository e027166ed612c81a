//! The Secrets apps reference. A metadata-only watch keeps every Secret in scope as name,
//! namespace, UID and resourceVersion (managedFields, labels and annotations stripped), so it
//! tells which Secret changed without holding any data. The data of a referenced Secret is read
//! with a GET when asked for and remembered by resourceVersion within a byte budget: memory does
//! not grow with the Secrets no app uses, and a reconcile at rest makes no request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};

/// A Secret as the watch keeps it.
pub type SecretMeta = PartialObjectMeta<Secret>;
/// The data of one Secret, key by key.
pub type SecretData = BTreeMap<String, ByteString>;

/// A GET of one Secret gives up after this long (the reconcile or probe then retries).
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of Secret data remembered at most. The API server caps one Secret at 1 MiB, so at
/// least sixteen fit; past the budget, reads still work, they are just not remembered.
const REMEMBERED_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading Secret {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading Secret {namespace}/{name}: no answer within {READ_TIMEOUT:?}")]
    Timeout { namespace: String, name: String },
}

/// Drops what the watch does not need, before it reaches the cache.
pub fn strip(meta: &mut SecretMeta) {
    let m = &mut meta.metadata;
    m.managed_fields = None;
    m.annotations = None;
    m.labels = None;
    m.owner_references = None;
    m.finalizers = None;
}

/// Reads of referenced Secrets, shared by the reconciles and the gate.
#[derive(Clone)]
pub struct SecretReads {
    client: Client,
    meta: Store<SecretMeta>,
    remembered: Arc<Mutex<Remembered>>,
}

impl SecretReads {
    pub fn new(client: Client, meta: Store<SecretMeta>) -> Self {
        SecretReads {
            client,
            meta,
            remembered: Arc::default(),
        }
    }

    /// The watch's cache, for the controller's readiness check.
    pub fn meta(&self) -> &Store<SecretMeta> {
        &self.meta
    }

    /// The data of Secret `namespace/name`, or None when it does not exist. Answered from memory
    /// when the watch reports the resourceVersion last read; read from the API server otherwise.
    pub async fn data(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<SecretData>>, ReadError> {
        let key = (namespace.to_owned(), name.to_owned());
        let Some(meta) = self.meta.get(&ObjectRef::new(name).within(namespace)) else {
            self.lock().forget(&key);
            return Ok(None);
        };
        let watched = meta
            .metadata
            .resource_version
            .as_deref()
            .unwrap_or_default();
        if let Some(data) = self.lock().get(&key, watched) {
            return Ok(Some(data));
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let read = tokio::time::timeout(READ_TIMEOUT, api.get_opt(name))
            .await
            .map_err(|_| ReadError::Timeout {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            })?
            .map_err(|source| ReadError::Api {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                source,
            })?;
        let Some(secret) = read else {
            self.lock().forget(&key);
            return Ok(None);
        };
        let data = Arc::new(secret.data.unwrap_or_default());
        // Remembered under the version read: if it is newer than the watch's, the next lookup
        // reads once more and then matches.
        if let Some(version) = secret.metadata.resource_version {
            self.lock().put(key, version, data.clone());
        }
        Ok(Some(data))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        // The map holds no invariant a panicking holder could break half-way.
        self.remembered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

type Key = (String, String);

/// Secret data by namespace and name, with the resourceVersion it was read at, within
/// [`REMEMBERED_BYTES`].
#[derive(Default)]
struct Remembered {
    entries: HashMap<Key, Entry>,
    bytes: usize,
}

struct Entry {
    version: String,
    data: Arc<SecretData>,
    bytes: usize,
}

impl Remembered {
    fn get(&self, key: &Key, version: &str) -> Option<Arc<SecretData>> {
        self.entries
            .get(key)
            .filter(|e| e.version == version)
            .map(|e| e.data.clone())
    }

    fn put(&mut self, key: Key, version: String, data: Arc<SecretData>) {
        self.forget(&key);
        let bytes = data.iter().map(|(k, v)| k.len() + v.0.len()).sum::<usize>();
        if bytes > REMEMBERED_BYTES {
            return;
        }
        // Which entry goes does not matter for correctness: a forgotten Secret is read again.
        while self.bytes + bytes > REMEMBERED_BYTES {
            let Some(victim) = self.entries.keys().next().cloned() else {
                break;
            };
            self.forget(&victim);
        }
        self.bytes += bytes;
        self.entries.insert(
            key,
            Entry {
                version,
                data,
                bytes,
            },
        );
    }

    fn forget(&mut self, key: &Key) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(bytes: usize) -> Arc<SecretData> {
        Arc::new(BTreeMap::from([(
            "k".to_owned(),
            ByteString(vec![0; bytes]),
        )]))
    }

    fn key(name: &str) -> Key {
        ("ns".to_owned(), name.to_owned())
    }

    #[test]
    fn data_is_answered_only_for_the_version_it_was_read_at() {
        let mut r = Remembered::default();
        r.put(key("a"), "7".into(), data(10));
        assert!(r.get(&key("a"), "7").is_some());
        assert!(r.get(&key("a"), "8").is_none());
        assert!(r.get(&key("b"), "7").is_none());
    }

    #[test]
    fn remembered_bytes_stay_within_the_budget() {
        let mut r = Remembered::default();
        let one_mib = 1024 * 1024;
        for i in 0..40 {
            r.put(key(&i.to_string()), "1".into(), data(one_mib));
            assert!(r.bytes <= REMEMBERED_BYTES, "{} bytes", r.bytes);
        }
        assert_eq!(r.entries.len(), REMEMBERED_BYTES / (one_mib + 1));
        r.put(key("huge"), "1".into(), data(REMEMBERED_BYTES + 1));
        assert!(r.get(&key("huge"), "1").is_none());
        let held = r.bytes;
        r.put(key("0-again"), "1".into(), data(5));
        r.forget(&key("0-again"));
        assert_eq!(r.bytes, held);
    }
}
