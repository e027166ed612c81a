//! The table of open sessions: creation under a cap, cryptographically random ids (signed and
//! naming this replica when session routing is on), the outlet that routes each backend's
//! messages, and closing idle sessions.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use tokio_util::sync::CancellationToken;

use super::history::HistoryLimits;
use super::routing::Routing;
use super::session::{Session, TransportKind};
use crate::backend::{Backend, BackendError, Outbound, Outlet};
use crate::message::RequestId;
use crate::metrics::Metrics;
use crate::oauth::Identity;

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("the session limit ({0}) is reached")]
    Full(usize),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("no secure random source for session ids: {0}")]
    Random(getrandom::Error),
}

pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    /// Sessions counted against the cap, including ones still starting their backend.
    reserved: AtomicUsize,
    max: usize,
    idle: Duration,
    history: HistoryLimits,
    metrics: Arc<Metrics>,
    /// Names session ids so that any replica can route them here; `None`: random ids only.
    routing: Option<Arc<Routing>>,
}

impl Sessions {
    pub fn new(
        max: usize,
        idle: Duration,
        history: HistoryLimits,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        Self::routed(max, idle, history, metrics, None)
    }

    /// Sessions whose ids `routing` signs and names this replica in (when given).
    pub fn routed(
        max: usize,
        idle: Duration,
        history: HistoryLimits,
        metrics: Arc<Metrics>,
        routing: Option<Arc<Routing>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            reserved: AtomicUsize::new(0),
            max,
            idle,
            history,
            metrics,
            routing,
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts a session with its own backend conversation, for `identity` (who starts it).
    pub async fn create(
        self: &Arc<Self>,
        backend: &Backend,
        kind: TransportKind,
        identity: Option<Arc<Identity>>,
    ) -> Result<Arc<Session>, CreateError> {
        self.reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .map_err(|_| CreateError::Full(self.max))?;
        let id = new_session_id().map(|local| match &self.routing {
            Some(routing) => routing.name(&local),
            None => local,
        });
        let session = match id {
            Ok(id) => Arc::new(Session::new(
                id,
                kind,
                CancellationToken::new(),
                self.history.clone(),
            )),
            Err(e) => {
                self.reserved.fetch_sub(1, Ordering::AcqRel);
                return Err(CreateError::Random(e));
            }
        };
        let outlet = Arc::new(SessionOutlet {
            session: Arc::downgrade(&session),
            sessions: Arc::downgrade(self),
        });
        match backend
            .open(outlet, session.ended().clone(), identity)
            .await
        {
            Ok(inbox) => session.connect(inbox),
            Err(e) => {
                self.reserved.fetch_sub(1, Ordering::AcqRel);
                return Err(e.into());
            }
        }
        self.map().insert(session.id.clone(), Arc::clone(&session));
        self.metrics.sessions.inc();
        Ok(session)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.map().get(id).cloned()
    }

    /// Ends a session; `false` if there was none with this id.
    pub fn remove(&self, id: &str) -> bool {
        let removed = self.map().remove(id);
        match removed {
            Some(session) => {
                session.close();
                self.reserved.fetch_sub(1, Ordering::AcqRel);
                self.metrics.sessions.dec();
                tracing::debug!(session = %id, "session ended");
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends every session (shutdown).
    pub fn close_all(&self) {
        let ids: Vec<String> = self.map().keys().cloned().collect();
        for id in ids {
            self.remove(&id);
        }
    }

    /// Closes idle sessions periodically until `stop`.
    pub fn reap_idle(self: &Arc<Self>, stop: CancellationToken) {
        let sessions = Arc::clone(self);
        let period = (self.idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let now = Instant::now();
                let idle: Vec<String> = sessions
                    .map()
                    .values()
                    .filter(|s| s.is_idle(now, sessions.idle))
                    .map(|s| s.id.clone())
                    .collect();
                for id in idle {
                    tracing::info!(session = %id, "closing idle session");
                    sessions.remove(&id);
                }
            }
        });
    }
}

/// Where a session's backend messages go: straight onto the session's streams. Weak, so a
/// backend task that outlives its session keeps nothing alive.
struct SessionOutlet {
    session: Weak<Session>,
    sessions: Weak<Sessions>,
}

impl Outlet for SessionOutlet {
    fn send(&self, out: Outbound) {
        if let Some(session) = self.session.upgrade() {
            session.route(out);
        }
    }

    fn release_stream(&self, request: &RequestId) {
        if let Some(session) = self.session.upgrade() {
            session.release_request_stream(request);
        }
    }

    fn closed(&self) {
        let Some(session) = self.session.upgrade().filter(|s| !s.ended().is_cancelled()) else {
            // Ended by the transport first (DELETE, idle, shutdown): nothing waits any more.
            return;
        };
        session.fail_awaiting("the server behind this session has stopped");
        if let Some(sessions) = self.sessions.upgrade() {
            sessions.remove(&session.id);
        }
    }
}

/// 128 random bits from the OS, hex-encoded (visible ASCII, as the transport requires).
fn new_session_id() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::builtin::Builtin;

    #[test]
    fn session_ids_are_long_random_and_visible_ascii() {
        let a = new_session_id().unwrap();
        let b = new_session_id().unwrap();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[tokio::test]
    async fn the_cap_refuses_new_sessions_until_one_ends() {
        let metrics = Arc::new(Metrics::new());
        let sessions = Sessions::new(
            1,
            Duration::from_secs(60),
            HistoryLimits::events(8),
            Arc::clone(&metrics),
        );
        let backend = Backend::Builtin(Arc::new(Builtin::new()));
        let first = sessions
            .create(&backend, TransportKind::Streamable, None)
            .await
            .unwrap();
        assert!(matches!(
            sessions
                .create(&backend, TransportKind::Streamable, None)
                .await,
            Err(CreateError::Full(1))
        ));
        assert!(sessions.remove(&first.id));
        assert!(!sessions.remove(&first.id));
        assert!(
            sessions
                .create(&backend, TransportKind::Streamable, None)
                .await
                .is_ok()
        );
        assert_eq!(metrics.sessions.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_sessions_are_closed() {
        let sessions = Sessions::new(
            10,
            Duration::from_secs(1),
            HistoryLimits::events(8),
            Arc::new(Metrics::new()),
        );
        let backend = Backend::Builtin(Arc::new(Builtin::new()));
        let s = sessions
            .create(&backend, TransportKind::Streamable, None)
            .await
            .unwrap();
        sessions.reap_idle(CancellationToken::new());
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(sessions.get(&s.id).is_none());
        assert!(s.ended().is_cancelled());
    }
}
