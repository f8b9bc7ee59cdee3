//! The model manager: which models are loaded, loading on demand, keep-alive and
//! eviction.
//!
//! - A request names a model; [`ModelManager::acquire`] hands back a [`ModelLease`],
//!   loading the model first if needed. Concurrent requests for one unloaded model share
//!   one load and wait for it (up to the load timeout) instead of failing.
//! - Before a load the planner checks the model fits beside the resident ones; if not,
//!   the least recently used idle models are unloaded to make room (never one with a
//!   request in flight), and if that is not enough the load is refused with the
//!   planner's explanation.
//! - A lease counts as a request in flight. When the last one ends, the model's
//!   keep-alive starts: five minutes by default, per request as Ollama takes it, zero
//!   unloads at once, negative never.
//! - Unloading joins the model's thread on the blocking pool, never on an async worker,
//!   and never while a request is streaming from it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use perch_engine::{Engine, MlxEngine};
use tokio::sync::watch;

use crate::keep_alive::KeepAlive;
use crate::planner::{Footprint, MemoryPlanner, Need, Resident};
use crate::store::{LocalModel, ModelStore};

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
    /// The most models allowed are loaded and all are busy.
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
    /// Keep-alive of requests that give none.
    pub keep_alive: KeepAlive,
    /// Most models resident at once.
    pub max_loaded: usize,
    /// Longest a request waits for a load another request started.
    pub load_timeout: Duration,
}

/// A loaded model.
pub struct LoadedModel {
    /// Its name.
    pub name: String,
    /// The engine.
    pub engine: Arc<dyn Engine>,
    /// Where it came from.
    pub model: LocalModel,
    /// What the planner counted for it.
    pub need: Need,
    /// When it finished loading.
    pub loaded_at: SystemTime,
    in_flight: AtomicUsize,
    idle: Mutex<Idle>,
    /// How long it stays once idle: the node's default until a request or a load names
    /// one, which then holds for later requests that name none (as a model loaded to be
    /// kept stays kept).
    keep_alive: Mutex<KeepAlive>,
}

/// When an idle model goes.
struct Idle {
    last_used: Instant,
    expires: Option<Instant>,
}

impl LoadedModel {
    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// When it will be unloaded if no request comes (`None`: never, or busy now).
    pub fn expires_at(&self) -> Option<SystemTime> {
        if self.in_flight() > 0 {
            return None;
        }
        let idle = self.idle.lock().expect("idle lock");
        let left = idle.expires?.saturating_duration_since(Instant::now());
        Some(SystemTime::now() + left)
    }

    /// The context it is served with: the planned one.
    pub fn context_length(&self) -> u64 {
        self.need.context
    }
}

/// A request's hold on a loaded model: while any lease lives the model stays loaded.
pub struct ModelLease {
    loaded: Arc<LoadedModel>,
    manager: Arc<Inner>,
}

impl ModelLease {
    /// The model.
    pub fn model(&self) -> &Arc<LoadedModel> {
        &self.loaded
    }
}

impl Drop for ModelLease {
    fn drop(&mut self) {
        let mut slots = self.manager.slots.lock().expect("slots lock");
        let left = self.loaded.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        let now = Instant::now();
        let expires = {
            let mut idle = self.loaded.idle.lock().expect("idle lock");
            idle.last_used = now;
            // An unload asked for while requests ran already set an expiry in the past.
            let asked = self
                .loaded
                .keep_alive
                .lock()
                .expect("keep-alive lock")
                .deadline(now);
            idle.expires = match (idle.expires, asked) {
                (Some(old), _) if old <= now => Some(old),
                _ => asked,
            };
            idle.expires
        };
        if left == 0 && expires.is_some_and(|t| t <= now) {
            if let Some(Slot::Ready(model)) = slots.remove(&self.loaded.name) {
                drop(slots);
                self.manager.release(model);
            }
        }
    }
}

enum Slot {
    Loading {
        done: watch::Receiver<Option<Result<Arc<LoadedModel>, ManagerError>>>,
        bytes: u64,
    },
    Ready(Arc<LoadedModel>),
}

struct Inner {
    store: ModelStore,
    planner: MemoryPlanner,
    settings: ManagerSettings,
    slots: Mutex<HashMap<String, Slot>>,
    runtime: tokio::runtime::Handle,
}

