//! Which layers are quantized, and how: MLX's `config.json` `quantization` block, with a
//! default group size and bit width and optional per-layer overrides (8-bit embeddings
//! beside 4-bit layers, mixed bits per layer).

use std::collections::BTreeMap;

use crate::{EngineError, Result};

/// Group size and bits of one quantized layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantParams {
    /// Weights per group sharing a scale and bias.
    pub group_size: i32,
    /// Bits per weight.
    pub bits: i32,
}

/// The `quantization` block of `config.json`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct QuantizationConfig {
    /// Parameters for layers without an override.
    pub default: Option<QuantParams>,
    /// Per-layer parameters by module path (`model.embed_tokens`); `None` means the layer
    /// is left unquantized.
    pub overrides: BTreeMap<String, Option<QuantParams>>,
}

impl QuantizationConfig {
    /// Parses the JSON object.
    pub fn from_json(value: &serde_json::Value) -> Result<QuantizationConfig> {
        let object = value
            .as_object()
            .ok_or_else(|| EngineError::InvalidModel("quantization must be an object".into()))?;
        if let Some(mode) = object.get("mode").and_then(|m| m.as_str()) {
            if mode != "affine" {
                return Err(EngineError::InvalidModel(format!(
                    "unsupported quantization mode {mode:?}"
                )));
            }
        }
        let default = params(value)?;
        let mut overrides = BTreeMap::new();
        for (key, entry) in object {
            match entry {
                serde_json::Value::Object(_) => {
                    overrides.insert(key.clone(), params(entry)?);
                }
                serde_json::Value::Bool(false) => {
                    overrides.insert(key.clone(), None);
                }
                _ => {}
            }
        }
        Ok(QuantizationConfig { default, overrides })
    }

    /// The JSON object mlx-lm reads.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        if let Some(p) = self.default {
            object.insert("group_size".into(), p.group_size.into());
            object.insert("bits".into(), p.bits.into());
        }
        for (path, p) in &self.overrides {
            let entry = match p {
                Some(p) => serde_json::json!({"group_size": p.group_size, "bits": p.bits}),
                None => serde_json::Value::Bool(false),
            };
            object.insert(path.clone(), entry);
        }
        serde_json::Value::Object(object)
    }

    /// The parameters for the layer at `path`, if it is quantized.
    pub fn for_layer(&self, path: &str) -> Option<QuantParams> {
        match self.overrides.get(path) {
            Some(p) => *p,
            None => self.default,
        }
    }
}

fn params(value: &serde_json::Value) -> Result<Option<QuantParams>> {
    let get = |key: &str| value.get(key).and_then(|v| v.as_i64()).map(|v| v as i32);
    match (get("group_size"), get("bits")) {
        (Some(group_size), Some(bits)) => Ok(Some(QuantParams { group_size, bits })),
        (None, None) => Ok(None),
        _ => Err(EngineError::InvalidModel(
            "quantization needs both group_size and bits".into(),
        )),
    }
}
