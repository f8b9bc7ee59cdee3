//! A model loaded and ready: the transformer plus everything text-side (tokenizer, chat
//! template, end-of-sequence ids) and what the load found out (memory, notes).

use std::path::Path;
use std::time::{Duration, Instant};

use perch_mlx::{DeviceKind, Dtype};

use crate::text::template::ChatTemplate;
use crate::text::tokenizer::Tokenizer;
use crate::transformer::Transformer;
use crate::weights::Weights;
use crate::{format, Result};

/// A loaded model.
pub struct Model {
    /// The network.
    pub transformer: Transformer,
    /// The tokenizer.
    pub tokenizer: Tokenizer,
    /// The chat template, if the model has one.
    pub chat_template: Option<ChatTemplate>,
    /// Token ids that end generation.
    pub eos_token_ids: Vec<u32>,
    /// What loading noticed (dequantized tensor types…).
    pub notes: Vec<String>,
    /// How long loading took.
    pub load_time: Duration,
}

impl Model {
    /// Loads the model at `path` (an MLX directory or a GGUF file) and evaluates its
    /// weights, so memory use is real when this returns.
    pub fn load(path: &Path) -> Result<Model> {
        let start = Instant::now();
        let files = format::read(path)?;
        let read = start.elapsed();
        let dtype = compute_dtype(&files.tensors);
        let mut weights = Weights::new(files.tensors, files.config.quantization.clone(), dtype);
        let transformer = Transformer::build(files.config, &mut weights)?;
        let built = start.elapsed();
        let mut notes = files.notes;
        let leftover = weights.leftover();
        if !leftover.is_empty() {
            notes.push(format!(
                "{} tensors were not used: {}",
                leftover.len(),
                leftover.join(", ")
            ));
        }
        weights.evaluate_taken()?;
        let evaluated = start.elapsed();
        let chat_template = files
            .chat_template
            .as_deref()
            .map(ChatTemplate::new)
            .transpose()?;
        for note in &notes {
            tracing::warn!(model = %path.display(), "{note}");
        }
        let ms = |d: Duration| (d.as_secs_f64() * 1e3).round();
        tracing::debug!(
            model = %path.display(),
            read_ms = ms(read),
            build_ms = ms(built - read),
            evaluate_ms = ms(evaluated - built),
            template_ms = ms(start.elapsed() - evaluated),
            "load phases"
        );
        Ok(Model {
            transformer,
            tokenizer: files.tokenizer,
            chat_template,
            eos_token_ids: files.eos_token_ids,
            notes,
            load_time: start.elapsed(),
        })
    }
}

/// Float32 on the CPU (half-precision arithmetic is many times slower there); on a GPU,
/// the precision the weights were saved in.
fn compute_dtype(tensors: &std::collections::HashMap<String, perch_mlx::Array>) -> Dtype {
    if perch_mlx::default_device() == DeviceKind::Cpu {
        return Dtype::Float32;
    }
    tensors
        .values()
        .map(perch_mlx::Array::dtype)
        .find(|d| matches!(d, Dtype::Float16 | Dtype::Bfloat16))
        .unwrap_or(Dtype::Float16)
}
