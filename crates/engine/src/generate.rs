//! The generation loop for one sequence: chunked prefill, then decode steps that build the
//! next step's graph while the current one computes (`async_eval`), streaming typed
//! [`Event`]s: text as it becomes safe to show, token ids with log-probabilities, and a
//! final summary with the finish reason, counts and timings. Cancellation is checked
//! before the prompt starts, between prefill chunks (sized by time, see
//! [`PrefillPacer`]) and before every decode step.

use std::fmt;
use std::time::{Duration, Instant};

use perch_mlx::Array;

use crate::batch::BatchLayout;
use crate::constrain::Constraint;
use crate::kv_cache::LayerCache;
use crate::model::Model;
use crate::prefill_pacer::PrefillPacer;
use crate::sampler::{Sampled, Sampler, SamplingParams};
use crate::stop::{StopCheck, StopMatcher};
use crate::text::detokenizer::Detokenizer;
use crate::{EngineError, Result};

/// What to generate.
#[derive(Clone, Debug, Default)]
pub struct GenerateRequest {
    /// The prompt, already tokenized (chat template applied).
    pub prompt: Vec<u32>,
    /// How to pick tokens.
    pub sampling: SamplingParams,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Strings that end generation (not included in the output).
    pub stop: Vec<String>,
    /// Keep going past end-of-sequence tokens (for benchmarks).
    pub ignore_eos: bool,
    /// When the request arrived, if earlier than when it is handed to the engine (a
    /// server counts its wait for the model to load); time to first token and queue time
    /// count from here.
    pub arrived: Option<Instant>,
    /// What the output must be (see [`crate::constrain`]).
    pub constraint: Option<Constraint>,
}

/// A token's log-probability and its most likely alternatives.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    /// Log-probability of the chosen token.
    pub logprob: f32,
    /// The most likely tokens at this step, most likely first.
    pub top: Vec<(u32, f32)>,
}

