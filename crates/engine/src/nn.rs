//! The layers transformers are made of: linear (dense or quantized), embedding (dense or
//! quantized, usable as the output head), and RMS norm.

use perch_mlx::{fast, Array, Quantized};

use crate::Result;

/// `y = x Wᵀ + b`.
pub enum Linear {
    /// A float weight matrix `[out, in]`.
    Dense {
        /// `[out, in]`.
        weight: Array,
        /// `[out]`.
        bias: Option<Array>,
    },
    /// A quantized weight matrix.
    Quantized {
        /// Packed `[out, in]`.
        weight: Quantized,
        /// `[out]`.
        bias: Option<Array>,
    },
}

impl Linear {
    /// Applies the layer to `x` (`[..., in]` → `[..., out]`).
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let (y, bias) = match self {
            Linear::Dense { weight, bias } => (x.matmul(&weight.transpose(&[1, 0])?)?, bias),
            Linear::Quantized { weight, bias } => (weight.matmul(x, true)?, bias),
        };
        match bias {
            Some(b) => Ok(y.add(b)?),
            None => Ok(y),
        }
    }

    /// Bytes of the layer's parameters.
    pub fn nbytes(&self) -> usize {
        let bias = |b: &Option<Array>| b.as_ref().map_or(0, Array::nbytes);
        match self {
            Linear::Dense { weight, bias: b } => weight.nbytes() + bias(b),
            Linear::Quantized { weight, bias: b } => quantized_nbytes(weight) + bias(b),
        }
    }
}

fn quantized_nbytes(q: &Quantized) -> usize {
    q.weight.nbytes() + q.scales.nbytes() + q.biases.nbytes()
}

/// A token embedding table `[vocab, hidden]`.
pub enum Embedding {
    /// Float rows.
    Dense(Array),
    /// Quantized rows.
    Quantized(Quantized),
}

impl Embedding {
    /// The rows for token ids `ids` (`[...]` → `[..., hidden]`).
    pub fn lookup(&self, ids: &Array) -> Result<Array> {
        match self {
            Embedding::Dense(table) => Ok(table.take(ids, 0)?),
            Embedding::Quantized(q) => {
                let rows = Quantized {
                    weight: q.weight.take(ids, 0)?,
                    scales: q.scales.take(ids, 0)?,
                    biases: q.biases.take(ids, 0)?,
                    group_size: q.group_size,
                    bits: q.bits,
                };
                Ok(rows.dequantize()?)
            }
        }
    }

    /// Uses the table as a tied output head: `x Eᵀ` (`[..., hidden]` → `[..., vocab]`).
    pub fn as_linear(&self, x: &Array) -> Result<Array> {
        match self {
            Embedding::Dense(table) => Ok(x.matmul(&table.transpose(&[1, 0])?)?),
            Embedding::Quantized(q) => Ok(q.matmul(x, true)?),
        }
    }

    /// Bytes of the table.
    pub fn nbytes(&self) -> usize {
        match self {
            Embedding::Dense(t) => t.nbytes(),
            Embedding::Quantized(q) => quantized_nbytes(q),
        }
    }
}

/// `x / rms(x) * weight` over the last axis.
pub struct RmsNorm {
    /// `[dim]`.
    pub weight: Array,
    /// Added to the mean square.
    pub eps: f32,
}

impl RmsNorm {
    /// Applies the norm.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        Ok(fast::rms_norm(x, Some(&self.weight), self.eps)?)
    }
}
