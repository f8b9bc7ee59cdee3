//! What the scheduler asks of a model backend: the steps it is made of. A backend keeps
//! each sequence's key/value state (and its prefix cache), reads a chunk of a sequence's
//! prompt, runs one decode step for a batch of sequences, and forgets a sequence. It hands
//! back logits; sampling, stop strings, constraints and streaming stay in the scheduler,
//! so every backend samples and streams alike.
//!
//! Token ids travel as MLX arrays, and logits as [`Logits`]: MLX arrays, lazy where the
//! backend computes on MLX (so a backend that queues its work can overlap the next step's
//! graph with this one's computation), or host values where the backend computes them
//! there.

use perch_mlx::Array;

use crate::embed::{EmbedRequest, EmbeddingRecipe};
use crate::logits::Logits;
use crate::text::tokenizer::Tokenizer;
use crate::{EngineError, Result};

/// A sequence's id, unique for the backend's life.
pub type SeqId = u64;

/// The logits of a step that read prompt chunks: the rows' `[rows, vocab]` logits (none
/// without rows), and for each chunk the `[1, vocab]` logits that follow it if it
/// ends its prompt.
pub type StepLogits = (Option<Logits>, Vec<Option<Logits>>);

/// The next part of a sequence's prompt, read within a decode step.
pub struct PromptChunk<'a> {
    /// The sequence.
    pub id: SeqId,
    /// Its prompt tokens to read now.
    pub tokens: &'a [u32],
    /// Whether they end the prompt (the logits after them are wanted).
    pub last: bool,
}

/// The steps a model is driven by.
pub trait Backend {
    /// An embedding request in progress.
    type Embedding;

    /// Width of the logits (the model's vocabulary).
    fn vocab(&self) -> usize;

    /// Longest sequence (prompt and generated tokens) the model runs.
    fn context(&self) -> usize;

    /// The tokenizer, for turning tokens into text.
    fn tokenizer(&self) -> &Tokenizer;

    /// Ids that end generation.
    fn eos_token_ids(&self) -> &[u32];

    /// Starts sequence `id` for `prompt`: reuses the key/value state of the longest prefix
    /// it has kept, and says how many leading tokens that covers (fewer than the whole
    /// prompt, so a token is left whose logits start the answer).
    fn start(&mut self, id: SeqId, prompt: &[u32]) -> Result<usize>;

    /// Runs `tokens`, the next part of sequence `id`'s prompt. With `last` (they end the
    /// prompt) returns the logits that follow them, `[1, vocab]`, possibly still being
    /// computed; otherwise returns once their keys and values are computed.
    fn prefill(&mut self, id: SeqId, tokens: &[u32], last: bool) -> Result<Option<Logits>>;

    /// One decode step: each sequence of `rows`, in that order, is fed its token from
    /// `tokens` (`[rows]`, possibly still being computed); returns `[rows, vocab]` logits.
    /// Rows are the sequences of the previous step still running, in the same order,
    /// then sequences whose prompt has just been read.
    fn decode(&mut self, rows: &[SeqId], tokens: &Array) -> Result<Logits>;

    /// Whether [`Self::decode`] returns with the step computed (llama.cpp) rather than
    /// queued (MLX): the scheduler then hands out the last step's tokens before starting
    /// the next, since it cannot while the step computes.
    fn decodes_synchronously(&self) -> bool {
        false
    }

    /// Whether one batch can read several sequences' prompt chunks beside the decoding
    /// rows (llama.cpp): the scheduler then reads prompts with
    /// [`Self::decode_with_chunks`], and otherwise a chunk in a pass of its own with
    /// [`Self::prefill`].
    fn batches_prompts(&self) -> bool {
        false
    }

    /// One decode step as [`Self::decode`] that also reads `chunks` of prompts in the
    /// same call (llama.cpp: one batch, which it runs as the rows with each chunk's first
    /// token, then the chunks' rest): the rows' logits (none when `rows` is empty: a pass
    /// reading only prompts), and for each chunk that ends its prompt the `[1, vocab]`
    /// logits that follow it. Asked only of a backend that [`Self::batches_prompts`].
    fn decode_with_chunks(
        &mut self,
        _rows: &[SeqId],
        _tokens: &Array,
        _chunks: &[PromptChunk<'_>],
    ) -> Result<StepLogits> {
        Err(EngineError::StepFailed(
            "this backend reads each prompt chunk in a pass of its own".into(),
        ))
    }

    /// Forgets sequence `id`, which holds the keys and values of `tokens` (its prompt and
    /// all but its last generated token, or the part of its prompt read so far): the
    /// backend may keep them for later prompts that start the same way.
    fn release(&mut self, id: SeqId, tokens: &[u32]);

    /// Forgets every sequence (after a step failed).
    fn reset(&mut self);

    /// Lets go of every kept prefix, for measurements that start from nothing (as
    /// llama-bench's do: kept sequences left by earlier runs share the device's attention
    /// work and memory with the one measured).
    fn forget_kept(&mut self);

    /// Bytes of key/value state held now: the running sequences' and the prefix cache's
    /// (kept sequences saved to host memory among them).
    fn kv_bytes(&self) -> usize;

    /// Starts embedding `request` (its inputs checked) the way `recipe` says.
    fn begin_embedding(
        &mut self,
        request: EmbedRequest,
        recipe: EmbeddingRecipe,
    ) -> Result<Self::Embedding>;

    /// Runs about `tokens` more tokens of `embedding`; its vectors once all are done.
    fn embed_chunk(
        &mut self,
        embedding: &mut Self::Embedding,
        tokens: usize,
    ) -> Result<Option<Vec<Vec<f32>>>>;
}