/// One generated token.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedToken {
    /// Its id.
    pub id: u32,
    /// Its log-probability, when asked for.
    pub logprob: Option<TokenLogprob>,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` (or the context) ran out.
    Length,
    /// The caller cancelled (or went away) during this phase.
    Cancelled(Phase),
}

/// Where a generation is: waiting for the model, reading the prompt, or generating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not started: the model was busy with earlier requests.
    Queued,
    /// Running the prompt through the model.
    Prefill,
    /// Generating tokens.
    Decode,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Queued => "queued",
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        })
    }
}

/// The summary sent last.
#[derive(Clone, Debug)]
pub struct Finished {
    /// Why it ended.
    pub reason: FinishReason,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens run through the model (fewer than `prompt_tokens` only when the
    /// generation was cancelled before or during prefill).
    pub prefilled_tokens: usize,
    /// Tokens generated (an end-of-sequence token counts, as OpenAI counts it).
    pub completion_tokens: usize,
    /// Prompt tokens whose keys and values were reused from a cache.
    pub cached_tokens: usize,
    /// From arrival to the model starting on it (waiting behind earlier requests).
    pub queued: Duration,
    /// From arrival (time waiting for the model included) to the first token being known.
    pub time_to_first_token: Duration,
    /// From the first token to the end.
    pub decode_time: Duration,
    /// Host time spent building decode steps' graphs (before handing them to MLX).
    pub graph_build_time: Duration,
    /// Decode steps whose graphs were built.
    pub decode_steps: usize,
    /// Host time spent computing a constraint's masks.
    pub constraint_time: Duration,
    /// The stop string that ended the generation, if one did.
    pub stop_sequence: Option<String>,
}

/// What a generation streams.
#[derive(Clone, Debug)]
pub enum Event {
    /// New text (possibly empty while held back) and the tokens sampled since the last
    /// event.
    Chunk {
        /// Text safe to show.
        text: String,
        /// The tokens behind it.
        tokens: Vec<GeneratedToken>,
    },
    /// The end.
    Done(Finished),
}

/// Runs `request`, which arrived at `arrived`, on `model`, calling `emit` with each event.
/// Stops early when `cancelled` says so or `emit` returns false (the receiver is gone).
pub fn generate(
    model: &Model,
    request: &GenerateRequest,
    arrived: Instant,
    cancelled: &dyn Fn() -> bool,
    mut emit: impl FnMut(Event) -> bool,
) -> Result<Finished> {
    let queued = arrived.elapsed();
    if cancelled() {
        return Ok(cancelled_before_decode(
            request,
            Phase::Queued,
            0,
            (arrived, queued),
            emit,
        ));
    }
    let transformer = &model.transformer;
    let config = transformer.config();
    let context = config.max_position_embeddings as usize;
    if request.prompt.is_empty() {
        return Err(EngineError::InvalidRequest("the prompt is empty".into()));
    }
    if request.prompt.len() >= context {
        return Err(EngineError::InvalidRequest(format!(
            "the prompt has {} tokens but the model's context is {context}",
            request.prompt.len()
        )));
    }
    let vocab = config.vocab_size as usize;
    if let Some(bad) = request.prompt.iter().find(|&&t| t as usize >= vocab) {
        return Err(EngineError::InvalidRequest(format!(
            "token id {bad} is beyond the vocabulary of {vocab}"
        )));
    }
    let max_tokens = request.max_tokens.min(context - request.prompt.len());
    let mut sampler = Sampler::new(request.sampling.clone(), vocab, &request.prompt)?;
    let mut constraint = match &request.constraint {
        Some(c) => {
            let mut active = c.start(vocab);
            sampler.mask_next(active.mask()?);
            Some(active)
        }
        None => None,
    };
    let mut cache = transformer.new_cache();
    let layout = BatchLayout::unpadded(1);

    let mut step = match prefill(
        model,
        &request.prompt,
        &mut cache,
        &layout,
        &mut sampler,
        cancelled,
    )? {
        Prefilled::Ready(step) => step,
        Prefilled::Cancelled { processed } => {
            return Ok(cancelled_before_decode(
                request,
                Phase::Prefill,
                processed,
                (arrived, queued),
                emit,
            ))
        }
    };
    let mut detokenizer = Detokenizer::default();
    let mut stops = StopMatcher::new(&request.stop);
    let mut first_token_at = None;
    let mut generated = 0usize;
    let mut reason = FinishReason::Length;
    let mut emit_open = true;
    let mut graph_build_time = Duration::ZERO;
    let mut decode_steps = 0;

    while generated < max_tokens {
        if cancelled() {
            reason = FinishReason::Cancelled(Phase::Decode);
            break;
        }
        // Queue the next step before waiting for this one, so graph building overlaps
        // computation. A constrained step cannot start before its mask, which needs
        // this step's token.
        let mut next = if constraint.is_none() && generated + 1 < max_tokens {
            let built = Instant::now();
            let next = decode_step(model, &step.tokens, &mut cache, &layout, &mut sampler)?;
            graph_build_time += built.elapsed();
            decode_steps += 1;
            perch_mlx::async_eval(&outputs(&next))?;
            Some(next)
        } else {
            None
        };
        let token = read_token(&step)?;
        first_token_at.get_or_insert_with(Instant::now);
        generated += 1;
        if !request.ignore_eos && model.eos_token_ids.contains(&token.id) {
            // Counted (as OpenAI counts it) but never shown.
            reason = FinishReason::Stop;
            break;
        }
        if let Some(active) = &mut constraint {
            active.accept(token.id)?;
            if generated < max_tokens {
                sampler.mask_next(active.mask()?);
                let built = Instant::now();
                let queued = decode_step(model, &step.tokens, &mut cache, &layout, &mut sampler)?;
                graph_build_time += built.elapsed();
                decode_steps += 1;
                perch_mlx::async_eval(&outputs(&queued))?;
                next = Some(queued);
            }
        }
        let delta = detokenizer.push(&model.tokenizer, token.id)?;
        let (text, stopped) = match stops.push(&delta) {
            StopCheck::Continue(text) => (text, false),
            StopCheck::Stopped(text) => (text, true),
        };
        emit_open = emit(Event::Chunk {
            text,
            tokens: vec![token],
        });
        if stopped {
            reason = FinishReason::Stop;
            break;
        }
        if !emit_open {
            reason = FinishReason::Cancelled(Phase::Decode);
            break;
        }
        match next {
            Some(next) => step = next,
            None => break,
        }
    }
    if !matches!(reason, FinishReason::Stop) && emit_open {
        let tail = stops.push(&detokenizer.flush(&model.tokenizer)?);
        let text = match tail {
            StopCheck::Continue(t) => t + &stops.finish(),
            StopCheck::Stopped(t) => {
                reason = FinishReason::Stop;
                t
            }
        };
        if !text.is_empty() {
            emit(Event::Chunk {
                text,
                tokens: Vec::new(),
            });
        }
    }
    let first = first_token_at.unwrap_or_else(Instant::now);
    let finished = Finished {
        reason,
        prompt_tokens: request.prompt.len(),
        prefilled_tokens: request.prompt.len(),
        completion_tokens: generated,
        cached_tokens: 0,
        queued,
        time_to_first_token: first - arrived,
        decode_time: first.elapsed(),
        graph_build_time,
        decode_steps,
        constraint_time: constraint.map_or(Duration::ZERO, |c| c.mask_time),
        stop_sequence: stops.matched().map(str::to_owned),
    };
    emit(Event::Done(finished.clone()));
    Ok(finished)
}

/// Ends a generation cancelled in `phase`, after `prefilled` prompt tokens, with its
/// summary (`timing`: when it arrived and how long it waited for the model).
fn cancelled_before_decode(
    request: &GenerateRequest,
    phase: Phase,
    prefilled: usize,
    (arrived, queued): (Instant, Duration),
    mut emit: impl FnMut(Event) -> bool,
) -> Finished {
    let finished = cancelled_summary(request, phase, prefilled, arrived, queued);
    emit(Event::Done(finished.clone()));
    finished
}

/// The summary of a generation that arrived at `arrived`, waited `queued` for the model,
/// and was cancelled in `phase` (before decoding) after `prefilled` prompt tokens.
pub fn cancelled_summary(
    request: &GenerateRequest,
    phase: Phase,
    prefilled: usize,
    arrived: Instant,
    queued: Duration,
) -> Finished {
    Finished {
        reason: FinishReason::Cancelled(phase),
        prompt_tokens: request.prompt.len(),
        prefilled_tokens: prefilled,
        completion_tokens: 0,
        cached_tokens: 0,
        queued,
        time_to_first_token: arrived.elapsed(),
        decode_time: Duration::ZERO,
        graph_build_time: Duration::ZERO,
        decode_steps: 0,
        constraint_time: Duration::ZERO,
        stop_sequence: None,
    }
}

/// Host time to build one decode step's graph with the device idle, `steps` times (after
/// prefilling `prompt`): the intrinsic per-token overhead, free of contention with the
/// computation that overlaps it during generation. For benchmarks.
pub fn measure_graph_build(model: &Model, prompt: &[u32], steps: usize) -> Result<Vec<Duration>> {
    let vocab = model.transformer.config().vocab_size as usize;
    let mut sampler = Sampler::new(SamplingParams::default(), vocab, prompt)?;
    let mut cache = model.transformer.new_cache();
    let layout = BatchLayout::unpadded(1);
    let Prefilled::Ready(mut step) =
        prefill(model, prompt, &mut cache, &layout, &mut sampler, &|| false)?
    else {
        unreachable!("nothing cancels this prefill")
    };
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        perch_mlx::eval(&outputs(&step))?;
        let start = Instant::now();
        let next = decode_step(model, &step.tokens, &mut cache, &layout, &mut sampler)?;
        times.push(start.elapsed());
        step = next;
    }
    Ok(times)
}

/// How a prefill ended.
enum Prefilled {
    /// The prompt is in the cache; the first token is sampled (lazily).
    Ready(Sampled),
    /// `cancelled` said so after `processed` prompt tokens.
    Cancelled { processed: usize },
}

/// Runs all but the last prompt token through the model in chunks sized by time,
/// evaluating only the cache (so the last layer's MLP and the output head are never
/// computed for them) and checking `cancelled` between chunks; then the last token, whose
/// logits give the first sampled token (lazily).
fn prefill(
    model: &Model,
    prompt: &[u32],
    cache: &mut [LayerCache],
    layout: &BatchLayout,
    sampler: &mut Sampler,
    cancelled: &dyn Fn() -> bool,
) -> Result<Prefilled> {
    let (last, context) = prompt.split_last().expect("the prompt is not empty");
    let mut pacer = PrefillPacer::default();
    let mut done = 0;
    while done < context.len() {
        if cancelled() {
            return Ok(Prefilled::Cancelled { processed: done });
        }
        let chunk = &context[done..context.len().min(done + pacer.next_chunk())];
        let started = Instant::now();
        let ids = Array::from_slice(chunk, &[1, chunk.len() as i32])?;
        // The logits are dropped unevaluated; only the keys and values are computed.
        model.transformer.forward(&ids, cache, layout, false)?;
        perch_mlx::eval(&cache.iter().flat_map(LayerCache::state).collect::<Vec<_>>())?;
        let elapsed = started.elapsed();
        tracing::trace!(
            tokens = chunk.len(),
            ms = elapsed.as_millis(),
            "prefill chunk"
        );
        pacer.record(chunk.len(), elapsed);
        done += chunk.len();
    }
    let ids = Array::from_slice(&[*last], &[1, 1])?;
    let logits = model.transformer.forward(&ids, cache, layout, false)?;
    let sampled = sampler.sample(&last_logits(&logits)?)?;
    perch_mlx::async_eval(&outputs(&sampled))?;
    Ok(Prefilled::Ready(sampled))
}

/// Feeds the previous token (still lazy) back in and samples the next.
fn decode_step(
    model: &Model,
    previous: &Array,
    cache: &mut [LayerCache],
    layout: &BatchLayout,
    sampler: &mut Sampler,
) -> Result<Sampled> {
    sampler.observe(previous)?;
    let logits = model
        .transformer
        .forward(&previous.reshape(&[1, 1])?, cache, layout, false)?;
    sampler.sample(&last_logits(&logits)?)
}

fn last_logits(logits: &Array) -> Result<Array> {
    let vocab = *logits
        .shape()
        .last()
        .expect("logits have a vocabulary axis");
    Ok(logits.reshape(&[-1, vocab])?)
}

fn outputs(s: &Sampled) -> Vec<&Array> {
    let mut out = vec![&s.tokens];
    out.extend(s.logprobs.as_ref());
    if let Some((ids, values)) = &s.top {
        out.push(ids);
        out.push(values);
    }
    out
}

/// Waits for a sampled step and reads it to the host.
fn read_token(s: &Sampled) -> Result<GeneratedToken> {
    let id = s.tokens.astype(perch_mlx::Dtype::Uint32)?.to_vec::<u32>()?[0];
    let logprob = match &s.logprobs {
        None => None,
        Some(lp) => {
            let mut top = match &s.top {
                Some((ids, values)) => {
                    let ids = ids.astype(perch_mlx::Dtype::Uint32)?.to_vec::<u32>()?;
                    ids.into_iter().zip(values.to_vec::<f32>()?).collect()
                }
                None => Vec::new(),
            };
            top.sort_by(|a: &(u32, f32), b| b.1.total_cmp(&a.1));
            Some(TokenLogprob {
                logprob: lp.to_vec::<f32>()?[0],
                top,
            })
        }
    };
    Ok(GeneratedToken { id, logprob })
}
