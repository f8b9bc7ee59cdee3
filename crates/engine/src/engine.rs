//! The [`Engine`] trait — what the rest of Perch needs from a loaded model — and
//! [`MlxEngine`], which keeps an MLX model on one dedicated thread, where the
//! [`crate::scheduler`] shares it between requests, and talks to callers through
//! channels. A llama.cpp engine for GGUF K-quants can later sit beside it, on the same
//! scheduler.
//!
//! A generation's events travel on a `tokio::sync` channel (no runtime needed), so async
//! callers await them without a thread per request and blocking callers iterate. Each
//! job carries the caller's tracing span, so the worker's log lines (a cancelled request
//! with the phase it was in) name the request they belong to.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::ModelConfig;
use crate::constrain::{Constraint, Grammar, Vocabulary};
use crate::embed::{EmbedRequest, EmbeddingJob, EmbeddingRecipe};
use crate::generate::{self, Event, GenerateRequest, Phase};
use crate::job_queue::{Job, JobQueue, Work};
use crate::mlx_backend::MlxBackend;
use crate::model::Model;
use crate::reply::ReplySyntax;
use crate::sampling_defaults::SamplingDefaults;
use crate::scheduler::policy::SchedulePolicy;
use crate::scheduler::{log_cancelled, Scheduler};
use crate::text::chat_prompt::{ChatInput, ChatPrompt, ChatText};
use crate::{EngineError, Result};

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
    events: tokio::sync::mpsc::UnboundedReceiver<Result<Event>>,
    cancel: Arc<AtomicBool>,
    queue: Arc<JobQueue>,
    id: u64,
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

/// The text side of a model, shared with callers' threads (the network stays on the
/// worker).
struct TextSide {
    tokenizer: crate::text::tokenizer::Tokenizer,
    chat_template: Option<crate::text::template::ChatTemplate>,
    /// Built on the first constrained request.
    vocabulary: OnceLock<std::result::Result<Vocabulary, String>>,
}

/// An MLX model on its own thread, where a scheduler runs its requests together.
pub struct MlxEngine {
    info: ModelInfo,
    text: Arc<TextSide>,
    /// Closed when the engine is dropped, which cancels whatever the worker is running or
    /// has queued, so dropping never waits for a long prompt.
    jobs: Arc<JobQueue>,
    /// Bytes of key/value state the worker holds.
    kv_bytes: Arc<AtomicUsize>,
    worker: Option<JoinHandle<()>>,
}

impl MlxEngine {
    /// Loads the model at `path` on a new worker thread with the default [`Serving`] and
    /// waits until it is ready.
    pub fn load(path: &Path) -> Result<MlxEngine> {
        MlxEngine::load_serving(path, Serving::default())
    }

    /// Loads the model at `path` to serve as `serving` says: the scheduler runs up to
    /// `serving.sequences` generations at once, with a key/value pool of that many
    /// contexts (shared with the prefix cache).
    pub fn load_serving(path: &Path, serving: Serving) -> Result<MlxEngine> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let jobs = Arc::new(JobQueue::default());
        let queue = jobs.clone();
        let kv_bytes = Arc::new(AtomicUsize::new(0));
        let held = kv_bytes.clone();
        let owned = path.to_owned();
        let worker = std::thread::Builder::new()
            .name(format!(
                "perch-model-{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ))
            .spawn(move || {
                let model = match Model::load(&owned) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let sampling_defaults = SamplingDefaults::of(&owned);
                let embedding = EmbeddingRecipe::of(&owned);
                let config = model.transformer.config();
                let serving = Serving::new(
                    serving.sequences,
                    serving.context.min(config.max_position_embeddings as usize),
                );
                let info = ModelInfo {
                    path: owned,
                    config: model.transformer.config().clone(),
                    weights_bytes: model.transformer.nbytes(),
                    kv_bytes_per_token: model.transformer.kv_bytes_per_token(),
                    load_time: model.load_time,
                    notes: model.notes.clone(),
                    eos_token_ids: model.eos_token_ids.clone(),
                    sampling_defaults,
                    embedding,
                    reply_syntax: ReplySyntax::detect(model.chat_template.as_ref(), |token| {
                        model.tokenizer.token_id(token).is_some()
                    }),
                    serving,
                };
                // The tokenizer and template are cloned for callers; the worker keeps
                // its own so neither side locks.
                let text = TextSide {
                    tokenizer: model.tokenizer.clone(),
                    chat_template: model.chat_template.clone(),
                    vocabulary: OnceLock::new(),
                };
                if ready_tx.send(Ok((info, text))).is_err() {
                    return;
                }
                let backend =
                    MlxBackend::new(model, serving.context, serving.context * serving.sequences);
                let policy = SchedulePolicy::with_sequences(serving.sequences);
                Scheduler::new(backend, policy, queue, held).run();
            })
            .map_err(|e| EngineError::io(path, e))?;
        let (info, text) = ready_rx.recv().map_err(|_| EngineError::Unloaded)??;
        Ok(MlxEngine {
            info,
            text: Arc::new(text),
            jobs,
            kv_bytes,
            worker: Some(worker),
        })
    }
}

impl Engine for MlxEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn tokenize(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        self.text.tokenizer.encode(text, add_special)
    }

