//! [`ModelEngine`]: a loaded model on its own thread, where a [`Scheduler`] shares it
//! between requests over the model's [`Backend`] (MLX's, llama.cpp's), talking to
//! callers through channels. The tokenizer and chat template are kept on the callers'
//! side too, so rendering and tokenizing never wait for the model. Each job carries the
//! caller's tracing span, so the worker's log lines (a cancelled request with the phase it
//! was in) name the request they belong to.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::constrain::{Constraint, Grammar, Vocabulary};
use crate::embed::{EmbedRequest, EmbeddingJob, EmbeddingRecipe};
use crate::engine::{Engine, GenerationStream, ModelInfo};
use crate::generate::GenerateRequest;
use crate::job_queue::{Job, JobQueue, Work};
use crate::scheduler::backend::Backend;
use crate::scheduler::policy::SchedulePolicy;
use crate::scheduler::Scheduler;
use crate::text::chat_prompt::{ChatInput, ChatPrompt, ChatText};
use crate::text::template::ChatTemplate;
use crate::text::tokenizer::Tokenizer;
use crate::{EngineError, Result};

/// What loading a model gives its engine: the facts, the text side, and the backend.
pub struct Loaded<B> {
    /// Facts about the model.
    pub info: ModelInfo,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Its chat template, if it has one.
    pub chat_template: Option<ChatTemplate>,
    /// What runs it.
    pub backend: B,
}

struct TextSide {
    tokenizer: crate::text::tokenizer::Tokenizer,
    chat_template: Option<crate::text::template::ChatTemplate>,
    /// Built on the first constrained request.
    vocabulary: OnceLock<std::result::Result<Vocabulary, String>>,
}

/// A model on its own thread, where a scheduler runs its requests together.
pub struct ModelEngine {
    info: ModelInfo,
    text: Arc<TextSide>,
    /// Closed when the engine is dropped, which cancels whatever the worker is running or
    /// has queued, so dropping never waits for a long prompt.
    jobs: Arc<JobQueue>,
    /// Bytes of key/value state the worker holds.
    kv_bytes: Arc<AtomicUsize>,
    worker: Option<JoinHandle<()>>,
}

impl ModelEngine {
    /// Starts a worker thread called after `name`, where `load` loads the model; then the
    /// worker's scheduler serves it. Waits until it is ready.
    pub fn start<B, F>(name: &str, load: F) -> Result<ModelEngine>
    where
        B: Backend + 'static,
        F: FnOnce() -> Result<Loaded<B>> + Send + 'static,
    {
        let (ready_tx, ready_rx) = mpsc::channel();
        let jobs = Arc::new(JobQueue::default());
        let queue = jobs.clone();
        let kv_bytes = Arc::new(AtomicUsize::new(0));
        let held = kv_bytes.clone();
        let worker = std::thread::Builder::new()
            .name(format!("perch-model-{name}"))
            .spawn(move || {
                let loaded = match load() {
                    Ok(loaded) => loaded,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let sequences = loaded.info.serving.sequences;
                // The tokenizer and template are cloned for callers; the worker keeps
                // its own so neither side locks.
                let text = TextSide {
                    tokenizer: loaded.tokenizer,
                    chat_template: loaded.chat_template,
                    vocabulary: OnceLock::new(),
                };
                if ready_tx.send(Ok((loaded.info, text))).is_err() {
                    return;
                }
                let policy = SchedulePolicy::with_sequences(sequences);
                Scheduler::new(loaded.backend, policy, queue, held).run();
            })
            .map_err(|e| EngineError::io(Path::new(name), e))?;
        let (info, text) = ready_rx.recv().map_err(|_| EngineError::Unloaded)??;
        Ok(ModelEngine {
            info,
            text: Arc::new(text),
            jobs,
            kv_bytes,
            worker: Some(worker),
        })
    }
}

impl Engine for ModelEngine {
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

impl ModelEngine {
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

impl Drop for ModelEngine {
    fn drop(&mut self) {
        // Closing the queue cancels the running and queued jobs: the scheduler's loop
        // ends within one prefill chunk or decode step.
        self.jobs.close();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
