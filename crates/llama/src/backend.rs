//! The llama.cpp backend of Perch's scheduler. One context per model, with a unified KV
//! cache of `sequences × context` cells and a llama.cpp sequence id per running request.
//! A prompt is read in the chunks the scheduler asks for; a decode step is one llama.cpp
//! batch holding each running sequence's last token (and, while a prompt is being read
//! beside them, that prompt's next chunk, so the chunk shares the step's pass over the
//! weights), and the logits of every row come back as one `[rows, vocab]` array for
//! Perch's sampler.
//!
//! The prefix cache keeps finished sequences parked under their own sequence ids: a new
//! prompt that starts the same way copies the parked cells (`seq_cp`, which in a unified
//! cache shares them rather than copying) and reads only the rest. There are as many ids
//! as sequences may run at once, so parked ones use the ids running ones leave free (as
//! llama-server's idle slots keep their last conversation): every parked cell widens
//! every step's attention. Parked sequences give up their cells, least recently used
//! first, as running ones need the room, and their ids when a new prompt needs one —
//! the prompt's own prefix last: when it is the only one left, the prompt takes it over,
//! cut back to what they share.

use std::collections::HashMap;
use std::path::Path;

use llama_cpp_2::context::params::KvCacheType;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use perch_engine::embed::{EmbedRequest, EmbeddingRecipe};
use perch_engine::format::gguf::GgufText;
use perch_engine::prefix_cache::PrefixCache;
use perch_engine::scheduler::backend::{Backend, PromptChunk, SeqId};
use perch_engine::text::tokenizer::Tokenizer;
use perch_engine::{EngineError, Serving};
use perch_mlx::{Array, Dtype};

use crate::context::{context_size, ModelContext};
use crate::embedding::EmbedTask;
use crate::{failed, threads};

/// Most prompt tokens the scheduler reads in one step: a llama.cpp batch holds them
/// beside a decode step's rows.
const CHUNK: usize = perch_engine::prefill_pacer::PrefillPacer::MAX;

/// A running sequence: its llama.cpp sequence id and how many positions it holds.
struct Slot {
    id: i32,
    len: usize,
}

/// A GGUF model in llama.cpp and the state of its sequences.
pub struct LlamaCppBackend {
    model: ModelContext,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    vocab: usize,
    context: usize,
    /// KV cells for running and kept sequences together.
    pool_tokens: usize,
    kv_bytes_per_token: usize,
    running: HashMap<SeqId, Slot>,
    /// llama.cpp sequence ids not in use.
    free: Vec<i32>,
    /// Kept sequences, each parked under its own llama.cpp sequence id.
    prefix: PrefixCache<i32>,
    batch: LlamaBatch<'static>,
}

impl LlamaCppBackend {
    /// Loads the model at `path`, whose header `text` describes, to serve as `serving`
    /// says.
    pub fn load(
        path: &Path,
        text: &GgufText,
        serving: Serving,
    ) -> perch_engine::Result<LlamaCppBackend> {
        let sequences = serving.sequences;
        // As many sequences, running and parked together, as may run at once (within
        // llama.cpp's limit of 256), as llama-server keeps one per slot: every parked one
        // widens the attention of every step in a unified cache.
        let ids = sequences.clamp(1, 256);
        let pool_tokens = serving.context * sequences;
        let threads = threads() as i32;
        let model = ModelContext::load(path, |params| {
            params
                .with_n_ctx(context_size(pool_tokens))
                .with_n_batch((CHUNK + sequences) as u32)
                .with_n_ubatch((CHUNK + sequences) as u32)
                .with_n_seq_max(ids as u32)
                .with_kv_unified(true)
                .with_type_k(KvCacheType::F16)
                .with_type_v(KvCacheType::F16)
                .with_n_threads(threads)
                .with_n_threads_batch(threads)
        })?;
        let vocab = model.model().n_vocab() as usize;
        if vocab != text.config.vocab_size as usize {
            return Err(EngineError::InvalidModel(format!(
                "llama.cpp reads a vocabulary of {vocab} tokens, the header says {}",
                text.config.vocab_size
            )));
        }
        let c = &text.config;
        Ok(LlamaCppBackend {
            tokenizer: text.tokenizer.clone(),
            eos: text.eos_token_ids.clone(),
            vocab,
            context: serving.context,
            pool_tokens,
            // Keys and values in float16, every layer.
            kv_bytes_per_token: 2
                * 2
                * (c.num_hidden_layers * c.num_key_value_heads * c.head_dim) as usize,
            running: HashMap::new(),
            free: (0..ids as i32).rev().collect(),
            prefix: PrefixCache::default(),
            batch: LlamaBatch::new(CHUNK + sequences, 1),
            model,
        })
    }