    fn detokenize(&self, ids: &[u32]) -> Result<String> {
        self.text.tokenizer.decode(ids, false)
    }

    fn chat(&self, input: &ChatInput<'_>) -> Result<ChatPrompt> {
        let template = self.text.chat_template.as_ref().ok_or_else(|| {
            EngineError::InvalidRequest(
                "this model has no chat template; use a plain completion".into(),
            )
        })?;
        ChatText {
            tokenizer: &self.text.tokenizer,
            template,
            syntax: self.info.reply_syntax,
        }
        .prompt(input)
    }

    fn constrain(&self, grammar: &Grammar) -> Result<Constraint> {
        let tokenizer = &self.text.tokenizer;
        let vocabulary = self.text.vocabulary.get_or_init(|| {
            let eos = *self
                .info
                .eos_token_ids
                .first()
                .ok_or("this model has no end-of-sequence token")?;
            Vocabulary::new(tokenizer, eos).map_err(|e| e.to_string())
        });
        let vocabulary = vocabulary
            .as_ref()
            .map_err(|e| EngineError::Tokenizer(e.clone()))?;
        vocabulary.compile(grammar, self.info.reply_syntax.tools, |token| {
            tokenizer.token_id(token)
        })
    }

    fn kv_bytes_in_use(&self) -> usize {
        self.kv_bytes.load(Ordering::Relaxed)
    }

    fn embed(&self, request: EmbedRequest) -> Result<EmbeddingJob> {
        let recipe = self.check_embed(&request)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let id = self.jobs.next_id();
        let job = Job {
            id,
            arrived: Instant::now(),
            work: Work::Embed {
                request,
                recipe,
                reply,
            },
            cancel: cancel.clone(),
            span: tracing::Span::current(),
        };
        if !self.jobs.push(job) {
            return Err(EngineError::Unloaded);
        }
        Ok(EmbeddingJob {
            reply: Some(answer),
            cancel,
            queue: self.jobs.clone(),
            id,
        })
    }

    fn generate(&self, request: GenerateRequest) -> Result<GenerationStream> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let id = self.jobs.next_id();
        let job = Job {
            id,
            arrived: request.arrived.unwrap_or_else(Instant::now),
            work: Work::Generate {
                request,
                events: tx,
            },
            cancel: cancel.clone(),
            span: tracing::Span::current(),
        };
        if !self.jobs.push(job) {
            return Err(EngineError::Unloaded);
        }
        Ok(GenerationStream {
            events: rx,
            cancel,
            queue: self.jobs.clone(),
            id,
        })
    }
}

impl MlxEngine {
    /// Checks `request` against the model before it queues; the model's recipe.
    fn check_embed(&self, request: &EmbedRequest) -> Result<EmbeddingRecipe> {
        let invalid = |m: String| Err(EngineError::InvalidRequest(m));
        let recipe = match &self.info.embedding {
            Ok(recipe) => *recipe,
            Err(why) => return invalid(why.clone()),
        };
        if request.inputs.is_empty() {
            return invalid("there is nothing to embed: the input is empty".into());
        }
        let vocab = self.info.config.vocab_size as u32;
        for (i, input) in request.inputs.iter().enumerate() {
            if input.is_empty() {
                return invalid(format!("input {i} is empty"));
            }
            if let Some(id) = input.iter().find(|&&id| id >= vocab) {
                return invalid(format!(
                    "input {i} holds token id {id}, beyond this model's vocabulary of {vocab}"
                ));
            }
        }
        let width = self.info.config.hidden_size as usize;
        match request.dimensions {
            Some(d) if d == 0 || d > width => invalid(format!(
                "dimensions must be between 1 and {width} (this model's embedding size), got {d}"
            )),
            _ => Ok(recipe),
        }
    }
}

impl Drop for MlxEngine {
    fn drop(&mut self) {
        // Closing the queue cancels the running and queued jobs: the scheduler's loop
        // ends within one prefill chunk or decode step.
        self.jobs.close();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
