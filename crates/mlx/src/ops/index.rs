//! Indexing (take, slices, slice updates) and joining or splitting arrays.

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::transforms::{array_vec, from_array_vec};
use crate::{Array, Result};

/// Indexing, joining and splitting.
///
/// ```
/// use perch_mlx::Array;
/// let a = Array::from_slice(&[10i32, 11, 12, 13], &[4])?;
/// let idx = Array::from_slice(&[3u32, 0], &[2])?;
/// assert_eq!(a.take(&idx, 0)?.to_vec::<i32>()?, vec![13, 10]);
/// assert_eq!(a.slice(&[1], &[3], &[1])?.to_vec::<i32>()?, vec![11, 12]);
/// # Ok::<(), perch_mlx::Error>(())
/// ```
impl Array {
    /// The elements at `indices` along `axis` (embedding lookup is `take(ids, 0)`).
    pub fn take(&self, indices: &Array, axis: i32) -> Result<Array> {
        wrap(ffi::take(self.raw(), indices.raw(), axis))
    }

    /// Picks, along `axis`, the element each position of `indices` names; `indices`
    /// broadcasts against `self` on the other axes.
    pub fn take_along_axis(&self, indices: &Array, axis: i32) -> Result<Array> {
        wrap(ffi::take_along_axis(self.raw(), indices.raw(), axis))
    }

    /// The sub-array `start..stop` (step `strides`) on every axis.
    pub fn slice(&self, start: &[i32], stop: &[i32], strides: &[i32]) -> Result<Array> {
        wrap(ffi::slice(self.raw(), start, stop, strides))
    }

    /// A copy of `self` with the region `start..stop` (step `strides`) replaced by
    /// `update`; MLX does it in place when nothing else holds `self`'s buffer.
    pub fn slice_update(
        &self,
        update: &Array,
        start: &[i32],
        stop: &[i32],
        strides: &[i32],
    ) -> Result<Array> {
        wrap(ffi::slice_update(
            self.raw(),
            update.raw(),
            start,
            stop,
            strides,
        ))
    }

    /// The same elements in a buffer of their own, laid out row after row: a copy when
    /// `self` is a view into a larger array (a slice of a cache), so the larger one can
    /// be freed.
    pub fn contiguous(&self) -> Result<Array> {
        wrap(ffi::contiguous(self.raw()))
    }

    /// Joins arrays along an existing `axis`.
    pub fn concatenate(arrays: &[&Array], axis: i32) -> Result<Array> {
        wrap(ffi::concatenate(&array_vec(arrays), axis))
    }

    /// Joins arrays along a new `axis`.
    pub fn stack(arrays: &[&Array], axis: i32) -> Result<Array> {
        wrap(ffi::stack(&array_vec(arrays), axis))
    }

    /// Splits into `parts` equal pieces along `axis`.
    pub fn split(&self, parts: i32, axis: i32) -> Result<Vec<Array>> {
        from_array_vec(ffi::split_equal(self.raw(), parts, axis))
    }

    /// Splits along `axis` before each of `indices`.
    pub fn split_at(&self, indices: &[i32], axis: i32) -> Result<Vec<Array>> {
        from_array_vec(ffi::split_at(self.raw(), indices, axis))
    }
}