/// What an unload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unloaded {
    /// Unloaded now.
    Now,
    /// Requests are in flight; it unloads when they end.
    AfterRequests(usize),
    /// It was not loaded.
    NotLoaded,
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
            planner,
            settings,
            slots: Mutex::new(HashMap::new()),
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

    /// The planner.
    pub fn planner(&self) -> &MemoryPlanner {
        &self.inner.planner
    }

    /// The loaded models.
    pub fn loaded(&self) -> Vec<Arc<LoadedModel>> {
        let slots = self.inner.slots.lock().expect("slots lock");
        let mut models: Vec<_> = slots
            .values()
            .filter_map(|s| match s {
                Slot::Ready(m) => Some(m.clone()),
                Slot::Loading { .. } => None,
            })
            .collect();
        models.sort_by(|a, b| a.name.cmp(&b.name));
        models
    }

    /// Models loaded or loading, as the planner counts them.
    pub fn residents(&self) -> Vec<Resident> {
        self.inner
            .slots
            .lock()
            .expect("slots lock")
            .iter()
            .map(|(name, slot)| resident(name, slot))
            .collect()
    }

    /// A lease on the model called `name`, loading it first if needed. `keep_alive`
    /// applies once the request ends, and to later requests that give none (until then:
    /// the node's default).
    pub async fn acquire(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<ModelLease, ManagerError> {
        let deadline = Instant::now() + self.inner.settings.load_timeout;
        loop {
            let key = self.key_for(name)?;
            let mut waiting = {
                let mut slots = self.inner.slots.lock().expect("slots lock");
                match slots.get(&key.0) {
                    Some(Slot::Ready(model)) => {
                        model.in_flight.fetch_add(1, Ordering::SeqCst);
                        if let Some(keep_alive) = keep_alive {
                            *model.keep_alive.lock().expect("keep-alive lock") = keep_alive;
                        }
                        return Ok(ModelLease {
                            loaded: model.clone(),
                            manager: self.inner.clone(),
                        });
                    }
                    Some(Slot::Loading { done, .. }) => done.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        slots.insert(
                            key.0.clone(),
                            Slot::Loading {
                                done: rx.clone(),
                                bytes: 0,
                            },
                        );
                        let inner = self.inner.clone();
                        let model = key.1.clone().expect("a model not loaded was looked up");
                        tokio::spawn(async move {
                            let result = inner.load(model).await;
                            let _ = tx.send(Some(result));
                        });
                        rx
                    }
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let outcome = tokio::time::timeout(left, waiting.wait_for(Option::is_some)).await;
            match outcome {
                Err(_) => {
                    return Err(ManagerError::Busy(format!(
                        "{} is still loading after {:.0} s; try again shortly",
                        key.0,
                        self.inner.settings.load_timeout.as_secs_f64()
                    )))
                }
                Ok(Err(_)) => continue,
                Ok(Ok(result)) => {
                    if let Some(Err(e)) = result.as_ref() {
                        return Err(e.clone());
                    }
                }
            }
        }
    }

    /// Loads `name` (if it is not loaded) and keeps it for `keep_alive`.
    pub async fn load(
        &self,
        name: &str,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Arc<LoadedModel>, ManagerError> {
        let lease = self.acquire(name, keep_alive).await?;
        Ok(lease.model().clone())
    }

    /// Unloads `name`: now if it is idle, after its requests end if not.
    pub fn unload(&self, name: &str) -> Unloaded {
        let mut slots = self.inner.slots.lock().expect("slots lock");
        let key = if slots.contains_key(name) {
            name.to_owned()
        } else {
            format!("{name}:latest")
        };
        let Some(Slot::Ready(model)) = slots.get(&key) else {
            return Unloaded::NotLoaded;
        };
        let busy = model.in_flight();
        if busy > 0 {
            model.idle.lock().expect("idle lock").expires = Some(Instant::now());
            return Unloaded::AfterRequests(busy);
        }
        if let Some(Slot::Ready(model)) = slots.remove(&key) {
            drop(slots);
            self.inner.release(model);
        }
        Unloaded::Now
    }

    /// The slot key for `name` and, when it is not loaded or loading, the model on disk.
    fn key_for(&self, name: &str) -> Result<(String, Option<LocalModel>), ManagerError> {
        {
            let slots = self.inner.slots.lock().expect("slots lock");
            for key in [name.to_owned(), format!("{name}:latest")] {
                if slots.contains_key(&key) {
                    return Ok((key, None));
                }
            }
        }
        crate::names::parse(name, crate::names::Origin::Network)
            .map_err(|e| ManagerError::BadName(e.to_string()))?;
        let model = self.inner.store.get(name).ok_or_else(|| {
            ManagerError::NotFound(format!(
                "model {name:?} is not on this machine; pull it first (perch pull {name})"
            ))
        })?;
        Ok((model.name().to_owned(), Some(model)))
    }
}

fn resident(name: &str, slot: &Slot) -> Resident {
    match slot {
        Slot::Ready(m) => Resident {
            name: name.to_owned(),
            bytes: m.need.total(),
            idle: m.in_flight() == 0,
        },
        Slot::Loading { bytes, .. } => Resident {
            name: name.to_owned(),
            bytes: *bytes,
            idle: false,
        },
    }
}

impl Inner {
    /// Plans, makes room, loads; the slot for `model` is `Loading` meanwhile.
    async fn load(self: Arc<Self>, model: LocalModel) -> Result<Arc<LoadedModel>, ManagerError> {
        let name = model.name().to_owned();
        let result = self.clone().plan_and_load(model).await;
        let mut slots = self.slots.lock().expect("slots lock");
        match &result {
            Ok(loaded) => {
                slots.insert(name, Slot::Ready(loaded.clone()));
            }
            Err(_) => {
                slots.remove(&name);
            }
        }
        result
    }

    async fn plan_and_load(
        self: Arc<Self>,
        model: LocalModel,
    ) -> Result<Arc<LoadedModel>, ManagerError> {
        let name = model.name().to_owned();
        let failed = |message: String| ManagerError::LoadFailed {
            name: name.clone(),
            message,
        };
        let path = model.load_path();
        let facts = blocking({
            let path = path.clone();
            move || perch_engine::inspect::inspect(&path)
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
        let footprint = Footprint::from(&facts);
        let need = self.planner.need(&footprint);
        let evicted = self.make_room(&name, &footprint, need.total())?;
        for model in evicted {
            tracing::info!(model = %model.name, "unloading to make room for {name}");
            self.release_and_wait(model).await;
        }
        let started = Instant::now();
        let engine = blocking(move || MlxEngine::load(&path))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tracing::info!(
            model = %name,
            load_s = format!("{:.2}", started.elapsed().as_secs_f64()),
            planned_gb = format!("{:.2}", need.total() as f64 / 1e9),
            context = need.context,
            "model loaded"
        );
        Ok(Arc::new(LoadedModel {
            name,
            engine: Arc::new(engine),
            model,
            need,
            loaded_at: SystemTime::now(),
            in_flight: AtomicUsize::new(0),
            idle: Mutex::new(Idle {
                last_used: Instant::now(),
                expires: None,
            }),
            keep_alive: Mutex::new(self.settings.keep_alive),
        }))
    }

    /// Records what `name` will take and takes out the idle models that must go for it
    /// to fit, least recently used first; refuses if it cannot fit.
    fn make_room(
        &self,
        name: &str,
        footprint: &Footprint,
        bytes: u64,
    ) -> Result<Vec<Arc<LoadedModel>>, ManagerError> {
        let mut slots = self.slots.lock().expect("slots lock");
        let others = |slots: &HashMap<String, Slot>| -> Vec<Resident> {
            slots
                .iter()
                .filter(|(n, _)| n.as_str() != name)
                .map(|(n, s)| resident(n, s))
                .collect()
        };
        let mut evicted = Vec::new();
        loop {
            let residents = others(&slots);
            let verdict = self.planner.verdict(footprint, &residents);
            let too_many = residents.len() >= self.settings.max_loaded;
            let fits = verdict.fit != crate::planner::Fit::WontFit;
            if fits && !too_many {
                break;
            }
            let Some(victim) = least_recently_used_idle(&slots, name) else {
                let message = if fits {
                    format!(
                        "{} models are loaded (the most allowed) and all are busy; try again \
                         when one is idle",
                        residents.len()
                    )
                } else {
                    verdict.explain(name)
                };
                slots.remove(name);
                return Err(if fits {
                    ManagerError::Busy(message)
                } else {
                    ManagerError::InsufficientMemory(message)
                });
            };
            if let Some(Slot::Ready(model)) = slots.remove(&victim) {
                evicted.push(model);
            }
        }
        if let Some(Slot::Loading { bytes: b, .. }) = slots.get_mut(name) {
            *b = bytes;
        }
        Ok(evicted)
    }

    fn unload_expired(self: &Arc<Self>) {
        let now = Instant::now();
        let mut slots = self.slots.lock().expect("slots lock");
        let expired: Vec<String> = slots
            .iter()
            .filter_map(|(name, slot)| match slot {
                Slot::Ready(m) if m.in_flight() == 0 => {
                    let idle = m.idle.lock().expect("idle lock");
                    idle.expires.is_some_and(|t| t <= now).then(|| name.clone())
                }
                _ => None,
            })
            .collect();
        let models: Vec<_> = expired
            .iter()
            .filter_map(|name| match slots.remove(name) {
                Some(Slot::Ready(m)) => Some(m),
                _ => None,
            })
            .collect();
        drop(slots);
        for model in models {
            tracing::info!(model = %model.name, "keep-alive expired: unloading");
            self.release(model);
        }
    }

    /// Drops `model` on the blocking pool once no one else holds it (its thread is joined
    /// there, not on an async worker).
    fn release(&self, model: Arc<LoadedModel>) {
        self.runtime.spawn_blocking(move || drop_when_unique(model));
    }

    async fn release_and_wait(&self, model: Arc<LoadedModel>) {
        let _ = self
            .runtime
            .spawn_blocking(move || drop_when_unique(model))
            .await;
    }
}

/// Waits (briefly: holders are leases finishing their drop) until `model` is held only
/// here, then drops it, joining its thread and freeing its memory.
fn drop_when_unique(model: Arc<LoadedModel>) {
    let started = Instant::now();
    while Arc::strong_count(&model) > 1 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let name = model.name.clone();
    drop(model);
    tracing::info!(model = %name, "model unloaded");
}

fn least_recently_used_idle(slots: &HashMap<String, Slot>, except: &str) -> Option<String> {
    slots
        .iter()
        .filter_map(|(name, slot)| match slot {
            Slot::Ready(m) if name != except && m.in_flight() == 0 => {
                Some((m.idle.lock().expect("idle lock").last_used, name.clone()))
            }
            _ => None,
        })
        .min()
        .map(|(_, name)| name)
}

/// Runs `work` on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking work does not panic")
}