    /// Bytes of the weights (as mapped from the file).
    pub fn weights_bytes(&self) -> usize {
        self.model.model().size() as usize
    }

    /// Bytes of KV cache per token of context.
    pub fn kv_bytes_per_token(&self) -> usize {
        self.kv_bytes_per_token
    }

    /// Positions the running sequences hold.
    fn running_tokens(&self) -> usize {
        self.running.values().map(|s| s.len).sum()
    }

    /// Gives back the cells of the parked sequence `id`, and the id.
    fn unpark(&mut self, id: i32) {
        let _ = self
            .model
            .context()
            .clear_kv_cache_seq(Some(id as u32), None, None);
        self.free.push(id);
    }

    /// Drops parked sequences until the running ones, with `more` positions to come, fit
    /// in the pool.
    fn make_room(&mut self, more: usize) {
        let room = self
            .pool_tokens
            .saturating_sub(self.running_tokens() + more);
        for id in self.prefix.shrink_to(room) {
            self.unpark(id);
        }
    }

    /// Runs the batch, making room and trying again when the cache has no slot for it.
    fn decode_batch(&mut self) -> perch_engine::Result<()> {
        match self.model.context().decode(&mut self.batch) {
            Err(llama_cpp_2::DecodeError::NoKvCacheSlot) => {
                while let Some(id) = self.prefix.evict_oldest() {
                    self.unpark(id);
                }
                self.model
                    .context()
                    .decode(&mut self.batch)
                    .map_err(|e| failed("decoding", e))
            }
            other => other.map_err(|e| failed("decoding", e)),
        }
    }

    /// Adds to the batch each sequence of `rows` fed its token from `tokens`, all giving
    /// logits.
    fn add_rows(&mut self, rows: &[SeqId], tokens: &Array) -> perch_engine::Result<()> {
        let tokens = tokens.astype(Dtype::Uint32)?.to_vec::<u32>()?;
        for (&id, &token) in rows.iter().zip(&tokens) {
            let slot = self.slot(id)?;
            let (seq, pos) = (slot.id, slot.len as i32);
            self.batch
                .add(LlamaToken(token as i32), pos, &[seq], true)
                .map_err(|e| failed("filling a batch", e))?;
        }
        Ok(())
    }

    /// Adds to the batch `tokens`, the next part of sequence `id`'s prompt; with `last`
    /// the final one gives logits.
    fn add_chunk(&mut self, id: SeqId, tokens: &[u32], last: bool) -> perch_engine::Result<()> {
        let (seq, start) = {
            let slot = self.slot(id)?;
            (slot.id, slot.len)
        };
        for (i, &token) in tokens.iter().enumerate() {
            let final_one = last && i + 1 == tokens.len();
            self.batch
                .add(
                    LlamaToken(token as i32),
                    (start + i) as i32,
                    &[seq],
                    final_one,
                )
                .map_err(|e| failed("filling a batch", e))?;
        }
        Ok(())
    }

    /// Counts `tokens` more positions held by sequence `id`.
    fn advance(&mut self, id: SeqId, tokens: usize) {
        if let Some(slot) = self.running.get_mut(&id) {
            slot.len += tokens;
        }
    }

    /// Counts one more position held by each of `rows`.
    fn advance_rows(&mut self, rows: &[SeqId]) {
        for &id in rows {
            self.advance(id, 1);
        }
    }

    /// The logits of batch entry `entry` as a `[1, vocab]` array.
    fn logits_of(&mut self, entry: usize) -> perch_engine::Result<Array> {
        let logits = self.model.context().get_logits_ith(entry as i32).to_vec();
        Ok(Array::from_slice(&logits, &[1, self.vocab as i32])?)
    }

    /// The logits of batch entries `0..rows` as one `[rows, vocab]` array.
    fn logits(&mut self, rows: usize) -> perch_engine::Result<Array> {
        let mut all = Vec::with_capacity(rows * self.vocab);
        for row in 0..rows {
            all.extend_from_slice(self.model.context().get_logits_ith(row as i32));
        }
        Ok(Array::from_slice(&all, &[rows as i32, self.vocab as i32])?)
    }

    fn slot(&self, id: SeqId) -> perch_engine::Result<&Slot> {
        self.running
            .get(&id)
            .ok_or_else(|| EngineError::StepFailed(format!("sequence {id} was not started")))
    }
}

impl Backend for LlamaCppBackend {
    type Embedding = EmbedTask;

    fn vocab(&self) -> usize {
        self.vocab
    }

