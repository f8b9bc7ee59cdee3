//! The model manager: which models are loaded, loading on demand, keep-alive and
//! eviction.
//!
//! - A request names a model; [`ModelManager::acquire`] hands back a [`ModelLease`],
//!   loading the model first if needed. Concurrent requests for one unloaded model share
//!   one load and wait for it (up to the load timeout) instead of failing.
//! - Before a load the planner checks the model fits beside the models that are busy;
//!   if it does, the least recently used idle models are unloaded as far as needed to
//!   make room (never one with a request in flight); if it does not, nothing is unloaded
//!   and the load is refused with the planner's explanation.
//! - A lease counts as a request in flight. When the last one ends, the model's
//!   keep-alive starts: the request's own (as Ollama takes it), else the model's standing
//!   one (set by [`ModelManager::load`], else the node's default); zero unloads at once,
//!   negative never.
//! - Unloading joins the model's thread on the blocking pool, never on an async worker,
//!   and never while a request is streaming from it; until its memory is freed the
//!   planner still counts it.
//!
//! One mutex guards the slots; a model's own small locks are only ever taken after it.

mod engine_choice;
mod lease;
mod loading;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use perch_engine::EngineKind;
use tokio::sync::watch;

pub use engine_choice::{engine_for, load_on};
pub use lease::{LoadedModel, ModelLease};

use crate::keep_alive::KeepAlive;
use crate::planner::{MemoryPlanner, Resident};
use crate::settings::Settings;
use crate::store::ModelStore;

/// Why a model could not be had.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ManagerError {
    /// No model by that name is on this machine.
    #[error("{0}")]
    NotFound(String),
    /// The name is malformed.
    #[error("{0}")]
    BadName(String),
    /// It does not fit in memory, even after unloading every idle model.
    #[error("{0}")]
    InsufficientMemory(String),
    /// The most models allowed are loaded and all are busy, or a load takes too long.
    #[error("{0}")]
    Busy(String),
    /// Loading failed.
    #[error("loading {name} failed: {message}")]
    LoadFailed {
        /// The model.
        name: String,
        /// Why.
        message: String,
    },
}

/// How the manager behaves.
#[derive(Clone, Debug)]
pub struct ManagerSettings {
    /// Keep-alive of models nobody gave one.
    pub keep_alive: KeepAlive,
    /// Most models resident at once.
    pub max_loaded: usize,
    /// Longest a request waits for its model to load.
    pub load_timeout: Duration,
    /// The engine GGUF files run on unless their catalog entry names one.
    pub gguf_engine: EngineKind,
}

/// What an unload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unloaded {
    /// It is out of the manager and its memory is being freed (within moments).
    Now,
    /// Requests are in flight; it unloads when they end.
    AfterRequests(usize),
    /// It was not loaded.
    NotLoaded,
}

/// The outcome of one load, shared by everyone waiting for it.
type LoadOutcome = Option<Result<Arc<LoadedModel>, ManagerError>>;

enum Slot {
    /// A load in progress, numbered so that only its own task replaces it.
    Loading {
        id: u64,
        done: watch::Receiver<LoadOutcome>,
        bytes: u64,
    },
    Ready(Arc<LoadedModel>),
}

/// Everything the slots mutex guards.
#[derive(Default)]
struct State {
    slots: HashMap<String, Slot>,
    /// Bytes of models taken out whose memory is not freed yet.
    releasing: u64,
    next_load: u64,
}

impl State {
    /// The key of a slot for `name`, under any of the forms it may be written in.
    fn key_of(&self, name: &str) -> Option<String> {
        crate::names::lookup_forms(name)
            .into_iter()
            .find(|k| self.slots.contains_key(k))
    }

    /// Models loaded or loading, all but `except`.
    fn residents(&self, except: &str) -> Vec<Resident> {
        self.slots
            .iter()
            .filter(|(name, _)| name.as_str() != except)
            .map(|(name, slot)| match slot {
                Slot::Ready(m) => Resident {
                    name: name.clone(),
                    bytes: m.need.resident(),
                    idle: m.in_flight() == 0,
                },
                Slot::Loading { bytes, .. } => Resident {
                    name: name.clone(),
                    bytes: *bytes,
                    idle: false,
                },
            })
            .collect()
    }

    /// What the planner must count beside a model: the [`State::residents`], and the
    /// memory of models taken out but not freed yet — less `freed_for_it`, the models
    /// taken out to make room for this one (its load waits for them).
    fn planned(&self, except: &str, freed_for_it: u64) -> Vec<Resident> {
        let mut residents = self.residents(except);
        let releasing = self.releasing.saturating_sub(freed_for_it);
        if releasing > 0 {
            residents.push(Resident {
                name: "models being unloaded".into(),
                bytes: releasing,
                idle: false,
            });
        }
        residents
    }
}

