//! The scheduler: one per loaded model, on the model's own thread, sharing the model
//! between every request that names it. Requests wait in arrival order; the
//! [`SchedulePolicy`] says when the next one starts. Started prompts are read in chunks
//! sized by time, one chunk between two decode steps, taking turns (so a short prompt is
//! not held up behind a long one; where the backend batches prompts, short ones waiting
//! together are read in the same step), and once read a sequence joins the running
//! batch: every step feeds each running sequence its last token in one batched forward,
//! samples every row in one batched sampling step (each row with its own parameters,
//! penalties and constraint mask), and routes each row's token to its sequence. A
//! finished or cancelled sequence leaves the batch at once and its keys and values may
//! stay in the backend's prefix cache for the next prompt that starts alike.
//!
//! Steps overlap with the device: the next step's forward is queued before the tokens of
//! the last one are read, and its sampling graph is built while the forward computes (a
//! constraint's mask needs the row's previous token). Embedding requests are read like
//! prompts, in chunks between decode steps.

pub mod backend;
pub mod policy;
mod sequence;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use perch_mlx::{Array, Dtype};

use crate::embed::Embeddings;
use crate::generate::{
    Event, FinishReason, Finished, GenerateRequest, GeneratedToken, Phase, TokenLogprob,
};
use crate::job_queue::{Job, JobQueue, Work};
use crate::logits::Logits;
use crate::prefill_pacer::PrefillPacer;
use crate::sampler::{self, Sampled};
use crate::{EngineError, Result};

use backend::{Backend, PromptChunk, SeqId};
use policy::{Occupancy, SchedulePolicy};
use sequence::{Caller, Progress, Sequence};

/// What is being read now: a prompt, or the inputs of an embedding request.
enum Reading<E> {
    Prompt(Box<Sequence>),
    Embedding(EmbeddingInProgress<E>),
}

/// An embedding request being read.
struct EmbeddingInProgress<E> {
    task: E,
    prompt_tokens: usize,
    reply: tokio::sync::oneshot::Sender<Result<Embeddings>>,
    cancel: Arc<AtomicBool>,
    span: tracing::Span,
    arrived: Instant,
    started: Instant,
}

/// Tokens sampled by one step (or at the end of one prompt), not yet fed back.
struct Pending {
    rows: Vec<SeqId>,
    sampled: Sampled,
    /// Whether they were read and handed to their sequences.
    read: bool,
    /// When the decode step that made them was queued (none for a prompt's first token).
    queued: Option<Instant>,
}

/// A decode step queued: its rows, their logits, the host time it took to build, and
/// when it was queued (none when it also read a prompt chunk: its time is no decode
/// step's).
struct Step {
    rows: Vec<SeqId>,
    logits: Logits,
    build_time: Duration,
    queued: Option<Instant>,
}

/// What a request run by [`Scheduler::generate_now`] gave: its tokens and its summary.
pub struct Generated {
    /// The tokens generated, in order.
    pub tokens: Vec<GeneratedToken>,
    /// How it ended.
    pub finished: Finished,
}

/// Shares one model between requests; see the module documentation.
pub struct Scheduler<B: Backend> {
    backend: B,
    policy: SchedulePolicy,
    pacer: PrefillPacer,
    jobs: Arc<JobQueue>,
    waiting: VecDeque<Job>,
    /// Being read, taking turns a chunk at a time.
    reading: VecDeque<Reading<B::Embedding>>,
    /// Generating, in the order of the backend's batch.
    decoding: Vec<Sequence>,
    pending: Vec<Pending>,
    /// How long a decode step takes (a moving average, from queueing to reading).
    decode_step: Option<Duration>,
    /// What the backend holds, for [`crate::Engine::kv_bytes_in_use`].
    kv_bytes: Arc<AtomicUsize>,
    next_id: SeqId,
}

impl<B: Backend> Scheduler<B> {
    /// A scheduler of `backend` taking its requests from `jobs`, saying in `kv_bytes`
    /// what key/value state it holds.
    pub(crate) fn new(
        backend: B,
        policy: SchedulePolicy,
        jobs: Arc<JobQueue>,
        kv_bytes: Arc<AtomicUsize>,
    ) -> Self {
        Scheduler {
            backend,
            policy,
            pacer: PrefillPacer::default(),
            jobs,
            waiting: VecDeque::new(),
            reading: VecDeque::new(),
            decoding: Vec::new(),
            pending: Vec::new(),
            decode_step: None,
            kv_bytes,
            next_id: 0,
        }
    }

