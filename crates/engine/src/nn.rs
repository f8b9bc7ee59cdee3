//! The layers transformers are made of: linear (dense or quantized), several linear layers
//! on one input fused into one product, embedding (dense or quantized, usable as the output
//! head), and RMS norm.

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

    /// Its arrays.
    fn parameters(&self) -> Vec<&Array> {
        let (mut arrays, bias) = match self {
            Linear::Dense { weight, bias } => (vec![weight], bias),
            Linear::Quantized { weight, bias } => {
                (vec![&weight.weight, &weight.scales, &weight.biases], bias)
            }
        };
        arrays.extend(bias.as_ref());
        arrays
    }

    /// Width of the output.
    fn outputs(&self) -> i32 {
        match self {
            Linear::Dense { weight, .. } => weight.shape()[0],
            Linear::Quantized { weight, .. } => weight.weight.shape()[0],
        }
    }

    fn bias(&self) -> Option<&Array> {
        match self {
            Linear::Dense { bias, .. } | Linear::Quantized { bias, .. } => bias.as_ref(),
        }
    }

    fn set_bias(&mut self, to: Array) {
        match self {
            Linear::Dense { bias, .. } | Linear::Quantized { bias, .. } => *bias = Some(to),
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

/// Linear layers applied to the same input (a block's query, key and value projections;
/// its gate and up projections), fused into one matrix product when their weights are
/// alike — all dense, or all quantized with the same group size and bits, biases on all or
/// none — and run one by one otherwise. Each output is computed from the same weights in
/// the same way either way; fused, a decode step builds one graph node where it built
/// several.
pub struct SideBySide {
    /// One layer whose outputs are the parts' outputs side by side, and where to split
    /// them.
    fused: Option<(Linear, Vec<i32>)>,
    /// The parts, when they could not be fused.
    parts: Vec<Linear>,
}

impl SideBySide {
    /// `parts` side by side.
    pub fn new(parts: Vec<Linear>) -> Result<SideBySide> {
        let widths: Vec<i32> = parts.iter().map(Linear::outputs).collect();
        let splits: Vec<i32> = widths
            .iter()
            .scan(0, |end, w| {
                *end += w;
                Some(*end)
            })
            .take(widths.len().saturating_sub(1))
            .collect();
        let biased = parts.iter().filter(|p| p.bias().is_some()).count();
        let uniform_bias = biased == 0 || biased == parts.len();
        let joined = |arrays: Vec<&Array>| Array::concatenate(&arrays, 0);
        let fused = match parts.first() {
            _ if !uniform_bias || parts.len() < 2 => None,
            Some(Linear::Dense { .. }) => {
                let weights: Option<Vec<&Array>> = parts
                    .iter()
                    .map(|p| match p {
                        Linear::Dense { weight, .. } => Some(weight),
                        Linear::Quantized { .. } => None,
                    })
                    .collect();
                match weights {
                    Some(w) => Some(Linear::Dense {
                        weight: joined(w)?,
                        bias: None,
                    }),
                    None => None,
                }
            }
            Some(Linear::Quantized { weight: first, .. }) => {
                let alike: Option<Vec<&Quantized>> = parts
                    .iter()
                    .map(|p| match p {
                        Linear::Quantized { weight, .. }
                            if weight.bits == first.bits
                                && weight.group_size == first.group_size =>
                        {
                            Some(weight)
                        }
                        _ => None,
                    })
                    .collect();
                match alike {
                    Some(q) => Some(Linear::Quantized {
                        weight: Quantized {
                            weight: joined(q.iter().map(|w| &w.weight).collect())?,
                            scales: joined(q.iter().map(|w| &w.scales).collect())?,
                            biases: joined(q.iter().map(|w| &w.biases).collect())?,
                            group_size: first.group_size,
                            bits: first.bits,
                        },
                        bias: None,
                    }),
                    None => None,
                }
            }
            None => None,
        };
        let fused = match fused {
            Some(mut layer) => {
                if biased > 0 {
                    let biases: Vec<&Array> = parts.iter().filter_map(Linear::bias).collect();
                    layer.set_bias(joined(biases)?);
                }
                Some((layer, splits))
            }
            None => None,
        };
        Ok(match fused {
            Some(fused) => SideBySide {
                fused: Some(fused),
                parts: Vec::new(),
            },
            None => SideBySide { fused: None, parts },
        })
    }

    /// Each part applied to `x`, in order.
    pub fn forward(&self, x: &Array) -> Result<Vec<Array>> {
        match &self.fused {
            Some((layer, splits)) => Ok(layer.forward(x)?.split_at(splits, -1)?),
            None => self.parts.iter().map(|p| p.forward(x)).collect(),
        }
    }

    /// The fused layer's arrays (none when the parts run one by one).
    pub fn fused_parameters(&self) -> Vec<&Array> {
        match &self.fused {
            Some((layer, _)) => layer.parameters(),
            None => Vec::new(),
        }
    }

    /// Bytes of the parameters.
    pub fn nbytes(&self) -> usize {
        match &self.fused {
            Some((layer, _)) => layer.nbytes(),
            None => self.parts.iter().map(Linear::nbytes).sum(),
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
