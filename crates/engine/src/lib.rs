//! Perch's engine: everything between model files on disk and a stream of tokens, on MLX.
//!
//! [`format`] reads MLX directories and GGUF files into one shape; [`transformer`] builds
//! the Llama / Qwen2 / Qwen3 network and runs batched forward passes over a growing
//! [`kv_cache`]; [`text`] holds the tokenizer, chat templates and the streaming
//! detokenizer; [`reply`] reads replies back into text, reasoning and tool calls;
//! [`sampler`] turns logits into tokens for a whole batch at once; [`generate`] says what
//! a generation is asked and what it streams; [`scheduler`] shares a model between
//! requests (continuous batching, chunked prefill) over a backend's steps, of which
//! [`mlx_backend`] is the MLX one, with its [`batch_cache`] and [`prefix_cache`];
//! [`embed`] pools hidden states into embeddings; and [`engine`] puts a loaded model on
//! its own thread behind the [`Engine`] trait.
//!
//! No HTTP, no settings files and no async runtime live here.

pub mod batch;
pub mod batch_cache;
pub mod buffer_cache;
pub mod config;
pub mod constrain;
pub mod embed;
pub mod engine;
mod error;
pub mod format;
pub mod generate;
pub mod import;
pub mod inspect;
mod job_queue;
pub mod kv_cache;
pub mod mlx_backend;
pub mod model;
pub mod nn;
pub mod prefill_pacer;
pub mod prefix_cache;
pub mod quantization;
pub mod reply;
pub mod rope;
pub mod sampler;
pub mod sampling_defaults;
pub mod scheduler;
pub mod stop;
pub mod text;
pub mod transformer;
pub mod weights;

pub use engine::{Engine, GenerationStream, MlxEngine, Serving};
pub use error::{EngineError, Result};
