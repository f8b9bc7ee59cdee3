//! What a model will cost before it is loaded, read from headers alone: a GGUF header, the
//! safetensors headers and `config.json` of an MLX directory. No tensor is read, so this
//! answers in milliseconds for a model of any size, and it is what the memory planner
//! and the model manifests use.
//!
//! The byte counts follow what loading does on this machine, on the engine that runs the
//! model. On MLX, floating-point tensors are held in the compute dtype (float32 on the
//! CPU, float16 elsewhere), Q4_0, Q4_1 and Q8_0 GGUF tensors stay packed with a scale and
//! a bias per group of 32, other GGUF types are widened, and MLX's packed `uint32` weights
//! stay as they are. On llama.cpp, a GGUF's tensors are used as the file holds them
//! (memory-mapped) and the KV cache is float16.

use std::path::Path;

use perch_mlx::io::{GgufSummary, GgufTensorInfo, SafetensorsTensor};
use perch_mlx::{DeviceKind, Dtype};

use crate::config::ModelConfig;
use crate::engine_kind::EngineKind;
use crate::{EngineError, Result};

/// How a model is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    /// One `.gguf` file.
    Gguf,
    /// An MLX directory (`config.json` and `*.safetensors`).
    Mlx,
}

impl ModelFormat {
    /// `gguf` or `mlx`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Gguf => "gguf",
            ModelFormat::Mlx => "mlx",
        }
    }
}

/// A model's size and shape, from its headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFacts {
    /// How it is stored.
    pub format: ModelFormat,
    /// Its architecture as the files name it (`llama`, `qwen3`, …).
    pub architecture: String,
    /// Number of parameters.
    pub parameters: u64,
    /// How its weights are quantized (`Q4_1`, `4-bit`), if they are.
    pub quantization: Option<String>,
    /// The longest context it supports, in tokens.
    pub context_length: u64,
    /// Bytes its weights take once loaded on this machine.
    pub weights_bytes: u64,
    /// Bytes of key/value cache per token of context on this machine.
    pub kv_bytes_per_token: u64,
    /// Bytes of activations per token of a prefill chunk: the residual stream, the MLP's
    /// hidden layer and the attention output, at the compute dtype.
    pub activation_bytes_per_token: u64,
    /// Query heads (attention scores grow with them).
    pub attention_heads: u64,
    /// Vocabulary size (the logits row).
    pub vocab_size: u64,
    /// The Jinja chat template, if the model has one.
    pub chat_template: Option<String>,
    /// The engine the byte counts are for.
    pub engine: EngineKind,
}

/// Reads the facts of the model at `path` (a `.gguf` file or an MLX directory), as the
/// engine it runs on by default would hold it.
pub fn inspect(path: &Path) -> Result<ModelFacts> {
    inspect_on(path, EngineKind::for_model(path, None)?)
}

/// Reads the facts of the model at `path` as `engine` would hold it (an invalid request
/// when that engine cannot read it).
pub fn inspect_on(path: &Path, engine: EngineKind) -> Result<ModelFacts> {
    let engine = EngineKind::for_model(path, Some(engine))?;
    if path.is_dir() {
        inspect_mlx_dir(path)
    } else {
        let header = perch_mlx::io::read_gguf_header(path)?;
        facts_of_gguf(&header, engine)
    }
}

/// Bytes of one floating-point element once loaded: the engine computes in float32 on the
/// CPU and in half precision on a GPU.
pub fn compute_element_bytes() -> u64 {
    if perch_mlx::default_device() == DeviceKind::Cpu {
        Dtype::Float32.size_of() as u64
    } else {
        Dtype::Float16.size_of() as u64
    }
}

/// Facts from a checked GGUF header, for `engine`.
pub fn facts_of_gguf(header: &GgufSummary, engine: EngineKind) -> Result<ModelFacts> {
    let text = |key: &str| header.scalars.get(key).and_then(|v| v.as_str());
    let arch = text("general.architecture")
        .ok_or_else(|| EngineError::InvalidModel("GGUF has no general.architecture".into()))?
        .to_owned();
    let number = |key: &str| {
        header
            .scalars
            .get(&format!("{arch}.{key}"))
            .and_then(|v| v.as_u64())
    };
    let required = |key: &str| {
        number(key).ok_or_else(|| EngineError::InvalidModel(format!("GGUF has no {arch}.{key}")))
    };
    let hidden = required("embedding_length")?;
    let heads = required("attention.head_count")?.max(1);
    let layers = required("block_count")?;
    let kv_heads = number("attention.head_count_kv").unwrap_or(heads);
    let head_dim = number("attention.key_length").unwrap_or(hidden / heads);
    let intermediate = number("feed_forward_length").unwrap_or(4 * hidden);
    let vocab = number("vocab_size")
        .or_else(|| {
            header
                .tensor_infos
                .iter()
                .find(|t| t.name == "token_embd.weight")
                .map(|t| t.elements / hidden.max(1))
        })
        .unwrap_or(0);
    let element = compute_element_bytes();
    let (weights_bytes, kv_element) = match engine {
        EngineKind::Mlx => (
            header
                .tensor_infos
                .iter()
                .map(|t| gguf_loaded_bytes(t, element))
                .sum(),
            element,
        ),
        EngineKind::LlamaCpp => (
            header.tensor_infos.iter().map(|t| t.bytes).sum(),
            Dtype::Float16.size_of() as u64,
        ),
    };
    let file_type = header
        .scalars
        .get("general.file_type")
        .and_then(|v| v.as_u64());
    Ok(ModelFacts {
        format: ModelFormat::Gguf,
        architecture: arch.clone(),
        parameters: header.tensor_infos.iter().map(|t| t.elements).sum(),
        quantization: file_type.and_then(gguf_file_type_name).map(str::to_owned),
        context_length: number("context_length").unwrap_or(4096),
        weights_bytes,
        kv_bytes_per_token: 2 * layers * kv_heads * head_dim * kv_element,
        activation_bytes_per_token: activation_elements(hidden, intermediate, heads * head_dim)
            * element,
        attention_heads: heads,
        vocab_size: vocab,
        chat_template: text("tokenizer.chat_template").map(str::to_owned),
        engine,
    })
}

