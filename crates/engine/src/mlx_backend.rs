//! The MLX backend of the scheduler: the model's forward passes over MLX arrays. A prompt
//! is read into a cache of its own (started from the prefix cache when a kept sequence
//! shares its beginning); once read, the sequence joins the left-padded batch that every
//! decode step runs as one forward pass. A sequence that ends leaves the batch at the
//! next step, and the keys and values of what it read and wrote are copied into the prefix
//! cache, which shrinks (least recently used first) whenever the running sequences need
//! the room: together they never hold more than the key/value pool the memory planner
//! gave the model.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use perch_mlx::Array;

use crate::batch::BatchLayout;
use crate::batch_cache::BatchCache;
use crate::embed::{EmbedRequest, EmbedTask, EmbeddingRecipe};
use crate::kv_cache::LayerCache;
use crate::logits::Logits;
use crate::model::Model;
use crate::prefix_cache::PrefixCache;
use crate::scheduler::backend::{Backend, SeqId};
use crate::text::tokenizer::Tokenizer;
use crate::{EngineError, Result};

/// One layer's kept keys and values, per layer.
type Snapshot = Vec<(Array, Array)>;

/// A model and the key/value state of its sequences.
pub struct MlxBackend {
    model: Model,
    context: usize,
    /// Key/value positions the planner gave the model, over all its sequences.
    pool_tokens: usize,
    kv_bytes_per_token: usize,
    batch: BatchCache,
    /// The sequence of each batch row (`None` once released: it leaves at the next step).
    batch_rows: Vec<Option<SeqId>>,
    /// Sequences reading their prompt, each with its own cache.
    reading: HashMap<SeqId, Vec<LayerCache>>,
    prefix: PrefixCache<Snapshot>,
}

impl MlxBackend {
    /// A backend for `model`, serving sequences of up to `context` tokens with a key/value
    /// pool of `pool_tokens` positions (running sequences and the prefix cache together).
    pub fn new(model: Model, context: usize, pool_tokens: usize) -> MlxBackend {
        let kv_bytes_per_token = model.transformer.kv_bytes_per_token().max(1);
        MlxBackend {
            model,
            context,
            pool_tokens,
            kv_bytes_per_token,
            batch: BatchCache::default(),
            batch_rows: Vec::new(),
            reading: HashMap::new(),
            prefix: PrefixCache::default(),
        }
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Positions the running sequences' caches take (their preallocated room included).
    fn running_tokens(&self) -> usize {
        let reading: usize = self
            .reading
            .values()
            .flat_map(|layers| layers.iter().map(LayerCache::nbytes))
            .sum();
        (self.batch.nbytes() + reading) / self.kv_bytes_per_token
    }

    /// Drops kept sequences until the pool has room for the running ones.
    fn fit_prefix_cache(&mut self) {
        let room = self.pool_tokens.saturating_sub(self.running_tokens());
        self.prefix.shrink_to(room);
    }

    /// Keeps `snapshot` of `tokens` in the prefix cache, its copy queued now so the
    /// storage it was cut from can go.
    fn keep(&mut self, tokens: &[u32], snapshot: Snapshot) {
        let arrays: Vec<&Array> = snapshot.iter().flat_map(|(k, v)| [k, v]).collect();
        if perch_mlx::async_eval(&arrays).is_err() {
            return;
        }
        self.prefix.insert(tokens.to_vec(), snapshot);
        self.fit_prefix_cache();
    }

    /// Host time to build one decode step's graph for a batch of `rows` sequences, each
    /// after reading `prompt`, measured `steps` times with the device idle: the intrinsic
    /// per-step overhead, free of contention with the computation that overlaps it during
    /// generation. For benchmarks.
    pub fn graph_build_times(
        &mut self,
        prompt: &[u32],
        rows: usize,
        steps: usize,
    ) -> Result<Vec<Duration>> {
        let ids: Vec<SeqId> = (0..rows as SeqId).map(|i| SeqId::MAX - i).collect();
        let mut firsts = Vec::new();
        for &id in &ids {
            self.start(id, prompt)?;
            let logits = self
                .prefill(id, prompt, true)?
                .expect("the last chunk gives logits");
            firsts.push(logits.to_array()?.argmax(-1, false)?);
        }
        let mut tokens = Array::concatenate(&firsts.iter().collect::<Vec<_>>(), 0)?;
        let mut times = Vec::with_capacity(steps);
        for _ in 0..steps {
            perch_mlx::eval(&[&tokens])?;
            let started = Instant::now();
            let logits = self.decode(&ids, &tokens)?;
            let next = logits.to_array()?.argmax(-1, false)?;
            times.push(started.elapsed());
            tokens = next;
        }
        perch_mlx::eval(&[&tokens])?;
        for &id in &ids {
            self.release(id, &[]);
        }
        Ok(times)
    }
}

impl Backend for MlxBackend {
    type Embedding = EmbedTask;

