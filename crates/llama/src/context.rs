//! A llama.cpp model with a context on it, held together: `llama-cpp-2` ties a context's
//! lifetime to its model's, and the backend keeps both for as long as the model is loaded.
//! The model is boxed (its address never moves) and the context is always dropped first.
//! The llama.cpp backend itself is initialized once per process.

use std::mem::ManuallyDrop;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

use crate::failed;

/// The process's llama.cpp backend (its logs sent to `tracing`).
pub(crate) fn llama_backend() -> perch_engine::Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| failed("starting the backend", e))
}

/// A loaded model, the context that generates, and (made on the first embedding
/// request) one that embeds.
pub(crate) struct ModelContext {
    // Both contexts are dropped by hand before `model`, which they borrow.
    context: ManuallyDrop<LlamaContext<'static>>,
    embedder: Option<ManuallyDrop<LlamaContext<'static>>>,
    model: Box<LlamaModel>,
}

impl ModelContext {
    /// Loads the model at `path` (weights memory-mapped, every layer on the GPU where
    /// there is one) and makes a context with `params`.
    pub fn load(
        path: &Path,
        params: impl FnOnce(LlamaContextParams) -> LlamaContextParams,
    ) -> perch_engine::Result<ModelContext> {
        let backend = llama_backend()?;
        let model_params = LlamaModelParams::default().with_n_gpu_layers(u32::MAX);
        let model = Box::new(
            LlamaModel::load_from_file(backend, path, &model_params)
                .map_err(|e| failed("loading the model", e))?,
        );
        let context = new_context(&model, params(LlamaContextParams::default()))?;
        // SAFETY: the context borrows the boxed model, whose address is stable and which
        // outlives it: `Drop` drops the context before the box.
        let context: LlamaContext<'static> = unsafe { std::mem::transmute(context) };
        Ok(ModelContext {
            context: ManuallyDrop::new(context),
            embedder: None,
            model,
        })
    }

    /// The model.
    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// The context.
    pub fn context(&mut self) -> &mut LlamaContext<'static> {
        &mut self.context
    }

    /// The embedding context, made with `params` the first time (and again when one batch
    /// of it holds fewer than `tokens` tokens: an input is read in one batch).
    pub fn embedder(
        &mut self,
        tokens: usize,
        params: impl FnOnce(LlamaContextParams) -> LlamaContextParams,
    ) -> perch_engine::Result<&mut LlamaContext<'static>> {
        if let Some(old) = self.embedder.as_mut() {
            if (old.n_batch().min(old.n_ubatch()).min(old.n_ctx()) as usize) < tokens {
                // SAFETY: taken out of `embedder` right after, never used again.
                unsafe { ManuallyDrop::drop(old) };
                self.embedder = None;
            }
        }
        if self.embedder.is_none() {
            let context = new_context(&self.model, params(LlamaContextParams::default()))?;
            // SAFETY: as in `load`: the box outlives the context, dropped first in `Drop`.
            let context: LlamaContext<'static> = unsafe { std::mem::transmute(context) };
            self.embedder = Some(ManuallyDrop::new(context));
        }
        Ok(self.embedder.as_mut().expect("made above"))
    }
}

fn new_context(
    model: &LlamaModel,
    params: LlamaContextParams,
) -> perch_engine::Result<LlamaContext<'_>> {
    model
        .new_context(llama_backend()?, params)
        .map_err(|e| failed("making a context", e))
}

impl Drop for ModelContext {
    fn drop(&mut self) {
        // SAFETY: each dropped once, here, before `model` (which they borrow) is dropped.
        unsafe { ManuallyDrop::drop(&mut self.context) };
        if let Some(embedder) = self.embedder.as_mut() {
            unsafe { ManuallyDrop::drop(embedder) };
        }
    }
}

/// `tokens` as a context size.
pub(crate) fn context_size(tokens: usize) -> Option<NonZeroU32> {
    NonZeroU32::new(u32::try_from(tokens).unwrap_or(u32::MAX))
}
