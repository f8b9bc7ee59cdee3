//! GGUF files through MLX's loader. Tensor names are mapped onto Hugging Face's, the Q and
//! K rows that llama.cpp's converter permutes for Llama-family models are put back (so one
//! RoPE convention serves both formats), and the tokenizer is rebuilt from metadata.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use perch_mlx::io::{Gguf, GgufArray, GgufScalar, GgufSummary};
use perch_mlx::{Array, Dtype};

use super::ModelFiles;
use crate::config::{Architecture, ModelConfig, RopeScaling};
use crate::format::gguf_tokenizer;
use crate::quantization::{QuantParams, QuantizationConfig};
use crate::text::tokenizer::Tokenizer;
use crate::{EngineError, Result};

/// GGUF stores every quantized type MLX keeps packed (Q4_0, Q4_1, Q8_0) in groups of 32.
const GGUF_GROUP_SIZE: i32 = 32;

/// What a GGUF's header says of the model, with no tensor read: enough to serve it from
/// an engine that reads the weights itself (llama.cpp).
pub struct GgufText {
    /// Hyper-parameters.
    pub config: ModelConfig,
    /// The tokenizer, rebuilt from the metadata.
    pub tokenizer: Tokenizer,
    /// The `tokenizer.json` text it was built from.
    pub tokenizer_json: String,
    /// The Jinja chat template, if the model has one.
    pub chat_template: Option<String>,
    /// Token ids that end generation.
    pub eos_token_ids: Vec<u32>,
}

