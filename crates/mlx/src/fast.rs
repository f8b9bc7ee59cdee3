//! MLX's fused kernels for transformer layers: RMS norm, layer norm, rotary position
//! embedding and scaled dot-product attention.

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::{Array, Result};

fn ptr(a: Option<&Array>) -> *const ffi::Array {
    a.map_or(std::ptr::null(), |a| a.raw() as *const ffi::Array)
}

/// `x / sqrt(mean(x²) + eps) * weight` over the last axis.
///
/// ```
/// use perch_mlx::{fast, Array};
/// let x = Array::from_slice(&[3.0f32, 4.0], &[1, 2])?;
/// let y = fast::rms_norm(&x, None, 0.0)?;
/// let norm = (12.5f32).sqrt();
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0 / norm, 4.0 / norm]);
/// # Ok::<(), perch_mlx::Error>(())
/// ```
pub fn rms_norm(x: &Array, weight: Option<&Array>, eps: f32) -> Result<Array> {
    // SAFETY: the pointer is null or borrows an array that outlives the call.
    wrap(unsafe { ffi::rms_norm(x.raw(), ptr(weight), eps) })
}

/// `(x - mean) / sqrt(var + eps) * weight + bias` over the last axis.
pub fn layer_norm(
    x: &Array,
    weight: Option<&Array>,
    bias: Option<&Array>,
    eps: f32,
) -> Result<Array> {
    // SAFETY: the pointers are null or borrow arrays that outlive the call.
    wrap(unsafe { ffi::layer_norm(x.raw(), ptr(weight), ptr(bias), eps) })
}

/// Frequencies for rotary embeddings: a `base` (θ, as in `theta ** (-2i/dims)`) or an
/// explicit array of `dims / 2` frequencies (used for Llama 3's rope scaling).
#[derive(Clone, Copy, Debug)]
pub enum RopeFrequencies<'a> {
    /// Standard frequencies from base θ.
    Base(f32),
    /// Precomputed frequencies.
    Freqs(&'a Array),
}

/// Where each sequence's positions start for [`rope`].
#[derive(Clone, Copy, Debug)]
pub enum RopeOffset<'a> {
    /// The same start for the whole batch.
    Uniform(i32),
    /// One start per batch row (a 1-D int array), for batches of sequences of different
    /// lengths.
    PerRow(&'a Array),
}

/// Rotary position embedding over the last axis of `x` (`[..., seq, head_dim]`), rotating
/// the first `dims` features; `traditional` rotates adjacent pairs instead of halves.
/// Positions are `offset + i` for row `i` of the sequence axis, multiplied by `scale`.
pub fn rope(
    x: &Array,
    dims: i32,
    traditional: bool,
    frequencies: RopeFrequencies<'_>,
    scale: f32,
    offset: RopeOffset<'_>,
) -> Result<Array> {
    let (has_base, base, freqs) = match frequencies {
        RopeFrequencies::Base(base) => (true, base, None),
        RopeFrequencies::Freqs(f) => (false, 0.0, Some(f)),
    };
    // SAFETY: `freqs` is null or borrows an array that outlives the call.
    wrap(unsafe {
        match offset {
            RopeOffset::Uniform(offset) => ffi::rope(
                x.raw(),
                dims,
                traditional,
                has_base,
                base,
                scale,
                offset,
                ptr(freqs),
            ),
            RopeOffset::PerRow(offsets) => ffi::rope_offsets(
                x.raw(),
                dims,
                traditional,
                has_base,
                base,
                scale,
                offsets.raw(),
                ptr(freqs),
            ),
        }
    })
}

/// The mask applied before the softmax in [`scaled_dot_product_attention`].
#[derive(Clone, Copy, Debug)]
pub enum AttentionMask<'a> {
    /// Every query sees every key.
    None,
    /// Query `i` sees keys up to `i + (keys - queries)`: a causal mask aligned to the end.
    Causal,
    /// A boolean (true = attend) or additive float mask broadcastable to
    /// `[batch, heads, queries, keys]`.
    Array(&'a Array),
}

/// `softmax(q @ kᵀ * scale + mask) @ v` for `q: [B, Hq, L, D]`, `k, v: [B, Hkv, S, D]`;
/// grouped-query attention when `Hq` is a multiple of `Hkv`.
pub fn scaled_dot_product_attention(
    q: &Array,
    k: &Array,
    v: &Array,
    scale: f32,
    mask: AttentionMask<'_>,
) -> Result<Array> {
    let (mode, array) = match mask {
        AttentionMask::None => ("", None),
        AttentionMask::Causal => ("causal", None),
        AttentionMask::Array(m) => ("array", Some(m)),
    };
    // SAFETY: the mask pointer is null or borrows an array that outlives the call.
    wrap(unsafe {
        ffi::scaled_dot_product_attention(q.raw(), k.raw(), v.raw(), scale, mode, ptr(array))
    })
}
