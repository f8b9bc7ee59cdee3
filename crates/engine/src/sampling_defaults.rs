//! The sampling a model's makers recommend, from the `generation_config.json` of an MLX
//! directory (temperature, top-p, top-k, min-p, repetition penalty; `do_sample: false`
//! means greedy). A request's own fields win; the server falls back to these, then to its
//! API's defaults, as vLLM does. A GGUF file carries none.

use std::path::Path;

use serde_json::Value;

/// Recommended sampling; `None` where the model says nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplingDefaults {
    /// Temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// The k likeliest tokens.
    pub top_k: Option<u32>,
    /// Minimum probability relative to the likeliest.
    pub min_p: Option<f32>,
    /// Repetition penalty.
    pub repetition_penalty: Option<f32>,
}

impl SamplingDefaults {
    /// The defaults of the model at `path` (none for a GGUF file or a folder without a
    /// readable `generation_config.json`).
    pub fn of(path: &Path) -> SamplingDefaults {
        std::fs::read_to_string(path.join("generation_config.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .map_or_else(SamplingDefaults::default, |v| Self::from_json(&v))
    }

    /// The defaults a parsed `generation_config.json` gives; values out of range are left
    /// out.
    pub fn from_json(config: &Value) -> SamplingDefaults {
        let number = |key: &str, ok: fn(f32) -> bool| {
            config
                .get(key)
                .and_then(Value::as_f64)
                .map(|v| v as f32)
                .filter(|&v| ok(v))
        };
        let greedy = config.get("do_sample").and_then(Value::as_bool) == Some(false);
        SamplingDefaults {
            temperature: if greedy {
                Some(0.0)
            } else {
                number("temperature", |t| (0.0..=2.0).contains(&t))
            },
            top_p: number("top_p", |p| p > 0.0 && p <= 1.0),
            top_k: config
                .get("top_k")
                .and_then(Value::as_u64)
                .and_then(|k| u32::try_from(k).ok()),
            min_p: number("min_p", |p| (0.0..=1.0).contains(&p)),
            repetition_penalty: number("repetition_penalty", |r| r > 0.0 && r <= 10.0),
        }
    }

    /// `name value` lines, as Ollama's `parameters` and `perch show` print them.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut add = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                lines.push(format!("{name} {v}"));
            }
        };
        add("temperature", self.temperature.map(|v| v.to_string()));
        add("top_p", self.top_p.map(|v| v.to_string()));
        add("top_k", self.top_k.map(|v| v.to_string()));
        add("min_p", self.min_p.map(|v| v.to_string()));
        add(
            "repeat_penalty",
            self.repetition_penalty.map(|v| v.to_string()),
        );
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_model_recommends() {
        // Qwen3's generation_config.json.
        let qwen3 = serde_json::json!({"bos_token_id": 151643, "do_sample": true,
            "eos_token_id": [151645, 151643], "pad_token_id": 151643, "temperature": 0.6,
            "top_k": 20, "top_p": 0.95, "transformers_version": "4.51.0"});
        let d = SamplingDefaults::from_json(&qwen3);
        assert_eq!(
            d,
            SamplingDefaults {
                temperature: Some(0.6),
                top_p: Some(0.95),
                top_k: Some(20),
                min_p: None,
                repetition_penalty: None,
            }
        );
        assert_eq!(d.lines(), ["temperature 0.6", "top_p 0.95", "top_k 20"]);
        let greedy = serde_json::json!({"do_sample": false, "temperature": 0.9, "top_p": 7});
        let d = SamplingDefaults::from_json(&greedy);
        assert_eq!((d.temperature, d.top_p), (Some(0.0), None));
    }
}
