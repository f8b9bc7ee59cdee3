//! A loaded model and a request's lease on it. The lease counts the request in flight;
//! when the last one ends the model's idle time starts, and with a keep-alive of zero
//! (or an unload asked for while it was busy) the model goes at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use perch_engine::Engine;

use super::{Inner, Slot};
use crate::keep_alive::KeepAlive;
use crate::planner::Need;
use crate::store::LocalModel;

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
    /// Requests in flight; changed only under the manager's lock.
    pub(super) in_flight: AtomicUsize,
    idle: Mutex<Idle>,
    loaded_at: Instant,
}

/// How long a model just loaded is neither expired nor evicted, so the requests that
/// waited for it lease it before anything can take it away.
const JUST_LOADED: Duration = Duration::from_secs(2);

/// When an idle model goes.
struct Idle {
    last_used: Instant,
    /// `None`: not idle, or kept forever.
    expires: Option<Instant>,
    /// Kept by requests that name no keep-alive (set by a load).
    standing: KeepAlive,
    /// Unload when the requests in flight end.
    unload_requested: bool,
}

impl LoadedModel {
    pub(super) fn new(
        name: String,
        engine: Arc<dyn Engine>,
        model: LocalModel,
        need: Need,
        standing: KeepAlive,
    ) -> LoadedModel {
        LoadedModel {
            name,
            engine,
            model,
            need,
            in_flight: AtomicUsize::new(0),
            idle: Mutex::new(Idle {
                last_used: Instant::now(),
                // The requests that waited for the load get to lease it first.
                expires: standing.deadline(Instant::now() + JUST_LOADED),
                standing,
                unload_requested: false,
            }),
            loaded_at: Instant::now(),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// When it will be unloaded if no request comes (`None`: never, or busy now).
    pub fn expires_at(&self) -> Option<SystemTime> {
        if self.in_flight() > 0 {
            return None;
        }
        let left = self
            .idle()
            .expires?
            .saturating_duration_since(Instant::now());
        Some(SystemTime::now() + left)
    }

    /// The context it is served with: the planned one.
    pub fn context_length(&self) -> u64 {
        self.need.context
    }

    pub(super) fn last_used(&self) -> Instant {
        self.idle().last_used
    }

    pub(super) fn expired(&self, now: Instant) -> bool {
        self.idle().expires.is_some_and(|t| t <= now)
    }

    /// Whether it finished loading moments ago (see [`JUST_LOADED`]).
    pub(super) fn just_loaded(&self) -> bool {
        self.loaded_at.elapsed() < JUST_LOADED
    }

    /// Keeps it for `keep_alive` after requests that name none; an explicit load also
    /// withdraws an unload asked for while it was busy.
    pub(super) fn set_standing_keep_alive(&self, keep_alive: KeepAlive) {
        let mut idle = self.idle();
        idle.standing = keep_alive;
        idle.unload_requested = false;
    }

    pub(super) fn request_unload(&self) {
        self.idle().unload_requested = true;
    }
}

/// A request's hold on a loaded model: while any lease lives the model stays loaded.
pub struct ModelLease {
    loaded: Arc<LoadedModel>,
    keep_alive: Option<KeepAlive>,
    manager: Arc<Inner>,
}

impl ModelLease {
    /// Counts a request on `loaded`; the caller holds the manager's lock.
    pub(super) fn new(
        loaded: Arc<LoadedModel>,
        keep_alive: Option<KeepAlive>,
        manager: Arc<Inner>,
    ) -> ModelLease {
        loaded.in_flight.fetch_add(1, Ordering::SeqCst);
        loaded.idle().expires = None;
        ModelLease {
            loaded,
            keep_alive,
            manager,
        }
    }

    /// The model.
    pub fn model(&self) -> &Arc<LoadedModel> {
        &self.loaded
    }
}

impl Drop for ModelLease {
    fn drop(&mut self) {
        let mut state = self.manager.lock();
        let left = self.loaded.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        if left > 0 {
            return;
        }
        let now = Instant::now();
        let expires = {
            let mut idle = self.loaded.idle();
            idle.last_used = now;
            idle.expires = if idle.unload_requested {
                Some(now)
            } else {
                self.keep_alive.unwrap_or(idle.standing).deadline(now)
            };
            idle.expires
        };
        if expires.is_some_and(|t| t <= now) {
            let ours = matches!(
                state.slots.get(&self.loaded.name),
                Some(Slot::Ready(m)) if Arc::ptr_eq(m, &self.loaded)
            );
            if ours {
                if let Some(Slot::Ready(model)) = state.slots.remove(&self.loaded.name) {
                    self.manager.release(&mut state, model);
                }
            }
        }
    }
}

/// Waits (briefly: the other holders are leases finishing their drop) until `model` is
/// held only here, then drops it, joining its thread and freeing its memory. Blocking.
pub(super) fn drop_when_unique(model: Arc<LoadedModel>) {
    let started = Instant::now();
    while Arc::strong_count(&model) > 1 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let name = model.name.clone();
    drop(model);
    tracing::info!(model = %name, "model unloaded");
}
