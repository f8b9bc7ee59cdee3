//! The engine's error type: one enum for loading, tokenizing, templating and generating.

/// What can go wrong between model files and generated tokens.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// An MLX operation failed.
    #[error(transparent)]
    Mlx(#[from] perch_mlx::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The model files are missing something or describe something unsupported.
    #[error("invalid model: {0}")]
    InvalidModel(String),
    /// The model's architecture is not one the engine implements.
    #[error("unsupported architecture {0:?} (supported: llama, mistral, qwen2, qwen3)")]
    UnsupportedArchitecture(String),
    /// The tokenizer could not be built or failed on input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template could not be parsed or rendered.
    #[error("chat template: {0}")]
    Template(String),
    /// The request is invalid for this model (prompt too long, bad parameter…).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Constrained decoding failed partway (the model's fault or Perch's, not the
    /// request's).
    #[error("the output constraint failed: {0}")]
    Constraint(String),
    /// A batched step failed; every request in it ends with this.
    #[error("the model failed while generating: {0}")]
    StepFailed(String),
    /// The model's worker thread is gone.
    #[error("the model was unloaded")]
    Unloaded,
}

impl EngineError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        EngineError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// `Result` with [`EngineError`].
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
