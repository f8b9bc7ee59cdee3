//! Model formats on disk: an MLX directory (as mlx-community publishes them) or a single
//! GGUF file. Each loader produces the same [`ModelFiles`]: a config, tensors under
//! Hugging Face names, a tokenizer and the chat template.

pub mod gguf;
mod gguf_tokenizer;
pub mod mlx_dir;

use std::collections::HashMap;
use std::path::Path;

use perch_mlx::Array;

use crate::config::ModelConfig;
use crate::text::tokenizer::Tokenizer;
use crate::Result;

/// Everything read from a model's files, before layers are built.
pub struct ModelFiles {
    /// Hyper-parameters.
    pub config: ModelConfig,
    /// Tensors by Hugging Face name.
    pub tensors: HashMap<String, Array>,
    /// The tokenizer, with its special tokens.
    pub tokenizer: Tokenizer,
    /// The Jinja chat template, if the model has one.
    pub chat_template: Option<String>,
    /// Token ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// The `tokenizer.json` text (written by `perch import`).
    pub tokenizer_json: String,
    /// Notes for the user about the load (dequantized tensor types and their cost…).
    pub notes: Vec<String>,
}

/// Reads a model from `path`: a directory (MLX format) or a `.gguf` file.
pub fn read(path: &Path) -> Result<ModelFiles> {
    if path.is_dir() {
        mlx_dir::read(path)
    } else {
        gguf::read(path)
    }
}
