//! Random numbers from explicit keys (MLX's counter-based threefry generator), so that a
//! seed reproduces the same numbers on every run and platform.
//!
//! ```
//! use perch_mlx::{random, Array, Dtype};
//! let key = random::key(7)?;
//! let a = random::uniform(0.0, 1.0, &[4], Dtype::Float32, &key)?;
//! let b = random::uniform(0.0, 1.0, &[4], Dtype::Float32, &key)?;
//! assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
//! # Ok::<(), perch_mlx::Error>(())
//! ```

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::{Array, Dtype, Result};

/// A PRNG key from a seed.
pub fn key(seed: u64) -> Result<Array> {
    wrap(ffi::random_key(seed))
}

/// Splits a key into `parts` independent keys, stacked along the first axis.
pub fn split(key: &Array, parts: i32) -> Result<Array> {
    wrap(ffi::random_split(key.raw(), parts))
}

/// Splits a key in two: `(next, sub)`, where `sub` is used once and `next` carries on,
/// for a stream of independent draws from one seed.
///
/// ```
/// use perch_mlx::{random, Dtype};
/// let (next, sub) = random::split_once(&random::key(3)?)?;
/// assert_eq!(next.shape(), vec![2]);
/// assert_ne!(next.to_vec::<u32>()?, sub.to_vec::<u32>()?);
/// # Ok::<(), perch_mlx::Error>(())
/// ```
pub fn split_once(key: &Array) -> Result<(Array, Array)> {
    let mut keys = split(key, 2)?.split(2, 0)?.into_iter();
    match (keys.next(), keys.next()) {
        (Some(next), Some(sub)) => Ok((next.reshape(&[-1])?, sub.reshape(&[-1])?)),
        _ => unreachable!("splitting two rows gives two parts"),
    }
}

/// Uniform samples in `[low, high)`.
pub fn uniform(low: f32, high: f32, shape: &[i32], dtype: Dtype, key: &Array) -> Result<Array> {
    wrap(ffi::random_uniform(
        Array::scalar(low).raw(),
        Array::scalar(high).raw(),
        shape,
        dtype.code(),
        key.raw(),
    ))
}

/// Standard normal samples.
pub fn normal(shape: &[i32], dtype: Dtype, key: &Array) -> Result<Array> {
    wrap(ffi::random_normal(shape, dtype.code(), key.raw()))
}

/// Gumbel samples: `argmax(logits + noise)` along an axis is a draw from the categorical
/// distribution of `logits` (the Gumbel-max trick), with noise of one's own shape per key.
pub fn gumbel(shape: &[i32], dtype: Dtype, key: &Array) -> Result<Array> {
    wrap(ffi::random_gumbel(shape, dtype.code(), key.raw()))
}

/// One sample per row from the categorical distribution given by unnormalised `logits`
/// along `axis`.
pub fn categorical(logits: &Array, axis: i32, key: &Array) -> Result<Array> {
    wrap(ffi::random_categorical(logits.raw(), axis, key.raw()))
}
