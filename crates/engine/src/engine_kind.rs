//! [`EngineKind`]: which engine runs a model. A GGUF file runs on llama.cpp unless asked
//! otherwise (llama.cpp reads every quantization, at its own speed); an MLX directory runs
//! on MLX, the only engine that reads one.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::{EngineError, Result};

/// Which engine runs a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Perch's own, on MLX (Metal, CUDA or the CPU).
    Mlx,
    /// llama.cpp (`perch-llama`), for GGUF files.
    LlamaCpp,
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Mlx => "mlx",
            EngineKind::LlamaCpp => "llama.cpp",
        })
    }
}

impl FromStr for EngineKind {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<EngineKind, String> {
        match text.trim() {
            "mlx" => Ok(EngineKind::Mlx),
            "llama.cpp" | "llama" | "llamacpp" => Ok(EngineKind::LlamaCpp),
            other => Err(format!(
                "the engine must be \"mlx\" or \"llama.cpp\", got {other:?}"
            )),
        }
    }
}

impl serde::Serialize for EngineKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for EngineKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<EngineKind, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl EngineKind {
    /// Whether the engine saves kept sequences to host memory beside a KV cache it
    /// allocates whole (llama.cpp; see [`crate::prefix_cache::SAVED_KV_DIVISOR`]).
    pub fn saves_kept_sequences(self) -> bool {
        self == EngineKind::LlamaCpp
    }

    /// The engine for the model at `path`: `wanted` where it can read the model (a GGUF
    /// file on either engine), else the one that can; an invalid request when `wanted`
    /// cannot read it.
    ///
    /// ```
    /// use perch_engine::EngineKind;
    /// use std::path::Path;
    /// let gguf = Path::new("model.gguf");
    /// assert_eq!(EngineKind::for_model(gguf, None).unwrap(), EngineKind::LlamaCpp);
    /// assert_eq!(EngineKind::for_model(gguf, Some(EngineKind::Mlx)).unwrap(), EngineKind::Mlx);
    /// let dir = std::env::temp_dir();
    /// assert_eq!(EngineKind::for_model(&dir, None).unwrap(), EngineKind::Mlx);
    /// assert!(EngineKind::for_model(&dir, Some(EngineKind::LlamaCpp)).is_err());
    /// ```
    pub fn for_model(path: &Path, wanted: Option<EngineKind>) -> Result<EngineKind> {
        if !path.is_dir() {
            return Ok(wanted.unwrap_or(EngineKind::LlamaCpp));
        }
        match wanted {
            Some(EngineKind::LlamaCpp) => Err(EngineError::InvalidRequest(format!(
                "llama.cpp reads GGUF files only; {} is an MLX directory (use the mlx engine)",
                path.display()
            ))),
            _ => Ok(EngineKind::Mlx),
        }
    }
}