struct Inner {
    store: ModelStore,
    planner: RwLock<MemoryPlanner>,
    settings: RwLock<ManagerSettings>,
    state: Mutex<State>,
    runtime: tokio::runtime::Handle,
}

impl Inner {
    /// The state. A panic elsewhere while holding it leaves it consistent (every change
    /// is made whole under the lock), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The planner as it is now (its context can change while the node runs).
    fn planner(&self) -> MemoryPlanner {
        self.planner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The settings as they are now.
    fn settings(&self) -> ManagerSettings {
        self.settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Takes `model` out (the caller has removed its slot) and frees it on the blocking
    /// pool; the planner counts its memory until then. The handle ends when it is freed.
    fn release(
        self: &Arc<Self>,
        state: &mut State,
        model: Arc<LoadedModel>,
    ) -> tokio::task::JoinHandle<()> {
        let bytes = model.need.resident();
        state.releasing += bytes;
        let inner = self.clone();
        self.runtime.spawn_blocking(move || {
            lease::drop_when_unique(model);
            inner.lock().releasing -= bytes;
        })
    }

    fn unload_expired(self: &Arc<Self>) {
        let now = Instant::now();
        let mut state = self.lock();
        let expired: Vec<String> = state
            .slots
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Ready(m) if m.in_flight() == 0 && m.expired(now) => Some(name.clone()),
                _ => None,
            })
            .collect();
        for name in expired {
            if let Some(Slot::Ready(model)) = state.slots.remove(&name) {
                tracing::info!(model = %name, "keep-alive expired: unloading");
                self.release(&mut state, model);
            }
        }
    }
}

/// Loads, keeps and unloads models.
#[derive(Clone)]
pub struct ModelManager {
    inner: Arc<Inner>,
}

