//! Kept sequences saved to host memory when their stream is wanted, as llama-server's
//! prompt cache does: with every stream running or keeping something, a new prompt takes a
//! kept sequence's stream over and what it held past their shared prefix would be lost; a
//! later prompt continuing it (a conversation whose stream went to others, a request
//! repeated) gets it back from here instead of reading it all again. Saved sequences take at
//! most a share of the KV cache's size (`SAVED_KV_DIVISOR`), least recently used going
//! first; restoring one writes only its own cells, so it costs far less than reading them.
//! Copies between streams go through the same reading and writing of a stream's cells.

use std::time::Instant;

use llama_cpp_2::context::session::{LlamaStateSeqFlags, SeqState};
use llama_cpp_2::context::LlamaContext;
use perch_engine::prefix_cache::{Candidate, PrefixCache};

use crate::failed;

/// Sequences' KV cells in host memory, by their tokens.
pub(crate) struct SavedSequences {
    cache: PrefixCache<SeqState>,
    /// Most tokens held.
    limit: usize,
}

impl SavedSequences {
    /// Room for `limit` tokens.
    pub fn new(limit: usize) -> SavedSequences {
        SavedSequences {
            cache: PrefixCache::default(),
            limit,
        }
    }

    /// Tokens held.
    pub fn tokens(&self) -> usize {
        self.cache.tokens()
    }

    /// Whether a sequence of `tokens` can be saved (it fits, and no saved one holds it
    /// already).
    pub fn would_keep(&self, tokens: &[u32]) -> bool {
        tokens.len() <= self.limit && !self.cache.covers(tokens)
    }

    /// Keeps `cells`, the state after `tokens`, making room first.
    pub fn keep(&mut self, tokens: Vec<u32>, cells: SeqState) {
        if !self.would_keep(&tokens) {
            return;
        }
        self.cache.shrink_to(self.limit - tokens.len());
        tracing::trace!(
            tokens = tokens.len(),
            bytes = cells.byte_len(),
            "saved a sequence"
        );
        self.cache.insert(tokens, cells);
    }

    /// The saved sequence sharing the longest prefix with `prompt`, if any shares a token.
    pub fn best<'a>(&'a self, prompt: &'a [u32]) -> Option<Candidate<'a, SeqState>> {
        self.cache.best(prompt)
    }

    /// Writes the saved sequence sharing the longest prefix with `prompt` into stream
    /// `stream` (whatever it held goes); the prompt tokens it holds. It stays saved.
    pub fn restore(
        &mut self,
        context: &mut LlamaContext<'_>,
        prompt: &[u32],
        stream: i32,
    ) -> perch_engine::Result<usize> {
        let Some(hit) = self.cache.lookup(prompt) else {
            return Ok(0);
        };
        let started = Instant::now();
        write_cells(context, hit.snapshot, stream)?;
        tracing::trace!(
            shared = hit.tokens,
            bytes = hit.snapshot.byte_len(),
            us = started.elapsed().as_micros(),
            "restored a saved sequence"
        );
        Ok(hit.tokens)
    }

    /// Lets go of every saved sequence.
    pub fn clear(&mut self) {
        self.cache.shrink_to(0);
    }
}

/// The cells stream `stream` holds, read to host memory.
pub(crate) fn read_cells(
    context: &LlamaContext<'_>,
    stream: i32,
) -> perch_engine::Result<SeqState> {
    context
        .state_seq_get(stream, LlamaStateSeqFlags::empty())
        .map_err(|e| failed("reading a sequence's cells", e))
}

/// Writes `cells` into stream `stream` (emptied first: only the cells in use move, where
/// llama.cpp's own copy between streams moves all `context` of them, 15 ms against 0.5 ms
/// for a 102-token turn with the test model).
pub(crate) fn write_cells(
    context: &mut LlamaContext<'_>,
    cells: &SeqState,
    stream: i32,
) -> perch_engine::Result<()> {
    let _ = context.clear_kv_cache_seq(Some(stream as u32), None, None);
    context
        .state_seq_set(cells, stream)
        .map_err(|e| failed("writing a sequence's cells", e))
}
