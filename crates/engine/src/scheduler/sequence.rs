//! One generation in the scheduler: its request, where its events go, and everything that
//! is its own while it runs — sampler, constraint, stop matcher, detokenizer, counters and
//! timings. The scheduler hands it each token it was given; the sequence streams the text
//! that token completes and says when it is done, and sums itself up at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::constrain::ActiveConstraint;
use crate::generate::{Event, FinishReason, Finished, GenerateRequest, GeneratedToken, Phase};
use crate::sampler::Sampler;
use crate::scheduler::backend::SeqId;
use crate::stop::{StopCheck, StopMatcher};
use crate::text::detokenizer::Detokenizer;
use crate::text::tokenizer::Tokenizer;
use crate::{EngineError, Result};

/// A generation the scheduler has started.
pub(crate) struct Sequence {
    pub id: SeqId,
    pub request: GenerateRequest,
    events: UnboundedSender<Result<Event>>,
    cancel: Arc<AtomicBool>,
    /// The caller's tracing span, entered while the sequence logs.
    pub span: tracing::Span,
    arrived: Instant,
    /// From arrival to being started.
    queued: Duration,
    pub sampler: Sampler,
    pub constraint: Option<ActiveConstraint>,
    stops: StopMatcher,
    detokenizer: Detokenizer,
    /// Most tokens it may generate (its request's, within the context).
    max_tokens: usize,
    /// Prompt tokens whose keys and values are computed (reused ones included).
    pub prefilled: usize,
    /// Prompt tokens reused from the prefix cache.
    pub cached: usize,
    /// Tokens generated so far.
    pub generated: Vec<u32>,
    first_token_at: Option<Instant>,
    /// Host time spent building the decode steps it was part of.
    pub graph_build_time: Duration,
    /// Decode steps it was part of.
    pub decode_steps: usize,
}

/// What a token did to its sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// It goes on.
    Continues,
    /// It ended, for this reason.
    Ended(FinishReason),
}

/// Where a sequence's events go and how its caller cancels it, with its timing so far.
pub(crate) struct Caller {
    pub events: UnboundedSender<Result<Event>>,
    pub cancel: Arc<AtomicBool>,
    pub span: tracing::Span,
    pub arrived: Instant,
}

impl Sequence {
    /// Starts `request` for `caller`: checks it against a model of `vocab` logits and a
    /// `context`-token window, and sets up its sampler and constraint.
    pub fn start(
        id: SeqId,
        request: GenerateRequest,
        caller: Caller,
        vocab: usize,
        context: usize,
    ) -> Result<Sequence> {
        check(&request, vocab, context)?;
        let sampler = Sampler::new(request.sampling.clone(), vocab, &request.prompt)?;
        let constraint = request.constraint.as_ref().map(|c| c.start());
        Ok(Sequence {
            id,
            max_tokens: request.max_tokens.min(context - request.prompt.len()),
            stops: StopMatcher::new(&request.stop),
            request,
            events: caller.events,
            cancel: caller.cancel,
            span: caller.span,
            queued: caller.arrived.elapsed(),
            arrived: caller.arrived,
            sampler,
            constraint,
            detokenizer: Detokenizer::default(),
            prefilled: 0,
            cached: 0,
            generated: Vec::new(),
            first_token_at: None,
            graph_build_time: Duration::ZERO,
            decode_steps: 0,
        })
    }

