//! Rotary position embedding (non-traditional: the two halves of each head rotate
//! together), with Llama 3 and linear position scaling.
//!
//! On a GPU, MLX's `fast::rope` is one kernel and is used as is. On the CPU MLX has no RoPE
//! kernel: every call rebuilds a fallback graph (positions, frequencies, cos, sin, rotation),
//! 60 times per decode step for a 30-layer model, which was ~40% of the host time spent
//! building each step. There the angles are built once per forward pass and shared by every
//! layer's queries and keys, with the fallback's own arithmetic, so the values are the same;
//! each rotation is then `x·cos + swap(x)·(−sin, sin)`, five graph nodes.

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
    /// Precomputed `[cos, cos]` and `[−sin, sin]` over the rotated features, `[len, dims]`
    /// or `[batch, 1, len, dims]`.
    Shared {
        /// Cosines in the activation dtype, for both halves.
        cos: Array,
        /// Sines in the activation dtype, negated for the first half.
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
        let cos = theta.cos()?.astype(self.dtype)?;
        let sin = theta.sin()?.astype(self.dtype)?;
        Ok(RopeAngles::Shared {
            cos: Array::concatenate(&[&cos, &cos], -1)?,
            sin: Array::concatenate(&[&sin.negative()?, &sin], -1)?,
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
                // (x1, x2)·cos + (x2, x1)·(−sin, sin): the first half x1·cos − x2·sin and
                // the second x2·cos + x1·sin, as the fallback computes them.
                let d = *x.shape().last().expect("x has a feature axis");
                let (rotated, rest) = if self.dims < d {
                    let mut parts = x.split_at(&[self.dims], -1)?.into_iter();
                    (parts.next(), parts.next())
                } else {
                    (Some(x.clone()), None)
                };
                let rotated = rotated.expect("split gives the rotated part");
                let mut halves = rotated.split(2, -1)?.into_iter();
                let (x1, x2) = (halves.next(), halves.next());
                let swapped = match (x1, x2) {
                    (Some(x1), Some(x2)) => Array::concatenate(&[&x2, &x1], -1)?,
                    _ => unreachable!("splitting in two gives two halves"),
                };
                let out = rotated.multiply(cos)?.add(&swapped.multiply(sin)?)?;
                match rest {
                    Some(rest) => Ok(Array::concatenate(&[&out, &rest], -1)?),
                    None => Ok(out),
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
