//! The [`Engine`] trait — what the rest of Perch needs from a loaded model — with the
//! facts a loaded model reports ([`ModelInfo`]),
//! how it is served ([`Serving`]), and the stream a generation's events arrive on. Every
//! engine is a [`crate::ModelEngine`]: a model on its own thread whose scheduler runs a
//! backend (MLX's, or llama.cpp's in `perch-llama`).
//!
//! A generation's events travel on a `tokio::sync` channel (no runtime needed), so async
//! callers await them without a thread per request and blocking callers iterate.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::ModelConfig;
use crate::constrain::{Constraint, Grammar};
use crate::embed::{EmbedRequest, EmbeddingJob, EmbeddingRecipe};
use crate::engine_kind::EngineKind;
use crate::generate::{self, Event, GenerateRequest, Phase};
use crate::job_queue::{JobQueue, Work};
use crate::reply::ReplySyntax;
use crate::sampling_defaults::SamplingDefaults;
use crate::scheduler::log_cancelled;
use crate::scheduler::policy::SchedulePolicy;
use crate::text::chat_prompt::{ChatInput, ChatPrompt};
use crate::Result;

/// Facts about a loaded model.
#[derive(Clone, Debug)]
pub struct ModelInfo {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// Its hyper-parameters.
    pub config: ModelConfig,
    /// Bytes of parameters in memory.
    pub weights_bytes: usize,
    /// Bytes of key/value cache per token of context.
    pub kv_bytes_per_token: usize,
    /// Time the load took.
    pub load_time: Duration,
    /// What loading noticed.
    pub notes: Vec<String>,
    /// Ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// How its replies write tool calls and reasoning.
    pub reply_syntax: ReplySyntax,
    /// The sampling its makers recommend.
    pub sampling_defaults: SamplingDefaults,
    /// How it embeds, or what its card asks for that Perch cannot do.
    pub embedding: std::result::Result<EmbeddingRecipe, String>,
    /// How it is served: sequences at once and the context of each.
    pub serving: Serving,
    /// The engine running it.
    pub engine: EngineKind,
}

/// How a loaded model is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Serving {
    /// Most sequences generating at once.
    pub sequences: usize,
    /// Longest sequence (prompt and answer), in tokens.
    pub context: usize,
}

impl Serving {
    /// `sequences` at once, each of up to `context` tokens (or the model's own maximum,
    /// if shorter).
    pub fn new(sequences: usize, context: usize) -> Serving {
        Serving {
            sequences: sequences.max(1),
            context: context.max(2),
        }
    }
}

impl Default for Serving {
    /// The scheduler's default number of sequences, each with the model's whole context.
    fn default() -> Self {
        Serving::new(SchedulePolicy::default().max_sequences, usize::MAX)
    }
}

/// A loaded model that can tokenize, render chats and generate.
pub trait Engine: Send + Sync {
    /// Facts about the model.
    fn info(&self) -> &ModelInfo;
    /// Token ids of `text` (special tokens written in it are recognised);
    /// `add_special` adds what the tokenizer adds to a plain prompt (a BOS, for some
    /// models). Chat prompts already carry theirs from the template.
    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>>;
    /// Text of `ids`.
    fn detokenize(&self, ids: &[u32]) -> Result<String>;
    /// The prompt of a chat, through the model's template, and the parser for its reply.
    /// Control tokens come only from the template: written in a message or a tool, they
    /// are text.
    fn chat(&self, input: &ChatInput<'_>) -> Result<ChatPrompt>;
    /// `grammar` compiled for this model, for [`GenerateRequest::constraint`]; an invalid
    /// request (saying why) when the grammar cannot be held to.
    fn constrain(&self, grammar: &Grammar) -> Result<Constraint>;
    /// Starts generating; events arrive on the returned stream. Dropping the stream
    /// cancels the generation at its next step.
    fn generate(&self, request: GenerateRequest) -> Result<GenerationStream>;
    /// Starts embedding the inputs of `request` (an invalid request, saying why, when an
    /// input is empty or holds ids beyond the vocabulary, or `dimensions` is out of range).
    /// Dropping the job cancels it.
    fn embed(&self, request: EmbedRequest) -> Result<EmbeddingJob>;
    /// Bytes of key/value cache held now: the running generations' and the prefix
    /// cache's.
    fn kv_bytes_in_use(&self) -> usize;
}

/// The events of one generation. Iterate it (blocking) or await [`Self::recv`]; drop it
/// to cancel.
pub struct GenerationStream {
    pub(crate) events: tokio::sync::mpsc::UnboundedReceiver<Result<Event>>,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) queue: Arc<JobQueue>,
    pub(crate) id: u64,
}

impl GenerationStream {
    /// Asks the generation to stop at its next check (it then ends with `Cancelled`); one
    /// still waiting for the model is taken out of the queue and ends at once.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
        let Some(job) = self.queue.remove(self.id) else {
            return;
        };
        if let Work::Generate { request, events } = &job.work {
            let _span = job.span.enter();
            let waited = job.arrived.elapsed();
            let finished =
                generate::cancelled_summary(request, Phase::Queued, 0, job.arrived, waited);
            log_cancelled(&finished);
            let _ = events.send(Ok(Event::Done(finished)));
        }
    }

    /// The next event, waiting for it; `None` after the last. Must not be called from
    /// inside an async runtime (use [`Self::recv`] there).
    pub fn next_event(&mut self) -> Option<Result<Event>> {
        self.events.blocking_recv()
    }

    /// The next event, awaited; `None` after the last.
    pub async fn recv(&mut self) -> Option<Result<Event>> {
        self.events.recv().await
    }

    /// The next event if one is ready, else registers `cx` to be woken for it (for
    /// callers that wait on several streams at once).
    pub fn poll_recv(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Event>>> {
        self.events.poll_recv(cx)
    }
}

impl Iterator for GenerationStream {
    type Item = Result<Event>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_event()
    }
}

impl Drop for GenerationStream {
    fn drop(&mut self) {
        self.cancel();
    }
}
