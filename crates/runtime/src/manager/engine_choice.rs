//! Which engine a model in the store runs on, and loading it there: an MLX directory on
//! MLX; a GGUF file on its catalog entry's engine if it names one, else on the settings'
//! `gguf_engine` (llama.cpp unless changed).

use std::path::Path;

use perch_engine::{EngineKind, ModelEngine, Serving};

use crate::catalog;
use crate::store::LocalModel;

/// The engine `model` runs on when GGUF files run on `gguf_engine`.
pub fn engine_for(model: &LocalModel, gguf_engine: EngineKind) -> perch_engine::Result<EngineKind> {
    let path = model.load_path();
    let named = catalog::find(model.name()).and_then(|entry| entry.engine);
    let wanted = named.or((!path.is_dir()).then_some(gguf_engine));
    EngineKind::for_model(&path, wanted)
}

/// Loads the model at `path` onto `engine` to serve as `serving` says (blocking until it
/// is ready).
pub fn load_on(
    engine: EngineKind,
    path: &Path,
    serving: Serving,
) -> perch_engine::Result<ModelEngine> {
    match engine {
        EngineKind::Mlx => perch_engine::MlxEngine::load_serving(path, serving),
        EngineKind::LlamaCpp => perch_llama::load(path, serving),
    }
}
