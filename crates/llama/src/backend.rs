//! The llama.cpp backend of Perch's scheduler. One context per model, its KV cache split
//! into one stream of `context` cells per sequence id (as llama-server's slots are), each
//! attended only by its own sequence. A prompt is read in the chunks the scheduler asks
//! for; a decode step is one llama.cpp batch holding each running sequence's last token
//! (and, while a prompt is being read beside them, that prompt's next chunk), in stream
//! order so that consecutive streams share a pass over the weights, and the logits of
//! every row come back in host memory, `[rows, vocab]`, for Perch's sampler.
//!
//! The prefix cache keeps finished sequences in their streams: a new prompt that
//! continues one takes its stream over, cut back to what they share, and reads only the
//! rest (`streams` says which stream a prompt gets). A kept sequence costs nothing while
//! it waits — its cells are its own — and goes when its stream is wanted, saved to host
//! memory first (`saved`), from where a later prompt that continues it gets it back.

use std::collections::HashMap;
use std::path::Path;

use llama_cpp_2::context::params::KvCacheType;
use llama_cpp_2::context::session::SeqState;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::token::LlamaToken;
use perch_engine::embed::{EmbedRequest, EmbeddingRecipe};
use perch_engine::format::gguf::GgufText;
use perch_engine::logits::Logits;
use perch_engine::prefix_cache::{PrefixCache, SAVED_KV_DIVISOR};
use perch_engine::scheduler::backend::{Backend, PromptChunk, SeqId, StepLogits};
use perch_engine::text::tokenizer::Tokenizer;
use perch_engine::{EngineError, Serving};
use perch_mlx::{Array, Dtype};

use crate::context::{context_size, ModelContext};
use crate::embedding::EmbedTask;
use crate::saved::{read_cells, write_cells, SavedSequences};
use crate::streams::{copy_at, place, Held, Placement, TAIL_WORTH_KEEPING};
use crate::{failed, threads};

/// Most prompt tokens the scheduler reads in one step: a llama.cpp batch holds them
/// beside a decode step's rows.
const CHUNK: usize = perch_engine::prefill_pacer::PrefillPacer::MAX;

/// A running sequence: its stream (its llama.cpp sequence id) and how many positions it
/// holds.
struct Slot {
    id: i32,
    len: usize,
}

/// What one row of a step's batch is: a running sequence's next token, or a chunk of a
/// prompt (index into the step's chunks).
#[derive(Clone, Copy)]
enum Entry {
    Row(usize),
    Chunk(usize),
}