    fn context(&self) -> usize {
        self.context
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    fn eos_token_ids(&self) -> &[u32] {
        &self.eos
    }

    fn start(&mut self, id: SeqId, prompt: &[u32]) -> perch_engine::Result<usize> {
        let hit = self.prefix.lookup(prompt).map(|h| (*h.snapshot, h.tokens));
        if self.free.is_empty() {
            if let Some(parked) = self
                .prefix
                .evict_oldest_but(|&s| Some(s) == hit.map(|h| h.0))
            {
                self.unpark(parked);
            }
        }
        let (slot, reused) = match (self.free.pop(), hit) {
            (Some(slot), Some((parked, tokens))) => {
                self.model
                    .context()
                    .copy_kv_cache_seq(parked, slot, Some(0), Some(tokens as u32))
                    .map_err(|e| failed("reusing a prefix", e))?;
                (slot, tokens)
            }
            (Some(slot), None) => (slot, 0),
            // Every id is taken and the only kept sequence is the one this prompt
            // continues: it becomes this sequence, cut back to the shared prefix.
            (None, Some((parked, tokens))) => {
                self.prefix.take(|&s| s == parked);
                let _ = self.model.context().clear_kv_cache_seq(
                    Some(parked as u32),
                    Some(tokens as u32),
                    None,
                );
                (parked, tokens)
            }
            (None, None) => {
                return Err(EngineError::StepFailed(
                    "no llama.cpp sequence is free".into(),
                ))
            }
        };
        self.running.insert(
            id,
            Slot {
                id: slot,
                len: reused,
            },
        );
        Ok(reused)
    }

    fn prefill(
        &mut self,
        id: SeqId,
        tokens: &[u32],
        last: bool,
    ) -> perch_engine::Result<Option<Array>> {
        self.make_room(tokens.len());
        self.batch.clear();
        self.add_chunk(id, tokens, last)?;
        self.decode_batch()?;
        self.advance(id, tokens.len());
        if !last {
            return Ok(None);
        }
        Ok(Some(self.logits_of(tokens.len() - 1)?))
    }

    fn decode(&mut self, rows: &[SeqId], tokens: &Array) -> perch_engine::Result<Array> {
        self.make_room(rows.len());
        self.batch.clear();
        self.add_rows(rows, tokens)?;
        self.decode_batch()?;
        self.advance_rows(rows);
        self.logits(rows.len())
    }

    fn decodes_synchronously(&self) -> bool {
        true
    }

    fn decode_with_chunks(
        &mut self,
        rows: &[SeqId],
        tokens: &Array,
        chunks: &[PromptChunk<'_>],
    ) -> Option<perch_engine::Result<(Array, Vec<Option<Array>>)>> {
        let mut step = || {
            let prompt_tokens: usize = chunks.iter().map(|c| c.tokens.len()).sum();
            self.make_room(rows.len() + prompt_tokens);
            self.batch.clear();
            self.add_rows(rows, tokens)?;
            for chunk in chunks {
                self.add_chunk(chunk.id, chunk.tokens, chunk.last)?;
            }
            self.decode_batch()?;
            self.advance_rows(rows);
            let mut entry = rows.len();
            let mut after = Vec::with_capacity(chunks.len());
            for chunk in chunks {
                self.advance(chunk.id, chunk.tokens.len());
                entry += chunk.tokens.len();
                after.push(match chunk.last {
                    true => Some(self.logits_of(entry - 1)?),
                    false => None,
                });
            }
            Ok((self.logits(rows.len())?, after))
        };
        Some(step())
    }

    fn release(&mut self, id: SeqId, tokens: &[u32]) {
        let Some(slot) = self.running.remove(&id) else {
            return;
        };
        if tokens.is_empty() {
            self.unpark(slot.id);
            return;
        }
        // Positions past what is kept (the last token fed, unread) go; the rest is parked.
        let _ = self.model.context().clear_kv_cache_seq(
            Some(slot.id as u32),
            Some(tokens.len() as u32),
            None,
        );
        for id in self.prefix.insert(tokens.to_vec(), slot.id) {
            self.unpark(id);
        }
        self.make_room(0);
    }

    fn reset(&mut self) {
        let running: Vec<i32> = self.running.drain().map(|(_, s)| s.id).collect();
        for id in running {
            self.unpark(id);
        }
    }

    fn forget_kept(&mut self) {
        for id in self.prefix.shrink_to(0) {
            self.unpark(id);
        }
    }

    fn kv_bytes(&self) -> usize {
        (self.running_tokens() + self.prefix.tokens()) * self.kv_bytes_per_token
    }

    fn begin_embedding(
        &mut self,
        request: EmbedRequest,
        recipe: EmbeddingRecipe,
    ) -> perch_engine::Result<EmbedTask> {
        Ok(EmbedTask::new(request, recipe))
    }

    fn embed_chunk(
        &mut self,
        embedding: &mut EmbedTask,
        tokens: usize,
    ) -> perch_engine::Result<Option<Vec<Vec<f32>>>> {
        embedding.step(&mut self.model, tokens)
    }
}
