//! MLX model directories as mlx-community publishes them: `config.json`, one or many
//! `*.safetensors`, `tokenizer.json`, `tokenizer_config.json` (or `chat_template.jinja`)
//! and `generation_config.json`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::ModelFiles;
use crate::config::ModelConfig;
use crate::text::tokenizer::Tokenizer;
use crate::{EngineError, Result};

/// Reads an MLX model directory.
pub fn read(dir: &Path) -> Result<ModelFiles> {
    let config_text = read_text(&dir.join("config.json"))?;
    let config = ModelConfig::from_json(&config_text)?;
    let config_json: Value = serde_json::from_str(&config_text)
        .map_err(|e| EngineError::InvalidModel(format!("config.json: {e}")))?;

    let mut tensors = HashMap::new();
    for file in safetensors_files(dir)? {
        let loaded = perch_mlx::io::load_safetensors(&file)?;
        tensors.extend(loaded.tensors);
    }
    if tensors.is_empty() {
        return Err(EngineError::InvalidModel(format!(
            "{} holds no *.safetensors weights",
            dir.display()
        )));
    }

    let tokenizer_config: Value = match optional_text(&dir.join("tokenizer_config.json"))? {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| EngineError::InvalidModel(format!("tokenizer_config.json: {e}")))?,
        None => Value::Null,
    };
    let special = |key: &str| -> Option<String> {
        match tokenizer_config.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("content")?.as_str().map(str::to_owned),
            _ => None,
        }
    };
    let tokenizer_json = read_text(&dir.join("tokenizer.json"))?;
    let tokenizer =
        Tokenizer::from_json(&tokenizer_json, special("bos_token"), special("eos_token"))?;
    let chat_template = chat_template_in(dir, &tokenizer_config)?;

    let generation: Value = match optional_text(&dir.join("generation_config.json"))? {
        Some(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
        None => Value::Null,
    };
    let mut eos_token_ids = ids(generation.get("eos_token_id"));
    if eos_token_ids.is_empty() {
        eos_token_ids = ids(config_json.get("eos_token_id"));
    }
    if eos_token_ids.is_empty() {
        eos_token_ids.extend(tokenizer.eos_token().and_then(|t| tokenizer.token_id(t)));
    }
    Ok(ModelFiles {
        config,
        tensors,
        tokenizer,
        chat_template,
        eos_token_ids,
        tokenizer_json,
        notes: Vec::new(),
    })
}

/// The weight files: those the index names, else every `*.safetensors`.
pub(crate) fn safetensors_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    if let Some(text) = optional_text(&dir.join("model.safetensors.index.json"))? {
        let index: Value = serde_json::from_str(&text)
            .map_err(|e| EngineError::InvalidModel(format!("model.safetensors.index.json: {e}")))?;
        let mut files: Vec<String> = index
            .get("weight_map")
            .and_then(Value::as_object)
            .map(|m| {
                m.values()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files.dedup();
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| EngineError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}

/// The folder's chat template: `chat_template.jinja`, else `tokenizer_config.json`'s.
pub(crate) fn chat_template(dir: &Path) -> Result<Option<String>> {
    let config: Value = match optional_text(&dir.join("tokenizer_config.json"))? {
        Some(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
        None => Value::Null,
    };
    chat_template_in(dir, &config)
}

fn chat_template_in(dir: &Path, tokenizer_config: &Value) -> Result<Option<String>> {
    Ok(match optional_text(&dir.join("chat_template.jinja"))? {
        Some(t) => Some(t),
        None => template_from_config(tokenizer_config),
    })
}

/// `chat_template` as a string, or the `default` entry of a list of named templates.
fn template_from_config(config: &Value) -> Option<String> {
    match config.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .and_then(|t| t.get("template")?.as_str().map(str::to_owned)),
        _ => None,
    }
}

fn ids(value: Option<&Value>) -> Vec<u32> {
    match value {
        Some(Value::Number(n)) => n.as_u64().map(|v| v as u32).into_iter().collect(),
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_u64().map(|v| v as u32))
            .collect(),
        _ => Vec::new(),
    }
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))
}

fn optional_text(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io(path, e)),
    }
}
