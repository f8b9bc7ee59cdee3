//! `perch import`: writes a GGUF model out as an MLX directory that Perch and the `mlx-lm`
//! Python package both load — weights still quantized (as safetensors, with Q and K rows
//! in Hugging Face order), `config.json` with per-layer quantization, `tokenizer.json`,
//! `tokenizer_config.json` (with the chat template) and `generation_config.json`.

use std::collections::HashMap;
use std::path::Path;

use perch_mlx::io::{save_safetensors, Safetensors};
use perch_mlx::Array;
use serde_json::json;

use crate::format::{self, ModelFiles};
use crate::{EngineError, Result};

/// Largest safetensors shard written.
const SHARD_BYTES: usize = 4 << 30;

/// What an import wrote.
#[derive(Debug)]
pub struct ImportSummary {
    /// Tensors written.
    pub tensors: usize,
    /// Bytes of tensor data written.
    pub bytes: usize,
    /// Safetensors files written.
    pub shards: usize,
}

/// Converts the GGUF at `gguf` into an MLX directory at `out` (created; must be empty or
/// absent).
pub fn import_gguf(gguf: &Path, out: &Path) -> Result<ImportSummary> {
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| EngineError::io(out, e))?
            .next()
            .is_some()
    {
        return Err(EngineError::InvalidRequest(format!(
            "{} exists and is not empty",
            out.display()
        )));
    }
    let files = format::gguf::read(gguf)?;
    std::fs::create_dir_all(out).map_err(|e| EngineError::io(out, e))?;
    let summary = write_weights(&files.tensors, out)?;
    write_json(&out.join("config.json"), &config_json(&files))?;
    std::fs::write(out.join("tokenizer.json"), &files.tokenizer_json)
        .map_err(|e| EngineError::io(&out.join("tokenizer.json"), e))?;
    let tokenizer = &files.tokenizer;
    write_json(
        &out.join("tokenizer_config.json"),
        &json!({
            "bos_token": tokenizer.bos_token(),
            "eos_token": tokenizer.eos_token(),
            "clean_up_tokenization_spaces": false,
            "model_max_length": files.config.max_position_embeddings,
            "chat_template": files.chat_template,
            "tokenizer_class": "PreTrainedTokenizerFast",
        }),
    )?;
    write_json(
        &out.join("generation_config.json"),
        &json!({ "eos_token_id": files.eos_token_ids }),
    )?;
    Ok(summary)
}

fn config_json(files: &ModelFiles) -> serde_json::Value {
    let mut config = files.config.to_json();
    config["eos_token_id"] = json!(files.eos_token_ids);
    config
}

fn write_weights(tensors: &HashMap<String, Array>, out: &Path) -> Result<ImportSummary> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let mut shards: Vec<Vec<&String>> = vec![Vec::new()];
    let mut shard_bytes = 0;
    for name in names {
        let bytes = tensors[name].nbytes();
        if shard_bytes + bytes > SHARD_BYTES && !shards.last().is_some_and(Vec::is_empty) {
            shards.push(Vec::new());
            shard_bytes = 0;
        }
        shard_bytes += bytes;
        shards.last_mut().expect("at least one shard").push(name);
    }
    let count = shards.len();
    let mut weight_map = serde_json::Map::new();
    let mut total = 0;
    for (i, shard) in shards.iter().enumerate() {
        let file_name = if count == 1 {
            "model.safetensors".to_owned()
        } else {
            format!("model-{:05}-of-{count:05}.safetensors", i + 1)
        };
        let mut file = Safetensors::default();
        file.metadata.insert("format".into(), "mlx".into());
        for name in shard {
            total += tensors[*name].nbytes();
            file.tensors.insert((*name).clone(), tensors[*name].clone());
            weight_map.insert((*name).clone(), json!(file_name));
        }
        save_safetensors(&out.join(&file_name), &file)?;
    }
    if count > 1 {
        write_json(
            &out.join("model.safetensors.index.json"),
            &json!({"metadata": {"total_size": total}, "weight_map": weight_map}),
        )?;
    }
    Ok(ImportSummary {
        tensors: tensors.len(),
        bytes: total,
        shards: count,
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    std::fs::write(path, text).map_err(|e| EngineError::io(path, e))
}