/// Reads the header of the GGUF model at `path` (checked first) into its config, tokenizer
/// and chat template.
pub fn read_text(path: &Path) -> Result<GgufText> {
    if !path.exists() {
        return Err(EngineError::io(
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    }
    let header = perch_mlx::io::read_gguf_header(path)?;
    let config = read_config(&header)?;
    let started = std::time::Instant::now();
    let built = gguf_tokenizer::build(&header)?;
    let tokenizer = Tokenizer::from_json(
        &built.json,
        built.bos_token.clone(),
        built.eos_token.clone(),
    )?;
    tracing::debug!(
        tokenizer_ms = (started.elapsed().as_secs_f64() * 1e3).round(),
        "GGUF tokenizer rebuilt"
    );
    Ok(GgufText {
        config,
        tokenizer,
        tokenizer_json: built.json,
        chat_template: header
            .scalars
            .get("tokenizer.chat_template")
            .and_then(GgufScalar::as_str)
            .map(str::to_owned),
        eos_token_ids: built.eos_token_ids,
    })
}

/// Reads a GGUF model: its header as [`read_text`] does, and its tensors through MLX's
/// loader.
pub fn read(path: &Path) -> Result<ModelFiles> {
    let text = read_text(path)?;
    let gguf = Gguf::open(path)?;
    let names = gguf.tensor_names();
    if names.iter().any(|n| n == "rope_freqs.weight") {
        return Err(EngineError::InvalidModel(
            "this GGUF carries Llama 3 rope factors (rope_freqs), which Perch's MLX engine \
             does not read yet; use the model's MLX version or the llama.cpp engine"
                .into(),
        ));
    }
    let mut tensors = HashMap::with_capacity(names.len());
    for name in &names {
        let hf = hf_name(name)
            .ok_or_else(|| EngineError::InvalidModel(format!("unexpected GGUF tensor {name}")))?;
        tensors.insert(hf, gguf.tensor(name)?);
    }
    let mut config = text.config;
    config.quantization = quantization_of(&tensors);
    if config.architecture == Architecture::Llama {
        unpermute_qk(&mut tensors, &config)?;
    }
    let notes = dequantization_note(&gguf, &tensors, path)?
        .into_iter()
        .collect();
    Ok(ModelFiles {
        config,
        tensors,
        tokenizer: text.tokenizer,
        chat_template: text.chat_template,
        eos_token_ids: text.eos_token_ids,
        tokenizer_json: text.tokenizer_json,
        notes,
    })
}

/// `blk.3.attn_q.weight` → `model.layers.3.self_attn.q_proj.weight`, and so on.
fn hf_name(gguf_name: &str) -> Option<String> {
    let (stem, suffix) = gguf_name.rsplit_once('.')?;
    if !matches!(suffix, "weight" | "bias" | "scales" | "biases") {
        return None;
    }
    let module = match stem {
        "token_embd" => "model.embed_tokens".to_owned(),
        "output_norm" => "model.norm".to_owned(),
        "output" => "lm_head".to_owned(),
        _ => {
            let rest = stem.strip_prefix("blk.")?;
            let (layer, part) = rest.split_once('.')?;
            let part = match part {
                "attn_q" => "self_attn.q_proj",
                "attn_k" => "self_attn.k_proj",
                "attn_v" => "self_attn.v_proj",
                "attn_output" => "self_attn.o_proj",
                "attn_q_norm" => "self_attn.q_norm",
                "attn_k_norm" => "self_attn.k_norm",
                "attn_norm" => "input_layernorm",
                "ffn_norm" => "post_attention_layernorm",
                "ffn_gate" => "mlp.gate_proj",
                "ffn_up" => "mlp.up_proj",
                "ffn_down" => "mlp.down_proj",
                _ => return None,
            };
            format!("model.layers.{layer}.{part}")
        }
    };
    Some(format!("{module}.{suffix}"))
}

/// The model's hyper-parameters, from the header's metadata and tensor list.
fn read_config(header: &GgufSummary) -> Result<ModelConfig> {
    let arch = header
        .scalars
        .get("general.architecture")
        .and_then(GgufScalar::as_str)
        .ok_or_else(|| EngineError::InvalidModel("GGUF has no general.architecture".into()))?;
    let architecture = Architecture::from_name(arch)?;
    let scalar = |key: &str| header.scalars.get(&format!("{arch}.{key}"));
    let int = |key: &str| scalar(key).and_then(GgufScalar::as_u64).map(|v| v as i32);
    let required = |key: &str| -> Result<i32> {
        int(key).ok_or_else(|| EngineError::InvalidModel(format!("GGUF has no {arch}.{key}")))
    };
    let float = |key: &str| scalar(key).and_then(GgufScalar::as_f64).map(|v| v as f32);
    let has_tensor = |name: &str| header.tensor_infos.iter().any(|t| t.name == name);
    let hidden_size = required("embedding_length")?;
    let heads = required("attention.head_count")?;
    let vocab_size = match int("vocab_size") {
        Some(v) => v,
        None => match header.arrays.get("tokenizer.ggml.tokens") {
            Some(GgufArray::Strings(tokens)) => tokens.len() as i32,
            _ => 0,
        },
    };
    let rope_scaling = match scalar("rope.scaling.type").and_then(GgufScalar::as_str) {
        None | Some("none") => None,
        Some("linear") => Some(RopeScaling::Linear {
            factor: float("rope.scaling.factor").unwrap_or(1.0),
        }),
        Some(other) => {
            return Err(EngineError::InvalidModel(format!(
                "unsupported GGUF rope scaling {other:?}"
            )))
        }
    };
    let config = ModelConfig {
        architecture,
        hidden_size,
        num_hidden_layers: required("block_count")?,
        intermediate_size: required("feed_forward_length")?,
        num_attention_heads: heads,
        num_key_value_heads: int("attention.head_count_kv").unwrap_or(heads),
        head_dim: int("attention.key_length").unwrap_or(hidden_size / heads.max(1)),
        vocab_size,
        rms_norm_eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
        rope_theta: float("rope.freq_base").unwrap_or(10_000.0),
        rope_scaling,
        tie_word_embeddings: !has_tensor("output.weight"),
        max_position_embeddings: int("context_length").unwrap_or(4096),
        attention_bias: has_tensor("blk.0.attn_q.bias"),
        quantization: None,
    };
    config.validate()?;
    Ok(config)
}

/// Group size and bits of each packed layer, read off the tensor shapes: `cols` weights
/// pack into `cols * bits / 32` words and have `cols / 32` scales.
fn quantization_of(tensors: &HashMap<String, Array>) -> Option<QuantizationConfig> {
    let mut layers: BTreeMap<String, QuantParams> = BTreeMap::new();
    for (name, scales) in tensors {
        let Some(path) = name.strip_suffix(".scales") else {
            continue;
        };
        let Some(weight) = tensors.get(&format!("{path}.weight")) else {
            continue;
        };
        let (packed, groups) = (weight.shape()[1], scales.shape()[1]);
        layers.insert(
            path.to_owned(),
            QuantParams {
                group_size: GGUF_GROUP_SIZE,
                bits: packed / groups,
            },
        );
    }
    let mut counts: BTreeMap<i32, usize> = BTreeMap::new();
    for p in layers.values() {
        *counts.entry(p.bits).or_default() += 1;
    }
    let common_bits = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(bits, _)| *bits)?;
    let default = QuantParams {
        group_size: GGUF_GROUP_SIZE,
        bits: common_bits,
    };
    let overrides = layers
        .into_iter()
        .filter(|(_, p)| *p != default)
        .map(|(path, p)| (path, Some(p)))
        .collect();
    Some(QuantizationConfig {
        default: Some(default),
        overrides,
    })
}

/// Undoes llama.cpp's reordering of Q and K rows: within each head it interleaves the two
/// halves that RoPE rotates together; Hugging Face's layout keeps them as halves.
fn unpermute_qk(tensors: &mut HashMap<String, Array>, config: &ModelConfig) -> Result<()> {
    for layer in 0..config.num_hidden_layers {
        for (proj, heads) in [
            ("q_proj", config.num_attention_heads),
            ("k_proj", config.num_key_value_heads),
        ] {
            for suffix in ["weight", "scales", "biases", "bias"] {
                let name = format!("model.layers.{layer}.self_attn.{proj}.{suffix}");
                if let Some(t) = tensors.remove(&name) {
                    tensors.insert(name, unpermute_rows(&t, heads, config.head_dim)?);
                }
            }
        }
    }
    Ok(())
}

fn unpermute_rows(t: &Array, heads: i32, head_dim: i32) -> Result<Array> {
    let shape = t.shape();
    let rest = &shape[1..];
    let mut grouped = vec![heads, head_dim / 2, 2];
    grouped.extend_from_slice(rest);
    let mut axes: Vec<i32> = vec![0, 2, 1];
    axes.extend((3..grouped.len() as i32).collect::<Vec<_>>());
    Ok(t.reshape(&grouped)?.transpose(&axes)?.reshape(&shape)?)
}

/// MLX keeps Q4_0, Q4_1 and Q8_0 packed and dequantizes every other quantized type to
/// float16; say so, with the memory it costs.
fn dequantization_note(
    gguf: &Gguf,
    tensors: &HashMap<String, Array>,
    path: &Path,
) -> Result<Option<String>> {
    let widened: Vec<&Array> = tensors
        .iter()
        .filter(|(name, t)| {
            t.dtype() == Dtype::Float16 && t.ndim() == 2 && name.ends_with(".weight")
        })
        .map(|(_, t)| t)
        .collect();
    let file_type = gguf.metadata_int("general.file_type")?.unwrap_or(-1);
    // 1 = all float16: nothing was dequantized.
    if widened.is_empty() || file_type == 1 {
        return Ok(None);
    }
    let loaded: usize = tensors.values().map(Array::nbytes).sum();
    let on_disk = std::fs::metadata(path)
        .map_err(|e| EngineError::io(path, e))?
        .len();
    Ok(Some(format!(
        "{} tensors use a GGUF type MLX cannot keep quantized (only Q4_0, Q4_1 and Q8_0 stay \
         packed); they were dequantized to float16: the weights take {:.0} MB in memory against \
         {:.0} MB on disk",
        widened.len(),
        loaded as f64 / 1e6,
        on_disk as f64 / 1e6
    )))
}
