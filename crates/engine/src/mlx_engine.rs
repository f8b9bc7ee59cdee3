//! Loading a model onto MLX: its files read and its weights evaluated on the model's own
//! thread, then served by a [`ModelEngine`] over the [`MlxBackend`].

use std::path::Path;

use crate::embed::EmbeddingRecipe;
use crate::engine::{ModelInfo, Serving};
use crate::engine_kind::EngineKind;
use crate::mlx_backend::MlxBackend;
use crate::model::Model;
use crate::model_engine::{Loaded, ModelEngine};
use crate::reply::ReplySyntax;
use crate::sampling_defaults::SamplingDefaults;
use crate::Result;

/// Loads models onto MLX.
pub struct MlxEngine;

impl MlxEngine {
    /// Loads the model at `path` (an MLX directory or a GGUF file) with the default
    /// [`Serving`] and waits until it is ready.
    pub fn load(path: &Path) -> Result<ModelEngine> {
        MlxEngine::load_serving(path, Serving::default())
    }

    /// Loads the model at `path` to serve as `serving` says: the scheduler runs up to
    /// `serving.sequences` generations at once, with a key/value pool of that many
    /// contexts (shared with the prefix cache).
    pub fn load_serving(path: &Path, serving: Serving) -> Result<ModelEngine> {
        let owned = path.to_owned();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        ModelEngine::start(&name, move || {
            let model = Model::load(&owned)?;
            let config = model.transformer.config().clone();
            let serving = Serving::new(
                serving.sequences,
                serving.context.min(config.max_position_embeddings as usize),
            );
            let info = ModelInfo {
                weights_bytes: model.transformer.nbytes(),
                kv_bytes_per_token: model.transformer.kv_bytes_per_token(),
                load_time: model.load_time,
                notes: model.notes.clone(),
                eos_token_ids: model.eos_token_ids.clone(),
                sampling_defaults: SamplingDefaults::of(&owned),
                embedding: EmbeddingRecipe::of(&owned),
                reply_syntax: ReplySyntax::detect(model.chat_template.as_ref(), |token| {
                    model.tokenizer.token_id(token).is_some()
                }),
                serving,
                engine: EngineKind::Mlx,
                config,
                path: owned,
            };
            Ok(Loaded {
                tokenizer: model.tokenizer.clone(),
                chat_template: model.chat_template.clone(),
                backend: MlxBackend::new(
                    model,
                    serving.context,
                    serving.context * serving.sequences,
                ),
                info,
            })
        })
    }
}