/// Bytes a GGUF tensor takes once MLX has loaded it.
fn gguf_loaded_bytes(t: &GgufTensorInfo, element: u64) -> u64 {
    let groups = t.elements / 32;
    match t.kind {
        // Q4_0 and Q4_1: 4 bits a weight; a scale and a bias per group of 32.
        2 | 3 => t.elements / 2 + groups * 2 * element,
        // Q8_0: a byte a weight; a scale and a bias per group.
        8 => t.elements + groups * 2 * element,
        // Floats, and the types MLX widens.
        _ => t.elements * element,
    }
}

/// The name llama.cpp gives a GGUF's `general.file_type`.
fn gguf_file_type_name(file_type: u64) -> Option<&'static str> {
    Some(match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        _ => return None,
    })
}

fn inspect_mlx_dir(dir: &Path) -> Result<ModelFacts> {
    let config_path = dir.join("config.json");
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| EngineError::io(&config_path, e))?;
    let config = ModelConfig::from_json(&text)?;
    let mut tensors = Vec::new();
    for file in crate::format::mlx_dir::safetensors_files(dir)? {
        tensors.extend(perch_mlx::io::read_safetensors_header(&file)?);
    }
    if tensors.is_empty() {
        return Err(EngineError::InvalidModel(format!(
            "{} holds no *.safetensors weights",
            dir.display()
        )));
    }
    let mut facts = facts_of_config(&config, &tensors);
    facts.chat_template = crate::format::mlx_dir::chat_template(dir)?;
    Ok(facts)
}

/// Facts from a parsed `config.json` and the tensors its safetensors headers list.
pub fn facts_of_config(config: &ModelConfig, tensors: &[SafetensorsTensor]) -> ModelFacts {
    let element = compute_element_bytes();
    let default = config.quantization.as_ref().and_then(|q| q.default);
    let group = default.map_or(64, |p| p.group_size as u64);
    let is_scales = |name: &str| name.ends_with(".scales") || name.ends_with(".biases");
    let parameters = tensors
        .iter()
        .filter(|t| !is_scales(&t.name))
        .map(|t| {
            if t.dtype == "U32" {
                // Packed: count the weights through their scales, one per group.
                let stem = t.name.trim_end_matches(".weight");
                tensors
                    .iter()
                    .find(|s| s.name == format!("{stem}.scales"))
                    .map_or(t.elements, |s| s.elements * group)
            } else {
                t.elements
            }
        })
        .sum();
    let weights_bytes = tensors
        .iter()
        .map(|t| match t.dtype.as_str() {
            "F16" | "BF16" | "F32" | "F64" => t.elements * element,
            _ => t.bytes,
        })
        .sum();
    let c = config;
    let as_u64 = |n: i32| u64::try_from(n).unwrap_or(0);
    ModelFacts {
        format: ModelFormat::Mlx,
        architecture: c.architecture.model_type().to_owned(),
        parameters,
        quantization: default.map(|p| format!("{}-bit", p.bits)),
        context_length: as_u64(c.max_position_embeddings),
        weights_bytes,
        kv_bytes_per_token: 2
            * as_u64(c.num_hidden_layers)
            * as_u64(c.num_key_value_heads)
            * as_u64(c.head_dim)
            * element,
        activation_bytes_per_token: activation_elements(
            as_u64(c.hidden_size),
            as_u64(c.intermediate_size),
            as_u64(c.num_attention_heads * c.head_dim),
        ) * element,
        attention_heads: as_u64(c.num_attention_heads),
        vocab_size: as_u64(c.vocab_size),
        chat_template: None,
        engine: EngineKind::Mlx,
    }
}

/// Elements alive per token in one layer's forward pass: the residual stream and its
/// normed copy, queries, keys and values, the attention output, and the MLP's gate, up
/// and product.
pub fn activation_elements(hidden: u64, intermediate: u64, attention_width: u64) -> u64 {
    3 * hidden + 3 * attention_width + 3 * intermediate
}
