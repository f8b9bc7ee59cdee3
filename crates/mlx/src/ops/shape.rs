//! Operations that change shape or layout without changing values.

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::{Array, Result};

/// Shape changes.
///
/// ```
/// use perch_mlx::Array;
/// let a = Array::arange(0.0, 6.0, 1.0, perch_mlx::Dtype::Float32)?.reshape(&[2, 3])?;
/// assert_eq!(a.transpose(&[1, 0])?.shape(), vec![3, 2]);
/// assert_eq!(a.expand_dims(&[0])?.shape(), vec![1, 2, 3]);
/// # Ok::<(), perch_mlx::Error>(())
/// ```
impl Array {
    /// Same elements, new shape; one dimension may be `-1` (inferred).
    pub fn reshape(&self, shape: &[i32]) -> Result<Array> {
        wrap(ffi::reshape(self.raw(), shape))
    }

    /// Permutes the axes; an empty `axes` reverses them.
    pub fn transpose(&self, axes: &[i32]) -> Result<Array> {
        let axes: Vec<i32> = if axes.is_empty() {
            (0..self.ndim() as i32).rev().collect()
        } else {
            axes.to_vec()
        };
        wrap(ffi::transpose(self.raw(), &axes))
    }

    /// Removes the given size-1 axes.
    pub fn squeeze(&self, axes: &[i32]) -> Result<Array> {
        wrap(ffi::squeeze(self.raw(), axes))
    }

    /// Inserts size-1 axes at the given positions.
    pub fn expand_dims(&self, axes: &[i32]) -> Result<Array> {
        wrap(ffi::expand_dims(self.raw(), axes))
    }

    /// Broadcasts to `shape` (no copy).
    pub fn broadcast_to(&self, shape: &[i32]) -> Result<Array> {
        wrap(ffi::broadcast_to(self.raw(), shape))
    }

    /// Zeroes everything above the `k`-th diagonal of the last two axes.
    pub fn tril(&self, k: i32) -> Result<Array> {
        wrap(ffi::tril(self.raw(), k))
    }

    /// Zeroes everything below the `k`-th diagonal of the last two axes.
    pub fn triu(&self, k: i32) -> Result<Array> {
        wrap(ffi::triu(self.raw(), k))
    }
}