    /// Whether its caller has cancelled it or gone away.
    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }

    /// Whether it has generated as many tokens as it may (`max_tokens` can be 0).
    pub fn out_of_tokens(&self) -> bool {
        self.generated.len() >= self.max_tokens
    }

    /// Takes `token`, streams the text it completes and says whether the sequence goes
    /// on.
    pub fn accept(
        &mut self,
        token: GeneratedToken,
        tokenizer: &Tokenizer,
        eos: &[u32],
    ) -> Result<Progress> {
        self.first_token_at.get_or_insert_with(Instant::now);
        self.generated.push(token.id);
        if !self.request.ignore_eos && eos.contains(&token.id) {
            // Counted (as OpenAI counts it) but never shown.
            return Ok(Progress::Ended(FinishReason::Stop));
        }
        if let Some(active) = &mut self.constraint {
            active.accept(token.id)?;
        }
        let delta = self.detokenizer.push(tokenizer, token.id)?;
        let (text, stopped) = match self.stops.push(&delta) {
            StopCheck::Continue(text) => (text, false),
            StopCheck::Stopped(text) => (text, true),
        };
        let open = self
            .events
            .send(Ok(Event::Chunk {
                text,
                tokens: vec![token],
            }))
            .is_ok();
        Ok(if stopped {
            Progress::Ended(FinishReason::Stop)
        } else if !open {
            Progress::Ended(FinishReason::Cancelled(Phase::Decode))
        } else if self.out_of_tokens() {
            Progress::Ended(FinishReason::Length)
        } else {
            Progress::Continues
        })
    }

    /// Sends what is held back (when the answer ended other than by a stop) and the
    /// summary; returns the summary.
    pub fn finish(mut self, mut reason: FinishReason, tokenizer: &Tokenizer) -> Finished {
        let decoding = !self.generated.is_empty();
        if decoding && !matches!(reason, FinishReason::Stop | FinishReason::Cancelled(_)) {
            let tail = self
                .detokenizer
                .flush(tokenizer)
                .map(|t| self.stops.push(&t));
            let text = match tail {
                Ok(StopCheck::Continue(t)) => t + &self.stops.finish(),
                Ok(StopCheck::Stopped(t)) => {
                    reason = FinishReason::Stop;
                    t
                }
                Err(_) => self.stops.finish(),
            };
            if !text.is_empty() {
                let _ = self.events.send(Ok(Event::Chunk {
                    text,
                    tokens: Vec::new(),
                }));
            }
        }
        let first = self.first_token_at.unwrap_or_else(Instant::now);
        let finished = Finished {
            reason,
            prompt_tokens: self.request.prompt.len(),
            prefilled_tokens: self.prefilled,
            completion_tokens: self.generated.len(),
            cached_tokens: self.cached,
            queued: self.queued,
            time_to_first_token: first - self.arrived,
            decode_time: if decoding {
                first.elapsed()
            } else {
                Duration::ZERO
            },
            graph_build_time: self.graph_build_time,
            decode_steps: self.decode_steps,
            constraint_time: self
                .constraint
                .as_ref()
                .map_or(Duration::ZERO, |c| c.mask_time),
            stop_sequence: self.stops.matched().map(str::to_owned),
        };
        let _ = self.events.send(Ok(Event::Done(finished.clone())));
        finished
    }

    /// Ends it with `error` (sent to its caller).
    pub fn fail(self, error: EngineError) {
        let _ = self.events.send(Err(error));
    }

    /// The tokens whose keys and values its cache holds: the prompt read so far, and once
    /// it generates, the whole prompt and every generated token but the last (the last is
    /// never fed back).
    pub fn cached_tokens(&self) -> Vec<u32> {
        if self.generated.is_empty() {
            return self.request.prompt[..self.prefilled].to_vec();
        }
        let mut tokens = self.request.prompt.clone();
        tokens.extend_from_slice(&self.generated[..self.generated.len() - 1]);
        tokens
    }
}

/// Whether `request` can run on a model of `vocab` logits and a `context`-token window.
fn check(request: &GenerateRequest, vocab: usize, context: usize) -> Result<()> {
    if request.prompt.is_empty() {
        return Err(EngineError::InvalidRequest("the prompt is empty".into()));
    }
    if request.prompt.len() >= context {
        return Err(EngineError::InvalidRequest(format!(
            "the prompt has {} tokens but the model's context is {context}",
            request.prompt.len()
        )));
    }
    if let Some(bad) = request.prompt.iter().find(|&&t| t as usize >= vocab) {
        return Err(EngineError::InvalidRequest(format!(
            "token id {bad} is beyond the vocabulary of {vocab}"
        )));
    }
    Ok(())
}
