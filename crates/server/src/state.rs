//! What every handler shares: the node (models on disk and in memory, settings, API
//! keys), the key given on the command line, the limits, the queue, who may call from a
//! browser, and where the server listens.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use perch_runtime::{KeepAlive, LocalModel, ModelLease, Node};
use tokio::sync::Semaphore;

use crate::exposure::Exposure;
use crate::{AccessPolicy, ApiError, Listeners};

/// Limits that keep one client from taking the node down.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Requests admitted at once, running or queued (503 beyond).
    pub max_queue: usize,
    /// Longest prompt accepted in tokens, on top of each model's own context.
    pub max_prompt_tokens: usize,
    /// Most tokens one request may generate, whatever it asks for (its `max_tokens` is
    /// lowered to this); `None` leaves only the model's context as the bound.
    pub max_output_tokens: Option<usize>,
    /// Time a connection has to send a whole request head, from opening or from its
    /// previous response (so it is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// Time a request has to send its whole body (408 beyond).
    pub body_timeout: Duration,
    /// Time a streaming client may go without reading before it is treated as gone.
    pub write_timeout: Duration,
    /// Connections open at once; past it a connection gets one 503 and is closed.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_queue: 32,
            max_prompt_tokens: 131_072,
            max_output_tokens: None,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub(crate) node: Arc<Node>,
    pub(crate) api_key: Option<Arc<str>>,
    pub(crate) limits: Limits,
    pub(crate) queue: Arc<Semaphore>,
    pub(crate) access: Arc<RwLock<Arc<AccessPolicy>>>,
    pub(crate) exposure: Option<Arc<Exposure>>,
}

impl AppState {
    /// State serving `node`'s models; when `api_key` is set every API call must present
    /// it (or one of the node's keys) as `Authorization: Bearer KEY`. It answers to
    /// loopback hosts and its own origin until [`AppState::with_access`] or
    /// [`AppState::listening_on`] says otherwise.
    pub fn new(node: Arc<Node>, api_key: Option<String>, limits: Limits) -> Self {
        let queue = Arc::new(Semaphore::new(limits.max_queue));
        AppState {
            node,
            api_key: api_key.map(Into::into),
            limits,
            queue,
            access: Arc::new(RwLock::new(Arc::new(AccessPolicy::for_addresses(&[
                std::net::Ipv4Addr::LOCALHOST.into(),
            ])))),
            exposure: None,
        }
    }

    /// The same state answering to the hosts and web origins of `policy`.
    pub fn with_access(self, policy: AccessPolicy) -> Self {
        self.set_access(policy);
        self
    }

    /// The same state, listening where the node's live settings say through
    /// `listeners` (and moving when they change), with the hosts and origins that
    /// follow from it.
    pub fn listening_on(mut self, listeners: Listeners) -> Self {
        self.exposure = Some(Arc::new(Exposure::new(listeners)));
        self
    }

    /// Who may call now.
    pub(crate) fn access(&self) -> Arc<AccessPolicy> {
        self.access
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_access(&self, policy: AccessPolicy) {
        *self
            .access
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(policy);
    }

    /// A lease on the model `name`, loaded first if it is not.
    pub(crate) async fn acquire(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<ModelLease, ApiError> {
        self.node
            .manager
            .acquire(name, keep_alive)
            .await
            .map_err(ApiError::from)
    }

    /// The models on this machine (read off the async workers: listing reads every
    /// manifest and the Hugging Face cache's headers).
    pub(crate) async fn local_models(&self) -> Vec<LocalModel> {
        let store = self.node.store.clone();
        tokio::task::spawn_blocking(move || store.list())
            .await
            .unwrap_or_default()
    }

    /// The model on this machine called `name`, if any (read off the async workers).
    pub(crate) async fn local_model(&self, name: &str) -> Option<LocalModel> {
        let (store, name) = (self.node.store.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || store.get(&name))
            .await
            .ok()
            .flatten()
    }
}