    /// A scheduler of `backend` that runs requests on the caller's thread, with
    /// [`Self::generate_now`].
    pub fn on_this_thread(backend: B, policy: SchedulePolicy) -> Self {
        Scheduler::new(backend, policy, Arc::default(), Arc::default())
    }

    /// Runs until the job queue is closed and everything in it has ended.
    pub(crate) fn run(mut self) {
        while self.take_jobs() {
            self.round();
        }
    }

    /// Runs `requests` on this thread, together, to their ends; what each gave, in
    /// order. For benchmarks, which time the model with nothing else in the process, and
    /// tests that need requests to arrive at once.
    pub fn generate_now(&mut self, requests: Vec<GenerateRequest>) -> Result<Vec<Generated>> {
        let mut streams = Vec::with_capacity(requests.len());
        for request in requests {
            let (events, received) = tokio::sync::mpsc::unbounded_channel();
            let job = Job {
                id: self.jobs.next_id(),
                arrived: request.arrived.unwrap_or_else(Instant::now),
                work: Work::Generate { request, events },
                cancel: Arc::default(),
                span: tracing::Span::current(),
            };
            if !self.jobs.push(job) {
                return Err(EngineError::Unloaded);
            }
            streams.push(received);
        }
        loop {
            self.waiting.extend(self.jobs.take_all());
            if self.idle() {
                break;
            }
            self.round();
        }
        streams
            .into_iter()
            .map(|mut received| {
                let (mut tokens, mut finished) = (Vec::new(), None);
                while let Ok(event) = received.try_recv() {
                    match event? {
                        Event::Chunk { tokens: more, .. } => tokens.extend(more),
                        Event::Done(f) => finished = Some(f),
                    }
                }
                let finished = finished.ok_or(EngineError::Unloaded)?;
                Ok(Generated { tokens, finished })
            })
            .collect()
    }

    /// The backend, for measurements between requests.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// One scheduling round over what has arrived.
    fn round(&mut self) {
        self.drop_cancelled();
        self.start_next();
        if let Err(e) = self.step() {
            self.fail_running(e);
        }
        self.kv_bytes
            .store(self.backend.kv_bytes(), Ordering::Relaxed);
    }

    fn idle(&self) -> bool {
        self.waiting.is_empty()
            && self.reading.is_empty()
            && self.decoding.is_empty()
            && self.pending.iter().all(|p| p.read)
    }

    /// Moves arrived jobs into the waiting line (waiting for one when there is nothing to
    /// do); false once the queue is closed and nothing is left.
    fn take_jobs(&mut self) -> bool {
        if self.idle() {
            self.pending.clear();
            match self.jobs.pop() {
                Some(job) => self.waiting.push_back(job),
                None => return false,
            }
        }
        self.waiting.extend(self.jobs.take_all());
        true
    }

    /// Ends whatever its caller gave up on (everything, once the engine is dropped).
    fn drop_cancelled(&mut self) {
        let closing = self.jobs.is_closed();
        let cancelled = |cancel: &AtomicBool| closing || cancel.load(Ordering::Relaxed);
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for job in self.waiting.drain(..) {
            if !cancelled(&job.cancel) {
                kept.push_back(job);
                continue;
            }
            let _span = job.span.enter();
            if let Work::Generate { request, events } = &job.work {
                let finished = crate::generate::cancelled_summary(
                    request,
                    Phase::Queued,
                    0,
                    job.arrived,
                    job.arrived.elapsed(),
                );
                log_cancelled(&finished);
                let _ = events.send(Ok(Event::Done(finished)));
            }
        }
        self.waiting = kept;
        let (gone, still): (Vec<_>, Vec<_>) =
            self.reading.drain(..).partition(|reading| match reading {
                Reading::Prompt(seq) => closing || seq.cancelled(),
                Reading::Embedding(e) => cancelled(&e.cancel) || e.reply.is_closed(),
            });
        self.reading = still.into();
        for reading in gone {
            match reading {
                Reading::Prompt(seq) => self.end(*seq, FinishReason::Cancelled(Phase::Prefill)),
                Reading::Embedding(e) => {
                    let _span = e.span.enter();
                    tracing::info!(
                        prompt_tokens = e.prompt_tokens,
                        "embedding request cancelled"
                    );
                }
            }
        }
        let (gone, running): (Vec<Sequence>, Vec<Sequence>) = self
            .decoding
            .drain(..)
            .partition(|seq| closing || seq.cancelled());
        self.decoding = running;
        for seq in gone {
            self.end(seq, FinishReason::Cancelled(Phase::Decode));
        }
    }

