//! Reductions (sum, mean, max, logsumexp, softmax…), arg-reductions and sorting.
//!
//! An empty `axes` slice means every axis.

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::{Array, Result};

fn all_axes(a: &Array, axes: &[i32]) -> Vec<i32> {
    if axes.is_empty() {
        (0..a.ndim() as i32).collect()
    } else {
        axes.to_vec()
    }
}

macro_rules! reduction {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self, axes: &[i32], keepdims: bool) -> Result<Array> {
            wrap(ffi::$name(self.raw(), &all_axes(self, axes), keepdims))
        }
    )*};
}

/// Reductions and sorting.
///
/// ```
/// use perch_mlx::Array;
/// let a = Array::from_slice(&[1.0f32, 5.0, 3.0, 2.0], &[2, 2])?;
/// assert_eq!(a.sum(&[1], false)?.to_vec::<f32>()?, vec![6.0, 5.0]);
/// assert_eq!(a.argmax(-1, false)?.to_vec::<u32>()?, vec![1, 0]);
/// # Ok::<(), perch_mlx::Error>(())
/// ```
impl Array {
    reduction! {
        /// Sum over `axes`.
        sum;
        /// Mean over `axes`.
        mean;
        /// Maximum over `axes`.
        max;
        /// Minimum over `axes`.
        min;
        /// `log(sum(exp(self)))` over `axes`, computed stably.
        logsumexp;
    }

    /// Softmax over `axes`; `precise` accumulates half-precision inputs in float32.
    pub fn softmax(&self, axes: &[i32], precise: bool) -> Result<Array> {
        wrap(ffi::softmax(self.raw(), &all_axes(self, axes), precise))
    }

    /// Index of the largest element along `axis` (as `uint32`).
    pub fn argmax(&self, axis: i32, keepdims: bool) -> Result<Array> {
        wrap(ffi::argmax(self.raw(), axis, keepdims))
    }

    /// Index of the smallest element along `axis` (as `uint32`).
    pub fn argmin(&self, axis: i32, keepdims: bool) -> Result<Array> {
        wrap(ffi::argmin(self.raw(), axis, keepdims))
    }

    /// Indices that sort `axis` ascending (as `uint32`).
    pub fn argsort(&self, axis: i32) -> Result<Array> {
        wrap(ffi::argsort(self.raw(), axis))
    }

    /// Indices that partition `axis` around its `kth` smallest element: everything before
    /// position `kth` is no larger, everything after no smaller (as `uint32`).
    pub fn argpartition(&self, kth: i32, axis: i32) -> Result<Array> {
        wrap(ffi::argpartition(self.raw(), kth, axis))
    }

    /// The `k` largest values along `axis`, in no particular order.
    pub fn topk(&self, k: i32, axis: i32) -> Result<Array> {
        wrap(ffi::topk(self.raw(), k, axis))
    }

    /// Running sum along `axis`; `reverse` runs from the end, `inclusive` counts the
    /// element itself.
    pub fn cumsum(&self, axis: i32, reverse: bool, inclusive: bool) -> Result<Array> {
        wrap(ffi::cumsum(self.raw(), axis, reverse, inclusive))
    }
}
