//! What a generation is asked and what it streams: the [`GenerateRequest`], and the typed
//! [`Event`]s that come back — text as it becomes safe to show, token ids with
//! log-probabilities, and a final summary with the finish reason, counts and timings (so
//! time to first token, usage and finish reasons travel with the tokens instead of being
//! recomputed by each API). The [`crate::scheduler`] runs generations.

use std::fmt;
use std::time::{Duration, Instant};

use crate::constrain::Constraint;
use crate::sampler::SamplingParams;

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