/// A GGUF model in llama.cpp and the state of its sequences.
pub struct LlamaCppBackend {
    model: ModelContext,
    tokenizer: Tokenizer,
    eos: Vec<u32>,
    vocab: usize,
    context: usize,
    /// Streams (llama.cpp sequence ids): as many as sequences may run at once.
    streams: usize,
    kv_bytes_per_token: usize,
    running: HashMap<SeqId, Slot>,
    /// Kept sequences, each in its own stream.
    prefix: PrefixCache<i32>,
    /// Kept sequences whose stream was wanted, in host memory.
    saved: SavedSequences,
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
        // A stream per sequence that may run at once, within llama.cpp's limit of 256.
        let streams = serving.sequences.clamp(1, 256);
        let threads = threads() as i32;
        let model = ModelContext::load(path, |params| {
            params
                .with_n_ctx(context_size(serving.context * streams))
                .with_n_batch((CHUNK + streams) as u32)
                .with_n_ubatch((CHUNK + streams) as u32)
                .with_n_seq_max(streams as u32)
                .with_kv_unified(false)
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
        let mut backend = LlamaCppBackend {
            tokenizer: text.tokenizer.clone(),
            eos: text.eos_token_ids.clone(),
            vocab,
            context: serving.context,
            streams,
            // Keys and values in float16, every layer.
            kv_bytes_per_token: 2
                * 2
                * (c.num_hidden_layers * c.num_key_value_heads * c.head_dim) as usize,
            running: HashMap::new(),
            prefix: PrefixCache::default(),
            saved: SavedSequences::new(streams * serving.context / SAVED_KV_DIVISOR),
            batch: LlamaBatch::new(CHUNK + streams, 1),
            model,
        };
        backend.warm_up()?;
        Ok(backend)
    }

    /// Reads a few tokens once and forgets them, as llama-server does on loading: the
    /// first batch pays for faulting in the mapped weights and waking the threads (8
    /// tokens in 134 ms instead of 30 ms with the test model here), which would otherwise
    /// fall on the first request and make prompts look slow to the prefill pacer.
    fn warm_up(&mut self) -> perch_engine::Result<()> {
        const TOKENS: i32 = 8;
        self.batch.clear();
        for position in 0..TOKENS {
            self.batch
                .add(LlamaToken(0), position, &[0], position + 1 == TOKENS)
                .map_err(|e| failed("filling a batch", e))?;
        }
        let context = self.model.context();
        context
            .decode(&mut self.batch)
            .map_err(|e| failed("warming up", e))?;
        context.clear_kv_cache();
        Ok(())
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

    /// Cuts stream `id` back to its first `tokens` positions (0: empties it).
    fn truncate(&mut self, id: i32, tokens: usize) {
        let _ = self
            .model
            .context()
            .clear_kv_cache_seq(Some(id as u32), Some(tokens as u32), None);
    }

    /// Takes the sequence kept in stream `stream` out of the prefix cache, for a new
    /// sequence that keeps its first `keeps` tokens; its tokens and cells, read to host
    /// memory, when it holds a tail worth saving past those.
    fn displace(&mut self, stream: i32, keeps: usize) -> Option<(Vec<u32>, SeqState)> {
        let (tokens, _) = self.prefix.take(|&s| s == stream)?;
        if tokens.len() < keeps + TAIL_WORTH_KEEPING || !self.saved.would_keep(&tokens) {
            return None;
        }
        // Not saving it costs a later prompt time, never this one its answer.
        match read_cells(self.model.context(), stream) {
            Ok(cells) => Some((tokens, cells)),
            Err(e) => {
                tracing::warn!("{e}");
                None
            }
        }
    }

    /// Readies stream `stream` for a new sequence that keeps its first `keeps` tokens,
    /// saving the sequence kept there (see [`Self::displace`]).
    fn lose_kept(&mut self, stream: i32, keeps: usize) {
        if let Some((tokens, cells)) = self.displace(stream, keeps) {
            self.saved.keep(tokens, cells);
        }
    }

    /// Takes the place `placement` gives a new sequence: the stream it runs in and the
    /// prompt tokens that holds.
    fn take_place(&mut self, placement: Placement) -> (i32, usize) {
        match placement {
            Placement::Empty(stream) => (stream as i32, 0),
            Placement::TakeOver { stream, shared } => {
                let stream = stream as i32;
                self.lose_kept(stream, shared);
                (stream, self.reuse(stream, shared))
            }
            Placement::Copy {
                from,
                into,
                shared,
                moves,
            } => {
                let (from, into) = (from as i32, into as i32);
                // What `into` kept (if anything) is replaced.
                self.lose_kept(into, 0);
                let copied = read_cells(self.model.context(), from)
                    .and_then(|cells| write_cells(self.model.context(), &cells, into));
                if let Err(e) = copied {
                    // The prompt is read whole in the emptied stream.
                    tracing::warn!("{e}");
                    self.truncate(into, 0);
                    return (into, 0);
                }
                let run = match moves {
                    true => {
                        self.prefix.rekey(|&s| s == from, into);
                        from
                    }
                    false => {
                        self.prefix.touch(|&s| s == from);
                        into
                    }
                };
                (run, self.reuse(run, shared))
            }
        }
    }

    /// Restores into the stream `placement` fills the saved sequence sharing the most
    /// with `prompt`, saving what that stream kept; the stream and the prompt tokens it
    /// holds.
    fn restore(&mut self, placement: Placement, prompt: &[u32]) -> (i32, usize) {
        let stream = placement.stream() as i32;
        // Read before the restore and saved after it, so that saving it cannot push out
        // the sequence being restored.
        let displaced = self.displace(stream, 0);
        let restored = self
            .saved
            .restore(self.model.context(), prompt, stream)
            .unwrap_or_else(|e| {
                // `reuse` empties the stream and the prompt is read whole.
                tracing::warn!("{e}");
                0
            });
        if let Some((tokens, cells)) = displaced {
            self.saved.keep(tokens, cells);
        }
        (stream, self.reuse(stream, restored))
    }

    /// Cuts stream `stream` back to its first `shared` tokens for a new sequence; the
    /// tokens it may reuse. A sliding-window model's window layers keep only a sequence's
    /// last window when its cells are copied or saved, so cut back further they lack cells
    /// the prompt attends: then the stream is emptied and the prompt read whole.
    fn reuse(&mut self, stream: i32, shared: usize) -> usize {
        self.truncate(stream, shared);
        if shared > 0 && self.model.context().kv_cache_seq_pos_min(stream) != 0 {
            self.truncate(stream, 0);
            return 0;
        }
        shared
    }

    /// What each stream holds, as `prompt` sees it.
    fn streams_for(&self, prompt: &[u32]) -> Vec<Held> {
        let mut held = vec![Held::Empty; self.streams];
        for slot in self.running.values() {
            held[slot.id as usize] = Held::Running;
        }
        for kept in self.prefix.candidates(prompt) {
            held[*kept.snapshot as usize] = Held::Kept {
                shared: kept.shared,
                tokens: kept.tokens,
                last_used: kept.last_used,
            };
        }
        held
    }

    /// Runs a step: each sequence of `rows` fed its token from `tokens`, and each of
    /// `chunks`, all in one batch ordered by stream. Returns the rows' `[rows, vocab]`
    /// logits (none without rows), and those of each chunk that ends a prompt.
    fn step(
        &mut self,
        rows: &[SeqId],
        tokens: &[u32],
        chunks: &[PromptChunk<'_>],
    ) -> perch_engine::Result<StepLogits> {
        let mut order: Vec<(i32, Entry)> = Vec::with_capacity(rows.len() + chunks.len());
        for (row, &id) in rows.iter().enumerate() {
            order.push((self.slot(id)?.id, Entry::Row(row)));
        }
        for (chunk, c) in chunks.iter().enumerate() {
            order.push((self.slot(c.id)?.id, Entry::Chunk(chunk)));
        }
        order.sort_by_key(|&(stream, _)| stream);
        // Where each row's logits, and each chunk's last, are in the batch.
        let mut row_at = vec![0; rows.len()];
        let mut chunk_end = vec![0; chunks.len()];
        let mut fed_to = Vec::with_capacity(order.len());
        self.batch.clear();
        for (stream, entry) in order {
            let (id, fed, logits): (SeqId, &[u32], bool) = match entry {
                Entry::Row(r) => (rows[r], std::slice::from_ref(&tokens[r]), true),
                Entry::Chunk(c) => (chunks[c].id, chunks[c].tokens, chunks[c].last),
            };
            let start = self.slot(id)?.len;
            for (i, &token) in fed.iter().enumerate() {
                let last = i + 1 == fed.len();
                self.batch
                    .add(
                        LlamaToken(token as i32),
                        (start + i) as i32,
                        &[stream],
                        logits && last,
                    )
                    .map_err(|e| failed("filling a batch", e))?;
            }
            let end = self.batch.n_tokens() as usize - 1;
            match entry {
                Entry::Row(r) => row_at[r] = end,
                Entry::Chunk(c) => chunk_end[c] = end,
            }
            fed_to.push((id, fed.len()));
        }
        self.model
            .context()
            .decode(&mut self.batch)
            .map_err(|e| failed("decoding", e))?;
        for (id, fed) in fed_to {
            if let Some(slot) = self.running.get_mut(&id) {
                slot.len += fed;
            }
        }
        let rows_logits = match rows.is_empty() {
            true => None,
            false => Some(self.logits_at(&row_at)?),
        };
        let mut after = Vec::with_capacity(chunks.len());
        for (chunk, &end) in chunks.iter().zip(&chunk_end) {
            after.push(match chunk.last {
                true => Some(self.logits_at(&[end])?),
                false => None,
            });
        }
        Ok((rows_logits, after))
    }

    /// The logits of the batch's `entries`, `[entries, vocab]`, copied out of llama.cpp's
    /// buffer into host memory.
    fn logits_at(&mut self, entries: &[usize]) -> perch_engine::Result<Logits> {
        let context = self.model.context();
        let mut values = Vec::with_capacity(entries.len() * self.vocab);
        for &entry in entries {
            values.extend_from_slice(context.get_logits_ith(entry as i32));
        }
        Logits::host(values, self.vocab)
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
        let placement = place(&self.streams_for(prompt), copy_at)
            .ok_or_else(|| EngineError::StepFailed("every llama.cpp sequence is running".into()))?;
        let (stream, reused) = match self.saved.best(prompt) {
            Some(saved) if saved.shared >= placement.shared() + copy_at(saved.tokens) => {
                self.restore(placement, prompt)
            }
            _ => self.take_place(placement),
        };
        self.running.insert(
            id,
            Slot {
                id: stream,
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
    ) -> perch_engine::Result<Option<Logits>> {
        let chunk = PromptChunk { id, tokens, last };
        let (_, mut after) = self.step(&[], &[], &[chunk])?;
        Ok(after.pop().flatten())
    }

    fn decode(&mut self, rows: &[SeqId], tokens: &Array) -> perch_engine::Result<Logits> {
        let tokens = tokens.astype(Dtype::Uint32)?.to_vec::<u32>()?;
        self.step(rows, &tokens, &[])?.0.ok_or_else(no_rows)
    }

    fn decodes_synchronously(&self) -> bool {
        true
    }

    fn batches_prompts(&self) -> bool {
        true
    }

    fn decode_with_chunks(
        &mut self,
        rows: &[SeqId],
        tokens: &Array,
        chunks: &[PromptChunk<'_>],
    ) -> perch_engine::Result<StepLogits> {
        let tokens = tokens.astype(Dtype::Uint32)?.to_vec::<u32>()?;
        self.step(rows, &tokens, chunks)
    }

    fn release(&mut self, id: SeqId, tokens: &[u32]) {
        let Some(slot) = self.running.remove(&id) else {
            return;
        };
        // Positions past what is kept (the last token fed, unread) go; the rest is kept.
        self.truncate(slot.id, tokens.len());
        for stream in self.prefix.insert(tokens.to_vec(), slot.id) {
            self.truncate(stream, 0);
        }
    }

    fn reset(&mut self) {
        let running: Vec<i32> = self.running.drain().map(|(_, s)| s.id).collect();
        for stream in running {
            self.truncate(stream, 0);
        }
    }

    fn forget_kept(&mut self) {
        for stream in self.prefix.shrink_to(0) {
            self.truncate(stream, 0);
        }
        self.saved.clear();
    }

    fn kv_bytes(&self) -> usize {
        (self.running_tokens() + self.prefix.tokens() + self.saved.tokens())
            * self.kv_bytes_per_token
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

/// The error of a decode step asked for with no rows.
fn no_rows() -> EngineError {
    EngineError::StepFailed("a decode step with no sequences".into())
}
