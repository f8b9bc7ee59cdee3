//! A model's tensors by Hugging Face name, and building layers out of them. Both formats
//! (MLX directories and GGUF) end up here with the same names, so the transformer is
//! built one way.

use std::collections::HashMap;

use perch_mlx::{Array, Dtype};

use crate::nn::{Embedding, Linear, RmsNorm, SideBySide};
use crate::quantization::{QuantParams, QuantizationConfig};
use crate::{EngineError, Result};

/// Named tensors, taken out one by one as layers are built.
pub struct Weights {
    tensors: HashMap<String, Array>,
    taken: Vec<Array>,
    quantization: Option<QuantizationConfig>,
    dtype: Dtype,
}

impl Weights {
    /// Wraps `tensors`; floating-point tensors are converted to `dtype` as they are taken
    /// (packed quantized weights stay `uint32`).
    pub fn new(
        tensors: HashMap<String, Array>,
        quantization: Option<QuantizationConfig>,
        dtype: Dtype,
    ) -> Self {
        Weights {
            tensors,
            taken: Vec::new(),
            quantization,
            dtype,
        }
    }

    /// The compute dtype layers are built in.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Whether a tensor named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Takes the tensor `name`, in the compute dtype if it is floating point.
    pub fn take(&mut self, name: &str) -> Result<Array> {
        self.take_optional(name)?
            .ok_or_else(|| EngineError::InvalidModel(format!("missing tensor {name}")))
    }

    /// Takes the tensor `name` if it exists.
    pub fn take_optional(&mut self, name: &str) -> Result<Option<Array>> {
        let tensor = match self.tensors.remove(name) {
            Some(t) if t.dtype().is_float() && t.dtype() != self.dtype => {
                Some(t.astype(self.dtype)?)
            }
            other => other,
        };
        self.taken.extend(tensor.clone());
        Ok(tensor)
    }

    /// Reads and converts every tensor taken so far, so the model's memory is in place
    /// (and the time spent is counted) at load rather than on the first request.
    pub fn evaluate_taken(&mut self) -> Result<()> {
        let taken = std::mem::take(&mut self.taken);
        perch_mlx::eval(&taken.iter().collect::<Vec<_>>())?;
        Ok(())
    }

    fn quant_params(&self, path: &str) -> Result<Option<QuantParams>> {
        if !self.contains(&format!("{path}.scales")) {
            return Ok(None);
        }
        let params = self.quantization.as_ref().and_then(|q| q.for_layer(path));
        params.map(Some).ok_or_else(|| {
            EngineError::InvalidModel(format!(
                "{path} has scales but config.json gives no quantization for it"
            ))
        })
    }

    fn take_quantized(&mut self, path: &str, params: QuantParams) -> Result<perch_mlx::Quantized> {
        Ok(perch_mlx::Quantized {
            weight: self.take(&format!("{path}.weight"))?,
            scales: self.take(&format!("{path}.scales"))?,
            biases: self.take(&format!("{path}.biases"))?,
            group_size: params.group_size,
            bits: params.bits,
        })
    }

    /// The linear layer at `path` (`{path}.weight`, optional `.bias`, and `.scales` and
    /// `.biases` when quantized).
    pub fn linear(&mut self, path: &str) -> Result<Linear> {
        let bias = self.take_optional(&format!("{path}.bias"))?;
        match self.quant_params(path)? {
            Some(params) => Ok(Linear::Quantized {
                weight: self.take_quantized(path, params)?,
                bias,
            }),
            None => Ok(Linear::Dense {
                weight: self.take(&format!("{path}.weight"))?,
                bias,
            }),
        }
    }

    /// The linear layers at `paths`, applied to one input side by side (fused into one
    /// where their weights allow; see [`SideBySide`]).
    pub fn side_by_side(&mut self, paths: &[String]) -> Result<SideBySide> {
        let mark = self.taken.len();
        let parts = paths
            .iter()
            .map(|p| self.linear(p))
            .collect::<Result<Vec<_>>>()?;
        let layer = SideBySide::new(parts)?;
        let joined = layer.fused_parameters();
        if !joined.is_empty() {
            // The joined arrays are what stays: they are evaluated at load, not the parts
            // (which go once they are joined, so memory never holds both).
            self.taken.truncate(mark);
            self.taken.extend(joined.into_iter().cloned());
        }
        Ok(layer)
    }

    /// The embedding table at `path`.
    pub fn embedding(&mut self, path: &str) -> Result<Embedding> {
        match self.quant_params(path)? {
            Some(params) => Ok(Embedding::Quantized(self.take_quantized(path, params)?)),
            None => Ok(Embedding::Dense(self.take(&format!("{path}.weight"))?)),
        }
    }

    /// The RMS norm at `path`.
    pub fn rms_norm(&mut self, path: &str, eps: f32) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: self.take(&format!("{path}.weight"))?,
            eps,
        })
    }

    /// Names of tensors nobody took, for a warning after building.
    pub fn leftover(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}
