//! Perch's engine: everything between model files on disk and a stream of tokens, on MLX,
//! and the parts every engine shares (the text side, the sampler, the scheduler).
//!
//! [`format`] reads MLX directories and GGUF files into one shape; [`transformer`] builds
//! the Llama / Qwen2 / Qwen3 network and runs batched forward passes over a growing
//! [`kv_cache`]; [`text`] holds the tokenizer, chat templates and the streaming
//! detokenizer; [`reply`] reads replies back into text, reasoning and tool calls;
//! [`sampler`] turns logits into tokens for a whole batch at once; [`generate`] says what
//! a generation is asked and what it streams; [`scheduler`] shares a model between
//! requests (continuous batching, chunked prefill) over a backend's steps, of which
//! [`mlx_backend`] is the MLX one, with its [`batch_cache`] and [`prefix_cache`];
//! [`embed`] pools hidden states into embeddings; [`engine`] is the [`Engine`] trait every
//! loaded model is used through, [`engine_kind`] says which engine runs a model,
//! [`model_engine`] puts a model on its own thread behind the trait, and [`mlx_engine`]
//! loads one onto MLX (`perch-llama` loads one onto llama.cpp).
//!
//! No HTTP, no settings files and no async runtime live here.

pub mod batch;
pub mod batch_cache;
pub mod buffer_cache;
pub mod config;
pub mod constrain;
pub mod embed;
pub mod engine;
pub mod engine_kind;
mod error;
pub mod format;
pub mod generate;
pub mod import;
pub mod inspect;
mod job_queue;
pub mod kv_cache;
pub mod logits;
pub mod mlx_backend;
pub mod mlx_engine;
pub mod model;
pub mod model_engine;
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

pub use engine::{Engine, GenerationStream, ModelInfo, Serving};
pub use engine_kind::EngineKind;
pub use error::{EngineError, Result};
pub use mlx_engine::MlxEngine;
pub use model_engine::{Loaded, ModelEngine};
