//! Loading one model: read its facts from the headers, plan it, make room by unloading
//! idle models (only if that is enough), load the engine on the blocking pool, and put
//! the result in its slot. A guard makes sure the slot never stays `Loading` — if the
//! task fails or panics, waiters get an error, not a hang.

use std::sync::Arc;
use std::time::Instant;

use perch_engine::Serving;
use tokio::sync::watch;

use super::engine_choice::{engine_for, load_on};
use super::lease::LoadedModel;
use super::{Inner, LoadOutcome, ManagerError, Slot};
use crate::planner::{Fit, Footprint, Need};
use crate::store::LocalModel;

/// Starts loading `model` into the slot numbered `id`; the outcome goes to `done`.
pub(super) fn spawn(
    inner: Arc<Inner>,
    model: LocalModel,
    id: u64,
    done: watch::Sender<LoadOutcome>,
) {
    let name = model.name().to_owned();
    let mut guard = SlotGuard {
        inner: inner.clone(),
        name: name.clone(),
        id,
        done: Some(done),
    };
    tokio::spawn(async move {
        let result = load(&inner, model, id).await;
        guard.finish(result);
    });
}

/// Settles a `Loading` slot exactly once, even if the task never finishes.
struct SlotGuard {
    inner: Arc<Inner>,
    name: String,
    id: u64,
    done: Option<watch::Sender<LoadOutcome>>,
}

impl SlotGuard {
    fn finish(&mut self, result: Result<Arc<LoadedModel>, ManagerError>) {
        let Some(done) = self.done.take() else { return };
        let mut state = self.inner.lock();
        let ours = matches!(
            state.slots.get(&self.name),
            Some(Slot::Loading { id, .. }) if *id == self.id
        );
        match &result {
            Ok(model) if ours => {
                state
                    .slots
                    .insert(self.name.clone(), Slot::Ready(model.clone()));
            }
            Ok(model) => {
                self.inner.release(&mut state, model.clone());
            }
            Err(_) if ours => {
                state.slots.remove(&self.name);
            }
            Err(_) => {}
        }
        drop(state);
        let _ = done.send(Some(result));
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let name = self.name.clone();
        self.finish(Err(ManagerError::LoadFailed {
            name,
            message: "the load stopped unexpectedly".into(),
        }));
    }
}

async fn load(
    inner: &Arc<Inner>,
    model: LocalModel,
    id: u64,
) -> Result<Arc<LoadedModel>, ManagerError> {
    let name = model.name().to_owned();
    let failed = |message: String| ManagerError::LoadFailed {
        name: name.clone(),
        message,
    };
    let engine =
        engine_for(&model, inner.settings().gguf_engine).map_err(|e| failed(e.to_string()))?;
    let path = model.load_path();
    let facts = blocking(move || perch_engine::inspect::inspect_on(&path, engine))
        .await
        .map_err(&failed)?
        .map_err(|e| failed(e.to_string()))?;
    let footprint = Footprint::from(&facts);
    let (evicted, need) = make_room(inner, &name, id, &footprint)?;
    // Load only once the models making room are gone from memory.
    for freed in evicted {
        let _ = freed.await;
    }
    let started = Instant::now();
    let serving = Serving::new(need.sequences as usize, need.context as usize);
    let loaded = blocking({
        let path = model.load_path();
        move || load_on(engine, &path, serving)
    })
    .await
    .map_err(&failed)?
    .map_err(|e| failed(e.to_string()))?;
    tracing::info!(
        model = %name,
        load_s = format!("{:.2}", started.elapsed().as_secs_f64()),
        planned_gb = format!("{:.2}", need.total() as f64 / 1e9),
        context = need.context,
        sequences = need.sequences,
        %engine,
        "model loaded"
    );
    Ok(Arc::new(LoadedModel::new(
        name,
        Arc::new(loaded),
        model,
        need,
        inner.settings().keep_alive,
    )))
}

/// Takes out the idle models that must go for `name` to fit with all the sequences it is
/// planned for (least recently used first; with fewer when even then only fewer fit),
/// returning handles that end when their memory is freed and what `name` will take,
/// which it records — or, when it cannot fit even once every idle model is gone, or too
/// many busy models are loaded, refuses and takes out none.
fn make_room(
    inner: &Arc<Inner>,
    name: &str,
    id: u64,
    footprint: &Footprint,
) -> Result<(Vec<tokio::task::JoinHandle<()>>, Need), ManagerError> {
    let mut state = inner.lock();
    let busy: Vec<_> = state
        .planned(name, 0)
        .into_iter()
        .filter(|r| !r.idle)
        .collect();
    let planner = inner.planner();
    let full = planner.need(footprint);
    let max_loaded = inner.settings().max_loaded;
    let best = planner.verdict(footprint, &busy);
    if best.fit == Fit::WontFit {
        return Err(ManagerError::InsufficientMemory(best.explain(name)));
    }
    let busy_models = state.residents(name).iter().filter(|r| !r.idle).count();
    if busy_models >= max_loaded {
        return Err(ManagerError::Busy(format!(
            "{} models are loaded (the most allowed) and all are answering requests; try \
             again when one is idle",
            busy_models
        )));
    }
    let mut idle: Vec<(std::time::Instant, String)> = state
        .slots
        .iter()
        .filter_map(|(n, slot)| match slot {
            Slot::Ready(m) if n != name && m.in_flight() == 0 && !m.just_loaded() => {
                Some((m.last_used(), n.clone()))
            }
            _ => None,
        })
        .collect();
    idle.sort();
    let mut evicted = Vec::new();
    let mut freed = 0;
    let mut victims = idle.into_iter();
    loop {
        let models = state.residents(name).len();
        let planned = state.planned(name, freed);
        let verdict = planner.verdict(footprint, &planned);
        let fits = verdict.fit != Fit::WontFit && verdict.need.sequences == full.sequences;
        if fits && models < max_loaded {
            break;
        }
        let Some((_, victim)) = victims.next() else {
            break;
        };
        if let Some(Slot::Ready(model)) = state.slots.remove(&victim) {
            tracing::info!(model = %model.name, "unloading to make room for {name}");
            freed += model.need.resident();
            evicted.push(inner.release(&mut state, model));
        }
    }
    let need = planner.verdict(footprint, &state.planned(name, freed)).need;
    if let Some(Slot::Loading { id: own, bytes, .. }) = state.slots.get_mut(name) {
        if *own == id {
            *bytes = need.resident();
        }
    }
    Ok((evicted, need))
}

/// Runs `work` on the blocking pool; a panic there becomes an error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the work stopped: {e}"))
}