impl ModelManager {
    /// A manager over `store`, planning with `planner`. Must be made inside a Tokio
    /// runtime: it starts the task that unloads expired models.
    pub fn new(store: ModelStore, planner: MemoryPlanner, settings: ManagerSettings) -> Self {
        let inner = Arc::new(Inner {
            store,
            planner: RwLock::new(planner),
            settings: RwLock::new(settings),
            state: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
        });
        let weak = Arc::downgrade(&inner);
        inner.runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                inner.unload_expired();
            }
        });
        ModelManager { inner }
    }

    /// The planner as it is now.
    pub fn planner(&self) -> MemoryPlanner {
        self.inner.planner()
    }

    /// The settings as they are now.
    pub fn settings(&self) -> ManagerSettings {
        self.inner.settings()
    }

    /// The engine `model` runs on: its own while it is loaded (a changed setting applies
    /// from its next load), else the one it would load on with the settings as they are
    /// now.
    pub fn engine_of(&self, model: &crate::store::LocalModel) -> perch_engine::Result<EngineKind> {
        if let Some(Slot::Ready(loaded)) = self.inner.lock().slots.get(model.name()) {
            return Ok(loaded.engine.info().engine);
        }
        engine_for(model, self.gguf_engine())
    }

    /// The engine GGUF files load on (the setting).
    pub fn gguf_engine(&self) -> EngineKind {
        self.inner.settings().gguf_engine
    }

    /// Takes up changed settings: the standing keep-alive, the most models resident, and
    /// the context and sequences new loads are planned with. Models already loaded keep
    /// what they were loaded with; a lower limit is met as idle models expire or make
    /// room.
    pub fn reconfigure(&self, now: &Settings) {
        {
            let mut settings = self
                .inner
                .settings
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            settings.keep_alive = now.keep_alive();
            settings.max_loaded = now.max_loaded_models;
            settings.gguf_engine = now.gguf_engine;
        }
        let mut planner = self
            .inner
            .planner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        planner.set_context(now.context_length);
        planner.set_sequences(now.parallel as u64);
    }

    /// The loaded models, by name.
    pub fn loaded(&self) -> Vec<Arc<LoadedModel>> {
        let state = self.inner.lock();
        let mut models: Vec<_> = state
            .slots
            .values()
            .filter_map(|s| match s {
                Slot::Ready(m) => Some(m.clone()),
                Slot::Loading { .. } => None,
            })
            .collect();
        models.sort_by(|a, b| a.name.cmp(&b.name));
        models
    }

    /// Models loaded or loading, and memory being freed, as the planner counts them.
    pub fn residents(&self) -> Vec<Resident> {
        self.inner.lock().planned("", 0)
    }

    /// A lease on the model called `name`, loading it first if needed. `keep_alive`
    /// applies once this request ends (default: the model's standing keep-alive).
    pub async fn acquire(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<ModelLease, ManagerError> {
        let load_timeout = self.inner.settings().load_timeout;
        let deadline = Instant::now() + load_timeout;
        loop {
            let mut waiting = match self.lease_or_wait(name, keep_alive)? {
                Ok(lease) => return Ok(lease),
                Err(Some(waiting)) => waiting,
                Err(None) => self.start_load(name).await?,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = tokio::time::timeout(left, waiting.wait_for(Option::is_some))
                .await
                .map(|waited| waited.map(|outcome| outcome.clone()));
            match outcome {
                Err(_) => {
                    return Err(ManagerError::Busy(format!(
                        "{name} is still loading after {:.0} s; try again shortly",
                        load_timeout.as_secs_f64()
                    )))
                }
                Ok(Err(_)) => {
                    return Err(ManagerError::LoadFailed {
                        name: name.to_owned(),
                        message: "the load stopped before it finished".into(),
                    })
                }
                Ok(Ok(Some(Err(e)))) => return Err(e),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// A lease if `name` is loaded; the load to wait for if it is loading; neither if
    /// it is not in the manager at all.
    #[allow(clippy::type_complexity)]
    fn lease_or_wait(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Result<ModelLease, Option<watch::Receiver<LoadOutcome>>>, ManagerError> {
        let state = self.inner.lock();
        let Some(key) = state.key_of(name) else {
            return Ok(Err(None));
        };
        Ok(match &state.slots[&key] {
            Slot::Ready(model) => Ok(ModelLease::new(
                model.clone(),
                keep_alive,
                self.inner.clone(),
            )),
            Slot::Loading { done, .. } => Err(Some(done.clone())),
        })
    }

    /// Finds `name` in the store (off the async workers) and starts loading it, unless
    /// someone else started meanwhile; returns the load to wait for.
    async fn start_load(&self, name: &str) -> Result<watch::Receiver<LoadOutcome>, ManagerError> {
        crate::names::parse(name, crate::names::Origin::Network)
            .map_err(|e| ManagerError::BadName(e.to_string()))?;
        let store = self.inner.store.clone();
        let wanted = name.to_owned();
        let model = tokio::task::spawn_blocking(move || store.get(&wanted))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                ManagerError::NotFound(format!(
                    "model {name:?} is not on this machine; pull it first (perch pull {name})"
                ))
            })?;
        let mut state = self.inner.lock();
        if let Some(slot) = state.slots.get(model.name()) {
            // Someone else got there first: wait for theirs (or take it, if ready).
            let (tx, rx) = watch::channel(None);
            match slot {
                Slot::Loading { done, .. } => return Ok(done.clone()),
                Slot::Ready(m) => {
                    let _ = tx.send(Some(Ok(m.clone())));
                    return Ok(rx);
                }
            }
        }
        state.next_load += 1;
        let id = state.next_load;
        let (tx, rx) = watch::channel(None);
        state.slots.insert(
            model.name().to_owned(),
            Slot::Loading {
                id,
                done: rx.clone(),
                bytes: 0,
            },
        );
        drop(state);
        loading::spawn(self.inner.clone(), model, id, tx);
        Ok(rx)
    }

    /// Loads `name` (if it is not loaded) and makes `keep_alive` its standing keep-alive.
    pub async fn load(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Arc<LoadedModel>, ManagerError> {
        let lease = self.acquire(name, keep_alive).await?;
        if let Some(keep_alive) = keep_alive {
            lease.model().set_standing_keep_alive(keep_alive);
        }
        Ok(lease.model().clone())
    }

    /// Unloads `name`: now if it is idle, after its requests end if not.
    pub fn unload(&self, name: &str) -> Unloaded {
        let mut state = self.inner.lock();
        let Some(key) = state.key_of(name) else {
            return Unloaded::NotLoaded;
        };
        let Slot::Ready(model) = &state.slots[&key] else {
            return Unloaded::NotLoaded;
        };
        let busy = model.in_flight.load(Ordering::SeqCst);
        if busy > 0 {
            model.request_unload();
            return Unloaded::AfterRequests(busy);
        }
        if let Some(Slot::Ready(model)) = state.slots.remove(&key) {
            self.inner.release(&mut state, model);
        }
        Unloaded::Now
    }
}