    fn vocab(&self) -> usize {
        self.model.transformer.config().vocab_size as usize
    }

    fn context(&self) -> usize {
        self.context
    }

    fn tokenizer(&self) -> &Tokenizer {
        &self.model.tokenizer
    }

    fn eos_token_ids(&self) -> &[u32] {
        &self.model.eos_token_ids
    }

    fn start(&mut self, id: SeqId, prompt: &[u32]) -> Result<usize> {
        let (cache, reused) = match self.prefix.lookup(prompt) {
            Some(hit) => (
                hit.snapshot
                    .iter()
                    .map(|kept| LayerCache::resume(kept, hit.tokens as i32))
                    .collect::<Result<_>>()?,
                hit.tokens,
            ),
            None => (self.model.transformer.new_cache(), 0),
        };
        self.reading.insert(id, cache);
        self.fit_prefix_cache();
        Ok(reused)
    }

    fn prefill(&mut self, id: SeqId, tokens: &[u32], last: bool) -> Result<Option<Logits>> {
        let cache = self
            .reading
            .get_mut(&id)
            .ok_or_else(|| EngineError::StepFailed(format!("sequence {id} was not started")))?;
        let ids = Array::from_slice(tokens, &[1, tokens.len() as i32])?;
        let logits =
            self.model
                .transformer
                .forward(&ids, cache, &BatchLayout::unpadded(1), false)?;
        let result = if last {
            Some(Logits::device(logits.reshape(&[1, -1])?))
        } else {
            // The logits are dropped unevaluated; only the keys and values are computed.
            perch_mlx::eval(&cache.iter().flat_map(LayerCache::state).collect::<Vec<_>>())?;
            None
        };
        self.fit_prefix_cache();
        Ok(result)
    }

    fn decode(&mut self, rows: &[SeqId], tokens: &Array) -> Result<Logits> {
        let keep: Vec<usize> = (0..self.batch_rows.len())
            .filter(|&i| self.batch_rows[i].is_some_and(|id| rows.contains(&id)))
            .collect();
        self.batch.retain(&keep)?;
        self.batch_rows = keep.iter().map(|&i| self.batch_rows[i]).collect();
        for &id in rows {
            if self.batch_rows.contains(&Some(id)) {
                continue;
            }
            let cache = self.reading.remove(&id).ok_or_else(|| {
                EngineError::StepFailed(format!("sequence {id} has not read its prompt"))
            })?;
            self.batch.push(cache)?;
            self.batch_rows.push(Some(id));
        }
        if !self
            .batch_rows
            .iter()
            .copied()
            .eq(rows.iter().copied().map(Some))
        {
            return Err(EngineError::StepFailed(
                "the batch's rows are not in the order asked for".into(),
            ));
        }
        let count = rows.len() as i32;
        let layout = self.batch.layout();
        let logits = self.model.transformer.forward(
            &tokens.reshape(&[count, 1])?,
            self.batch.layers_mut(),
            &layout,
            false,
        )?;
        self.fit_prefix_cache();
        Ok(Logits::device(logits.reshape(&[count, -1])?))
    }

    fn release(&mut self, id: SeqId, tokens: &[u32]) {
        if let Some(cache) = self.reading.remove(&id) {
            let copied: Result<Snapshot> = cache
                .iter()
                .map(|layer| layer.copy_row(0, 0, tokens.len() as i32))
                .collect();
            if let (false, Ok(snapshot)) = (tokens.is_empty(), copied) {
                self.keep(tokens, snapshot);
            }
            return;
        }
        let Some(row) = self.batch_rows.iter().position(|&r| r == Some(id)) else {
            return;
        };
        if !tokens.is_empty() {
            if let Ok(snapshot) = self.batch.copy_row(row, tokens.len()) {
                self.keep(tokens, snapshot);
            }
        }
        // The row leaves at the next step; its storage goes now if no row is left.
        self.batch_rows[row] = None;
        if self.batch_rows.iter().all(Option::is_none) {
            self.batch = BatchCache::default();
            self.batch_rows.clear();
        }
    }

    fn reset(&mut self) {
        self.batch = BatchCache::default();
        self.batch_rows.clear();
        self.reading.clear();
    }

    fn forget_kept(&mut self) {
        self.prefix.shrink_to(0);
    }

    fn kv_bytes(&self) -> usize {
        (self.running_tokens() + self.prefix.tokens()) * self.kv_bytes_per_token
    }

    fn begin_embedding(
        &mut self,
        request: EmbedRequest,
        recipe: EmbeddingRecipe,
    ) -> Result<EmbedTask> {
        Ok(EmbedTask::new(request, recipe))
    }

    fn embed_chunk(
        &mut self,
        embedding: &mut EmbedTask,
        tokens: usize,
    ) -> Result<Option<Vec<Vec<f32>>>> {
        embedding.step(&self.model, tokens)
    }
}
