//! Embeddings on llama.cpp: a second context on the model, made on the first embedding
//! request, that pools each input's final hidden states (after the last norm, as the MLX
//! engine pools them) by the model card's recipe — the last token's or the mean — and
//! hands them back for Perch to cut to `dimensions` and normalise. Inputs are read whole,
//! one after another, as many at a time as the scheduler's chunk allows (at least one).

use llama_cpp_2::context::params::LlamaPoolingType;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use perch_engine::embed::{finish, EmbedRequest, EmbeddingRecipe, Pooling};

use crate::context::{context_size, ModelContext};
use crate::{failed, threads};

/// An embedding request in progress.
pub struct EmbedTask {
    request: EmbedRequest,
    recipe: EmbeddingRecipe,
    vectors: Vec<Vec<f32>>,
}

impl EmbedTask {
    pub(crate) fn new(request: EmbedRequest, recipe: EmbeddingRecipe) -> EmbedTask {
        EmbedTask {
            vectors: Vec::with_capacity(request.inputs.len()),
            request,
            recipe,
        }
    }

    /// Embeds the next inputs, about `tokens` tokens of them; every vector, in order, once
    /// all are done.
    pub(crate) fn step(
        &mut self,
        model: &mut ModelContext,
        tokens: usize,
    ) -> perch_engine::Result<Option<Vec<Vec<f32>>>> {
        // Room for at least a prefill chunk's worth, so short inputs after short inputs
        // reuse the context; longer ones make a larger one.
        let longest = self
            .request
            .inputs
            .iter()
            .map(Vec::len)
            .max()
            .unwrap_or(1)
            .max(perch_engine::prefill_pacer::PrefillPacer::MAX);
        let pooling = match self.recipe.pooling {
            Pooling::LastToken => LlamaPoolingType::Last,
            Pooling::Mean => LlamaPoolingType::Mean,
        };
        let threads = threads() as i32;
        let context = model.embedder(longest, |params| {
            params
                .with_embeddings(true)
                .with_pooling_type(pooling)
                .with_n_ctx(context_size(longest))
                .with_n_batch(longest as u32)
                .with_n_ubatch(longest as u32)
                .with_n_seq_max(1)
                .with_n_threads(threads)
                .with_n_threads_batch(threads)
        })?;
        let mut budget = tokens.max(1);
        while let Some(input) = self.request.inputs.get(self.vectors.len()) {
            if budget == 0 {
                return Ok(None);
            }
            budget = budget.saturating_sub(input.len());
            context.clear_kv_cache();
            let mut batch = LlamaBatch::new(input.len(), 1);
            for (i, &token) in input.iter().enumerate() {
                batch
                    .add(LlamaToken(token as i32), i as i32, &[0], true)
                    .map_err(|e| failed("filling a batch", e))?;
            }
            context
                .decode(&mut batch)
                .map_err(|e| failed("embedding", e))?;
            let pooled = context
                .embeddings_seq_ith(0)
                .map_err(|e| failed("reading an embedding", e))?
                .to_vec();
            self.vectors.push(finish(
                pooled,
                self.request.dimensions,
                self.recipe.normalize,
            ));
        }
        Ok(Some(std::mem::take(&mut self.vectors)))
    }
}
