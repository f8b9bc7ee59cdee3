//! The model's hyper-parameters, read from an MLX directory's `config.json` or from GGUF
//! metadata, normalised into one [`ModelConfig`] that the transformer is built from.

use serde::{Deserialize, Serialize};

use crate::quantization::QuantizationConfig;
use crate::{EngineError, Result};

/// The transformer families the engine implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Llama 2/3.x, Mistral, SmolLM: RMS norm, SwiGLU, RoPE, grouped-query attention.
    Llama,
    /// Qwen2 / Qwen2.5: Llama plus biases on the q, k and v projections.
    Qwen2,
    /// Qwen3: Llama plus RMS norms on queries and keys, per head.
    Qwen3,
}

impl Architecture {
    /// Maps a `model_type` (config.json) or `general.architecture` (GGUF) name.
    pub fn from_name(name: &str) -> Result<Architecture> {
        match name {
            "llama" | "mistral" | "smollm" | "smollm2" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            "qwen3" => Ok(Architecture::Qwen3),
            other => Err(EngineError::UnsupportedArchitecture(other.to_owned())),
        }
    }

    /// The `model_type` mlx-lm and transformers use for this family.
    pub fn model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Qwen3 => "qwen3",
        }
    }
}

/// How positions are scaled before the rotary embedding.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// Llama 3.x frequency-dependent scaling.
    Llama3 {
        /// Overall stretch of the context.
        factor: f32,
        /// Wavelengths above `original / low_freq_factor` are fully scaled.
        low_freq_factor: f32,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f32,
        /// The context length the model was trained on.
        original_max_position_embeddings: f32,
    },
    /// Positions divided by `factor`.
    Linear {
        /// The divisor.
        factor: f32,
    },
}

/// Everything needed to build a model's layers.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The transformer family.
    pub architecture: Architecture,
    /// Width of the residual stream.
    pub hidden_size: i32,
    /// Number of transformer blocks.
    pub num_hidden_layers: i32,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: i32,
    /// Query heads.
    pub num_attention_heads: i32,
    /// Key/value heads (fewer than query heads with grouped-query attention).
    pub num_key_value_heads: i32,
    /// Features per head.
    pub head_dim: i32,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: i32,
    /// Epsilon of every RMS norm.
    pub rms_norm_eps: f32,
    /// RoPE base θ.
    pub rope_theta: f32,
    /// RoPE position scaling, if any.
    pub rope_scaling: Option<RopeScaling>,
    /// Whether the output head reuses the embedding matrix.
    pub tie_word_embeddings: bool,
    /// The longest context the model supports.
    pub max_position_embeddings: i32,
    /// Whether q, k and v projections have biases (Qwen2).
    pub attention_bias: bool,
    /// How weights are quantized, if they are.
    pub quantization: Option<QuantizationConfig>,
}

/// `config.json` as Hugging Face and mlx-community write it (the fields Perch reads).
#[derive(Deserialize)]
struct RawConfig {
    model_type: String,
    hidden_size: i32,
    num_hidden_layers: i32,
    intermediate_size: i32,
    num_attention_heads: i32,
    num_key_value_heads: Option<i32>,
    head_dim: Option<i32>,
    vocab_size: i32,
    rms_norm_eps: f32,
    rope_theta: Option<f32>,
    rope_scaling: Option<serde_json::Value>,
    tie_word_embeddings: Option<bool>,
    max_position_embeddings: Option<i32>,
    attention_bias: Option<bool>,
    quantization: Option<serde_json::Value>,
}

impl ModelConfig {
    /// Parses the text of a `config.json`.
    pub fn from_json(text: &str) -> Result<ModelConfig> {
        let raw: RawConfig = serde_json::from_str(text)
            .map_err(|e| EngineError::InvalidModel(format!("config.json: {e}")))?;
        let architecture = Architecture::from_name(&raw.model_type)?;
        let heads = raw.num_attention_heads;
        let config = ModelConfig {
            architecture,
            hidden_size: raw.hidden_size,
            num_hidden_layers: raw.num_hidden_layers,
            intermediate_size: raw.intermediate_size,
            num_attention_heads: heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(heads),
            head_dim: raw.head_dim.unwrap_or(raw.hidden_size / heads.max(1)),
            vocab_size: raw.vocab_size,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta: raw.rope_theta.unwrap_or(10_000.0),
            rope_scaling: raw
                .rope_scaling
                .as_ref()
                .map(parse_rope_scaling)
                .transpose()?
                .flatten(),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(4096),
            attention_bias: raw
                .attention_bias
                .unwrap_or(architecture == Architecture::Qwen2),
            quantization: raw
                .quantization
                .as_ref()
                .map(QuantizationConfig::from_json)
                .transpose()?,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the shapes fit together, so that a bad config fails at load with a clear
    /// message rather than in the middle of a forward pass.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("vocab_size", self.vocab_size),
        ];
        if let Some((name, value)) = positive.iter().find(|(_, v)| *v <= 0) {
            return Err(EngineError::InvalidModel(format!(
                "{name} must be positive, is {value}"
            )));
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            return Err(EngineError::InvalidModel(format!(
                "{} attention heads cannot be grouped over {} key/value heads",
                self.num_attention_heads, self.num_key_value_heads
            )));
        }
        Ok(())
    }

    /// The `config.json` that mlx-lm and transformers read for this model.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({
            "model_type": self.architecture.model_type(),
            "architectures": [match self.architecture {
                Architecture::Llama => "LlamaForCausalLM",
                Architecture::Qwen2 => "Qwen2ForCausalLM",
                Architecture::Qwen3 => "Qwen3ForCausalLM",
            }],
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "intermediate_size": self.intermediate_size,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "vocab_size": self.vocab_size,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "attention_bias": self.attention_bias,
        });
        if let Some(scaling) = &self.rope_scaling {
            json["rope_scaling"] = match scaling {
                RopeScaling::Llama3 {
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_max_position_embeddings,
                } => serde_json::json!({
                    "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
                    "high_freq_factor": high_freq_factor,
                    "original_max_position_embeddings": original_max_position_embeddings,
                }),
                RopeScaling::Linear { factor } => {
                    serde_json::json!({"rope_type": "linear", "factor": factor})
                }
            };
        }
        if let Some(q) = &self.quantization {
            json["quantization"] = q.to_json();
        }
        json
    }
}

fn parse_rope_scaling(value: &serde_json::Value) -> Result<Option<RopeScaling>> {
    if value.is_null() {
        return Ok(None);
    }
    let kind = value
        .get("rope_type")
        .or_else(|| value.get("type"))
        .and_then(|v| v.as_str())
        .unwrap_or("default");
    let number = |key: &str, default: f32| -> f32 {
        value
            .get(key)
            .and_then(|v| v.as_f64())
            .map_or(default, |v| v as f32)
    };
    match kind {
        "default" => Ok(None),
        "llama3" => Ok(Some(RopeScaling::Llama3 {
            factor: number("factor", 1.0),
            low_freq_factor: number("low_freq_factor", 1.0),
            high_freq_factor: number("high_freq_factor", 4.0),
            original_max_position_embeddings: number("original_max_position_embeddings", 8192.0),
        })),
        "linear" => Ok(Some(RopeScaling::Linear {
            factor: number("factor", 1.0),
        })),
        other => Err(EngineError::InvalidModel(format!(
            "unsupported rope_scaling type {other:?}"
        ))),
    }
}