    /// Starts waiting requests, oldest first, while the policy allows (an embedding
    /// request takes no place among the generating ones).
    fn start_next(&mut self) {
        while let Some(head) = self.waiting.front() {
            let now = Occupancy {
                decoding: self.decoding.len(),
                prefilling: self
                    .reading
                    .iter()
                    .filter(|r| matches!(r, Reading::Prompt(_)))
                    .count(),
                waiting: self.waiting.len(),
            };
            if matches!(head.work, Work::Generate { .. }) && !self.policy.starts_next(now) {
                return;
            }
            let job = self.waiting.pop_front().expect("the head exists");
            let started = self.begin(job);
            self.reading.extend(started);
        }
    }

    /// Starts reading `job`; `None` (its caller told why) when it cannot run.
    fn begin(&mut self, job: Job) -> Option<Reading<B::Embedding>> {
        let _span = job.span.enter();
        match job.work {
            Work::Generate { request, events } => {
                self.next_id += 1;
                let refused = events.clone();
                let caller = Caller {
                    events,
                    cancel: job.cancel,
                    span: job.span.clone(),
                    arrived: job.arrived,
                };
                let (vocab, context) = (self.backend.vocab(), self.backend.context());
                let mut seq = match Sequence::start(self.next_id, request, caller, vocab, context) {
                    Ok(seq) => seq,
                    Err(e) => {
                        let _ = refused.send(Err(e));
                        return None;
                    }
                };
                match self.backend.start(seq.id, &seq.request.prompt) {
                    Ok(cached) => {
                        seq.prefilled = cached;
                        seq.cached = cached;
                        Some(Reading::Prompt(Box::new(seq)))
                    }
                    Err(e) => {
                        seq.fail(e);
                        None
                    }
                }
            }
            Work::Embed {
                request,
                recipe,
                reply,
            } => {
                let prompt_tokens = request.inputs.iter().map(Vec::len).sum();
                match self.backend.begin_embedding(request, recipe) {
                    Ok(task) => Some(Reading::Embedding(EmbeddingInProgress {
                        task,
                        prompt_tokens,
                        reply,
                        cancel: job.cancel,
                        span: job.span.clone(),
                        arrived: job.arrived,
                        started: Instant::now(),
                    })),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        None
                    }
                }
            }
        }
    }

    /// One round: where the backend batches prompts and a prompt's turn has come, one
    /// step reading prompt chunks beside the running rows ([`Self::mixed_step`]);
    /// otherwise a chunk of whatever is being read (with the device otherwise idle, so the
    /// chunk is timed alone), then a decode step of the running sequences, overlapped with
    /// reading the previous step's tokens.
    fn step(&mut self) -> Result<()> {
        let reading = !self.reading.is_empty();
        if reading {
            self.read_pending()?;
            if self.mixed_step()? {
                return Ok(());
            }
            self.read_chunk()?;
        }
        if self.backend.decodes_synchronously() {
            self.read_pending()?;
        }
        let forward = if self.decoding.is_empty() {
            None
        } else {
            let built = Instant::now();
            let (rows, tokens) = self.step_tokens()?;
            let logits = self.backend.decode(&rows, &tokens)?;
            let build_time = built.elapsed();
            logits.start_computing()?;
            // A backend that decodes synchronously has run the step by now: its time
            // began when it was built.
            let queued = match self.backend.decodes_synchronously() {
                true => built,
                false => Instant::now(),
            };
            Some(Step {
                rows,
                logits,
                build_time,
                queued: Some(queued),
            })
        };
        self.read_pending()?;
        if let Some(step) = forward {
            self.sample_step(step)?;
        }
        Ok(())
    }

    /// A decode step of the running sequences (if any) that also reads prompt chunks in
    /// the same backend call, where the backend can (llama.cpp): the next chunk of the
    /// prompt whose turn it is, sized as one read on its own would be, and after it the
    /// whole of each short prompt (one whose rest reads within the policy's short-prompt
    /// time) while the step's prompt tokens read within an idle chunk's time. Prompts
    /// arriving together thus pause the streams once rather than once each, and run in
    /// step from their first token, each running sequence sharing every pass over the
    /// weights. False, with nothing done, when an embedding's turn has come or the
    /// backend cannot.
    fn mixed_step(&mut self) -> Result<bool> {
        if !self.backend.batches_prompts()
            || !matches!(self.reading.front(), Some(Reading::Prompt(_)))
        {
            return Ok(false);
        }
        let built = Instant::now();
        let (rows, tokens) = self.step_tokens()?;
        let short = self.pacer.reads_within(self.policy.short_prompt);
        let budget = self.pacer.reads_within(self.policy.idle_chunk);
        let mut taken: Vec<(Box<Sequence>, usize)> = Vec::new();
        let mut used = 0;
        while let Some(Reading::Prompt(seq)) = self.reading.front() {
            let rest = seq.request.prompt.len() - seq.prefilled;
            let tokens = match taken.is_empty() {
                true => self.prompt_chunk(rest),
                false if rest <= short && used + rest <= budget => rest,
                false => break,
            };
            let Some(Reading::Prompt(seq)) = self.reading.pop_front() else {
                unreachable!("the front is a prompt");
            };
            used += tokens;
            let end = seq.prefilled + tokens;
            taken.push((seq, end));
        }
        let chunks: Vec<PromptChunk> = taken
            .iter()
            .map(|(seq, end)| PromptChunk {
                id: seq.id,
                tokens: &seq.request.prompt[seq.prefilled..*end],
                last: *end == seq.request.prompt.len(),
            })
            .collect();
        let stepped = match self.backend.decode_with_chunks(&rows, &tokens, &chunks) {
            Ok(stepped) => stepped,
            Err(e) if rows.is_empty() => {
                // A pass of prompts alone: they fail, as one read on its own would, and
                // nothing else.
                let message = e.to_string();
                for (seq, _) in taken {
                    self.backend.release(seq.id, &[]);
                    seq.fail(EngineError::StepFailed(message.clone()));
                }
                return Ok(true);
            }
            Err(e) => {
                for (seq, _) in taken.into_iter().rev() {
                    self.reading.push_front(Reading::Prompt(seq));
                }
                return Err(e);
            }
        };
        let elapsed = built.elapsed();
        tracing::trace!(
            rows = rows.len(),
            prompts = taken.len(),
            tokens = used,
            ms = elapsed.as_millis(),
            "decode step with prefill chunks"
        );
        // The chunks' share of the step's time, by tokens (each row is one more token
        // through the same weights). Small batches pay the step's fixed cost, so the rate
        // errs slow and chunks sized from it short; a few tokens' rate is mostly that cost
        // and would keep chunks that small.
        if used >= PrefillPacer::FIRST {
            let share = used as f64 / (used + rows.len()) as f64;
            self.pacer.record(used, elapsed.mul_f64(share));
        }
        let (logits, after_prompts) = stepped;
        if let Some(logits) = logits {
            self.sample_step(Step {
                rows,
                logits,
                build_time: built.elapsed(),
                queued: None,
            })?;
        }
        for ((mut seq, end), after) in taken.into_iter().zip(after_prompts) {
            seq.prefilled = end;
            match after {
                Some(logits) => self.join_decoding(*seq, &logits)?,
                None => self.reading.push_back(Reading::Prompt(seq)),
            }
        }
        Ok(true)
    }

    /// The rows of one decode step (every running sequence) and the token each is fed:
    /// its last one.
    fn step_tokens(&mut self) -> Result<(Vec<SeqId>, Array)> {
        let rows: Vec<SeqId> = self.decoding.iter().map(|s| s.id).collect();
        if rows.is_empty() {
            return Ok((rows, Array::from_slice::<u32>(&[], &[0])?));
        }
        let mut parts = Vec::new();
        for pending in &self.pending {
            let fed: Vec<u32> = pending
                .rows
                .iter()
                .enumerate()
                .filter(|(_, id)| rows.contains(id))
                .map(|(i, _)| i as u32)
                .collect();
            if fed.len() == pending.rows.len() {
                parts.push(pending.sampled.tokens.clone());
            } else if !fed.is_empty() {
                let index = Array::from_slice(&fed, &[fed.len() as i32])?;
                parts.push(pending.sampled.tokens.take(&index, 0)?);
            }
        }
        let tokens = match parts.len() {
            1 => parts.pop().expect("one part"),
            _ => Array::concatenate(&parts.iter().collect::<Vec<_>>(), 0)?,
        };
        Ok((rows, tokens))
    }

    /// Samples the next token of every sequence of the step whose logits these are and
    /// that still runs, as one batch.
    fn sample_step(&mut self, step: Step) -> Result<()> {
        let Step {
            rows: stepped,
            logits,
            build_time,
            queued,
        } = step;
        self.pending.clear();
        let alive: Vec<usize> = stepped
            .iter()
            .enumerate()
            .filter(|(_, id)| self.decoding.iter().any(|s| s.id == **id))
            .map(|(i, _)| i)
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        let logits = if alive.len() == stepped.len() {
            logits
        } else {
            logits.select(&alive)?
        };
        let rows: Vec<SeqId> = alive.iter().map(|&i| stepped[i]).collect();
        let vocab = self.backend.vocab();
        let mut sequences: Vec<&mut Sequence> = Vec::with_capacity(rows.len());
        for seq in self.decoding.iter_mut() {
            if rows.contains(&seq.id) {
                sequences.push(seq);
            }
        }
        sequences.sort_by_key(|s| rows.iter().position(|r| *r == s.id));
        let masks = masks_of(&mut sequences, vocab)?;
        let sampling = Instant::now();
        let sampled = {
            let mut samplers: Vec<_> = sequences.iter_mut().map(|s| &mut s.sampler).collect();
            sampler::sample(&mut samplers, &logits, masks.as_deref())?
        };
        observe(&mut sequences, &sampled.tokens)?;
        let build_time = build_time + sampling.elapsed();
        perch_mlx::async_eval(&outputs(&sampled))?;
        for seq in sequences {
            seq.graph_build_time += build_time;
            seq.decode_steps += 1;
        }
        self.pending.push(Pending {
            rows,
            sampled,
            read: false,
            queued,
        });
        Ok(())
    }

    /// Reads the tokens sampled and not yet read, and hands each to its sequence.
    fn read_pending(&mut self) -> Result<()> {
        for index in 0..self.pending.len() {
            if self.pending[index].read {
                continue;
            }
            self.pending[index].read = true;
            let tokens = read_tokens(&self.pending[index].sampled)?;
            if let Some(queued) = self.pending[index].queued {
                let step = queued.elapsed();
                self.decode_step = Some(match self.decode_step {
                    Some(before) => (before * 3 + step) / 4,
                    None => step,
                });
            }
            let rows = self.pending[index].rows.clone();
            for (id, token) in rows.into_iter().zip(tokens) {
                let Some(at) = self.decoding.iter().position(|s| s.id == id) else {
                    continue;
                };
                let seq = &mut self.decoding[at];
                let token = GeneratedToken {
                    id: token.id,
                    logprob: token.logprob.map(|mut lp| {
                        lp.top.truncate(seq.sampler.params().logprobs.unwrap_or(0));
                        lp
                    }),
                };
                let progress = {
                    let _span = seq.span.clone().entered();
                    seq.accept(
                        token,
                        self.backend.tokenizer(),
                        self.backend.eos_token_ids(),
                    )
                };
                match progress {
                    Ok(Progress::Continues) => {}
                    Ok(Progress::Ended(reason)) => {
                        let seq = self.decoding.remove(at);
                        self.end(seq, reason);
                    }
                    Err(e) => {
                        let seq = self.decoding.remove(at);
                        self.backend.release(seq.id, &seq.cached_tokens());
                        seq.fail(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the next chunk of what is being read, sized for the time the policy gives it.
    fn read_chunk(&mut self) -> Result<()> {
        match self.reading.pop_front() {
            Some(Reading::Prompt(seq)) => {
                let tokens = self.prompt_chunk(seq.request.prompt.len() - seq.prefilled);
                self.read_prompt_chunk(*seq, tokens)
            }
            Some(Reading::Embedding(embedding)) => {
                let tokens = self.pacer.chunk_for(self.chunk_time());
                self.read_embedding_chunk(embedding, tokens);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The time the next chunk may take, as the policy gives it.
    fn chunk_time(&self) -> Duration {
        self.policy
            .chunk_time(self.decoding.len(), self.decode_step)
    }

    /// Tokens the next chunk of a prompt with `remaining` tokens left to read takes: what
    /// the policy's time allows at the measured rate, or all of them when they read
    /// within the policy's short prompt time (the streams pause once, briefly, rather than
    /// the prompt trickling in over many steps).
    fn prompt_chunk(&self, remaining: usize) -> usize {
        if remaining <= self.pacer.reads_within(self.policy.short_prompt) {
            return remaining;
        }
        self.pacer.chunk_for(self.chunk_time()).min(remaining)
    }

    fn read_prompt_chunk(&mut self, mut seq: Sequence, tokens: usize) -> Result<()> {
        let _span = seq.span.clone().entered();
        let prompt_len = seq.request.prompt.len();
        let end = prompt_len.min(seq.prefilled + tokens);
        let chunk = seq.request.prompt[seq.prefilled..end].to_vec();
        if end < prompt_len {
            let started = Instant::now();
            if let Err(e) = self.backend.prefill(seq.id, &chunk, false) {
                self.backend.release(seq.id, &[]);
                seq.fail(e);
                return Ok(());
            }
            let elapsed = started.elapsed();
            tracing::trace!(
                tokens = chunk.len(),
                ms = elapsed.as_millis(),
                "prefill chunk"
            );
            self.pacer.record(chunk.len(), elapsed);
            seq.prefilled = end;
            self.reading.push_back(Reading::Prompt(Box::new(seq)));
            return Ok(());
        }
        let logits = match self.backend.prefill(seq.id, &chunk, true) {
            Ok(Some(logits)) => logits,
            Ok(None) => unreachable!("the last chunk of a prompt gives logits"),
            Err(e) => {
                self.backend.release(seq.id, &[]);
                seq.fail(e);
                return Ok(());
            }
        };
        seq.prefilled = prompt_len;
        self.join_decoding(seq, &logits)
    }

    /// Samples the first token of `seq`, whose whole prompt is read and followed by
    /// `logits`, and adds it to the running batch (or ends it, when it may generate
    /// nothing).
    fn join_decoding(&mut self, mut seq: Sequence, logits: &Logits) -> Result<()> {
        if seq.out_of_tokens() {
            self.end(seq, FinishReason::Length);
            return Ok(());
        }
        let vocab = self.backend.vocab();
        let first = {
            let mut one = [&mut seq];
            let masks = masks_of(&mut one, vocab)?;
            let sampled = sampler::sample(&mut [&mut one[0].sampler], logits, masks.as_deref())?;
            observe(&mut one, &sampled.tokens)?;
            sampled
        };
        perch_mlx::async_eval(&outputs(&first))?;
        self.pending.push(Pending {
            rows: vec![seq.id],
            sampled: first,
            read: false,
            queued: None,
        });
        self.decoding.push(seq);
        Ok(())
    }

    fn read_embedding_chunk(&mut self, mut e: EmbeddingInProgress<B::Embedding>, tokens: usize) {
        let _span = e.span.clone().entered();
        let started = Instant::now();
        match self.backend.embed_chunk(&mut e.task, tokens) {
            Ok(None) => {
                self.pacer.record(tokens, started.elapsed());
                self.reading.push_back(Reading::Embedding(e));
            }
            Ok(Some(vectors)) => {
                let _ = e.reply.send(Ok(Embeddings {
                    vectors,
                    prompt_tokens: e.prompt_tokens,
                    queued: e.started - e.arrived,
                    compute_time: e.started.elapsed(),
                }));
            }
            Err(error) => {
                let _ = e.reply.send(Err(error));
            }
        }
    }

    /// Ends `seq` for `reason`: its summary is sent (and logged, when it was cancelled)
    /// and the backend forgets it, keeping what it computed for later prompts.
    fn end(&mut self, seq: Sequence, reason: FinishReason) {
        self.backend.release(seq.id, &seq.cached_tokens());
        let span = seq.span.clone();
        let _span = span.enter();
        let finished = seq.finish(reason, self.backend.tokenizer());
        log_cancelled(&finished);
    }

    /// A step failed: every running sequence gets the error, and the backend starts over.
    fn fail_running(&mut self, error: EngineError) {
        tracing::error!(%error, "a decode step failed; ending its requests");
        let message = error.to_string();
        for seq in self.decoding.drain(..) {
            seq.fail(EngineError::StepFailed(message.clone()));
        }
        for reading in self.reading.drain(..) {
            match reading {
                Reading::Prompt(seq) => seq.fail(EngineError::StepFailed(message.clone())),
                Reading::Embedding(e) => {
                    let _ = e.reply.send(Err(EngineError::StepFailed(message.clone())));
                }
            }
        }
        self.pending.clear();
        self.backend.reset();
    }
}

/// The constraint masks of `sequences` (`rows × vocab`, 0 or −∞), or `None` when no row
/// has a constraint.
fn masks_of(sequences: &mut [&mut Sequence], vocab: usize) -> Result<Option<Vec<f32>>> {
    if sequences.iter().all(|s| s.constraint.is_none()) {
        return Ok(None);
    }
    let mut masks = vec![0f32; sequences.len() * vocab];
    for (row, seq) in masks.chunks_mut(vocab).zip(sequences.iter_mut()) {
        if let Some(constraint) = &mut seq.constraint {
            constraint.fill_mask(row)?;
        }
    }
    Ok(Some(masks))
}

/// Feeds each sampled token back to its row's penalties.
fn observe(sequences: &mut [&mut Sequence], tokens: &Array) -> Result<()> {
    for (row, seq) in sequences.iter_mut().enumerate() {
        if seq.sampler.has_penalties() {
            let row = row as i32;
            seq.sampler
                .observe(&tokens.slice(&[row], &[row + 1], &[1])?)?;
        }
    }
    Ok(())
}

/// The arrays of a sampled step, for evaluating it.
fn outputs(s: &Sampled) -> Vec<&Array> {
    let mut out = vec![&s.tokens];
    out.extend(s.logprobs.as_ref());
    if let Some((ids, values)) = &s.top {
        out.push(ids);
        out.push(values);
    }
    out
}

/// Waits for a sampled step and reads its tokens (with their log-probabilities, the top
/// alternatives sorted, most likely first) to the host.
fn read_tokens(s: &Sampled) -> Result<Vec<GeneratedToken>> {
    let ids = s.tokens.astype(Dtype::Uint32)?.to_vec::<u32>()?;
    let logprobs = match &s.logprobs {
        Some(lp) => Some(lp.to_vec::<f32>()?),
        None => None,
    };
    let top = match &s.top {
        Some((ids, values)) => {
            let n = ids.shape()[1] as usize;
            let ids = ids.astype(Dtype::Uint32)?.to_vec::<u32>()?;
            Some((ids, values.to_vec::<f32>()?, n))
        }
        None => None,
    };
    Ok(ids
        .iter()
        .enumerate()
        .map(|(row, &id)| GeneratedToken {
            id,
            logprob: logprobs.as_ref().map(|lp| {
                let mut alternatives: Vec<(u32, f32)> = match &top {
                    Some((ids, values, n)) => ids[row * n..(row + 1) * n]
                        .iter()
                        .copied()
                        .zip(values[row * n..(row + 1) * n].iter().copied())
                        .collect(),
                    None => Vec::new(),
                };
                alternatives.sort_by(|a, b| b.1.total_cmp(&a.1));
                TokenLogprob {
                    logprob: lp[row],
                    top: alternatives,
                }
            }),
        })
        .collect())
}

/// One log line for a generation that was cancelled (where it was and what it had done),
/// and a count by phase in the metrics.
pub(crate) fn log_cancelled(finished: &Finished) {
    if let FinishReason::Cancelled(phase) = finished.reason {
        metrics::counter!("perch_requests_cancelled_total", "phase" => phase.to_string())
            .increment(1);
        tracing::info!(
            %phase,
            prompt_tokens = finished.prompt_tokens,
            prefilled_tokens = finished.prefilled_tokens,
            completion_tokens = finished.completion_tokens,
            queue_ms = (finished.queued.as_secs_f64() * 1e3).round(),
            elapsed_ms = ((finished.time_to_first_token + finished.decode_time).as_secs_f64()
                * 1e3)
                .round(),
            "request cancelled (its client went away or the server is stopping)"
        );
    }
}
