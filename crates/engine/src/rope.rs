//! Rotary position embedding (non-traditional: the two halves of each head rotate
//! together), with Llama 3 and linear position scaling.
//!
//! On a GPU, MLX's `fast::rope` is one kernel and is used as is. On the CPU MLX has no RoPE
//! kernel: every call rebuilds a fallback graph (positions, frequencies, cos, sin, rotation),
//! 60 times per decode step for a 30-layer model, which was ~40% of the host time spent
//! building each step. There the angles are built once per forward pass and shared by every
//! layer's queries and keys, with the fallback's own arithmetic, so the values are the same.

use perch_mlx::fast::{self, RopeFrequencies, RopeOffset};
use perch_mlx::{Array, DeviceKind, Dtype};

use crate::config::{ModelConfig, RopeScaling};
use crate::Result;

/// The rotary embedding of one model.
pub struct Rope {
    dims: i32,
    base: f32,
    scale: f32,
    /// Per-frequency periods when Llama 3 scaling reshapes them.
    periods: Option<Array>,
    /// Build angles once per pass instead of calling `fast::rope` (CPU).
    shared_angles: bool,
    dtype: Dtype,
}

/// The rotation angles of one forward pass, computed once for all layers.
pub enum RopeAngles<'a> {
    /// `fast::rope` computes them in its kernel.
    Fused(RopeOffset<'a>),
    /// Precomputed `cos` and `sin`, `[len, dims/2]` or `[batch, 1, len, dims/2]`.
    Shared {
        /// Cosines in the activation dtype.
        cos: Array,
        /// Sines in the activation dtype.
        sin: Array,
    },
}

impl Rope {
    /// The embedding `config` describes, for activations of `dtype`.
    pub fn new(config: &ModelConfig, dtype: Dtype) -> Result<Rope> {
        let dims = config.head_dim;
        let (scale, periods) = match &config.rope_scaling {
            None => (1.0, None),
            Some(RopeScaling::Linear { factor }) => (1.0 / factor, None),
            Some(RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            }) => {
                let periods = llama3_periods(
                    config.rope_theta,
                    dims,
                    *factor,
                    *low_freq_factor,
                    *high_freq_factor,
                    *original_max_position_embeddings,
                );
                (
                    1.0,
                    Some(Array::from_slice(&periods, &[periods.len() as i32])?),
                )
            }
        };
        let shared_angles = perch_mlx::default_device() == DeviceKind::Cpu;
        Ok(Rope {
            dims,
            base: config.rope_theta,
            scale,
            periods,
            shared_angles,
            dtype,
        })
    }

    /// The angles for `len` positions after `offset`.
    pub fn angles<'a>(&self, offset: RopeOffset<'a>, len: i32) -> Result<RopeAngles<'a>> {
        if !self.shared_angles {
            return Ok(RopeAngles::Fused(offset));
        }
        let half = self.dims / 2;
        let steps = Array::arange(0.0, f64::from(len), 1.0, Dtype::Float32)?;
        let start = match offset {
            RopeOffset::Uniform(o) => Array::scalar(o),
            RopeOffset::PerRow(rows) => rows.expand_dims(&[-1, -2])?,
        };
        let positions = steps.add(&start)?.multiply(&Array::scalar(self.scale))?;
        let inverse = match &self.periods {
            Some(periods) => Array::scalar(1.0f32).divide(periods)?,
            None => {
                let exponents = Array::arange(0.0, -f64::from(half), -1.0, Dtype::Float32)?;
                exponents
                    .multiply(&Array::scalar(self.base.ln() / half as f32))?
                    .exp()?
            }
        };
        let theta = positions.expand_dims(&[-1])?.multiply(&inverse)?;
        Ok(RopeAngles::Shared {
            cos: theta.cos()?.astype(self.dtype)?,
            sin: theta.sin()?.astype(self.dtype)?,
        })
    }

    /// Rotates `x` (`[batch, heads, len, head_dim]`).
    pub fn apply(&self, x: &Array, angles: &RopeAngles<'_>) -> Result<Array> {
        match angles {
            RopeAngles::Fused(offset) => {
                let frequencies = match &self.periods {
                    Some(p) => RopeFrequencies::Freqs(p),
                    None => RopeFrequencies::Base(self.base),
                };
                Ok(fast::rope(
                    x,
                    self.dims,
                    false,
                    frequencies,
                    self.scale,
                    *offset,
                )?)
            }
            RopeAngles::Shared { cos, sin } => {
                let shape = x.shape();
                let (b, h, l, d) = (shape[0], shape[1], shape[2], shape[3]);
                let half = self.dims / 2;
                let x1 = x.slice(&[0, 0, 0, 0], &[b, h, l, half], &[1, 1, 1, 1])?;
                let x2 = x.slice(&[0, 0, 0, half], &[b, h, l, self.dims], &[1, 1, 1, 1])?;
                let first = x1.multiply(cos)?.subtract(&x2.multiply(sin)?)?;
                let second = x1.multiply(sin)?.add(&x2.multiply(cos)?)?;
                if self.dims < d {
                    let rest = x.slice(&[0, 0, 0, self.dims], &[b, h, l, d], &[1, 1, 1, 1])?;
                    Ok(Array::concatenate(&[&first, &second, &rest], -1)?)
                } else {
                    Ok(Array::concatenate(&[&first, &second], -1)?)
                }
            }
        }
    }
}
/// Llama 3's rope scaling as periods (`1 / frequency`) per rotated pair: long wavelengths
/// are stretched by `factor`, short ones kept, and those between blended smoothly.
fn llama3_periods(
    base: f32,
    dims: i32,
    factor: f32,
    low: f32,
    high: f32,
    original: f32,
) -> Vec<f32> {
    let low_wavelen = original / low;
    let high_wavelen = original / high;
    (0..dims / 2)
        .map(|i| {
            let period = base.powf(2.0 * i as f32 / dims as f32);
            let wavelen = 2.0 * std::f32::consts::PI * period;
            if wavelen > low_wavelen {
                period * factor
            } else if wavelen < high_wavelen {
                period
            } else {
                let smooth = (original / wavelen - low) / (high - low);
                period / ((1.0 - smooth) / factor + smooth)
            }
        })
        .collect()
}
