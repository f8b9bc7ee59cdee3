//! Affine group quantization as MLX does it: each group of `group_size` weights along the
//! last axis is stored as `bits`-bit integers with one scale and one bias, packed into
//! `uint32` words.

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::transforms::from_array_vec;
use crate::{Array, Result};

/// A quantized matrix: packed weights with per-group scales and biases.
#[derive(Clone, Debug)]
pub struct Quantized {
    /// Packed `uint32` weights, `[rows, cols * bits / 32]`.
    pub weight: Array,
    /// One scale per group, `[rows, cols / group_size]`.
    pub scales: Array,
    /// One bias per group, `[rows, cols / group_size]`.
    pub biases: Array,
    /// Weights per group (32, 64 or 128).
    pub group_size: i32,
    /// Bits per weight (2, 3, 4, 5, 6 or 8).
    pub bits: i32,
}

impl Quantized {
    /// The float matrix these weights stand for.
    pub fn dequantize(&self) -> Result<Array> {
        wrap(ffi::dequantize(
            self.weight.raw(),
            self.scales.raw(),
            self.biases.raw(),
            self.group_size,
            self.bits,
        ))
    }

    /// `x @ W.T` when `transpose` (the layout of a linear layer), else `x @ W`, computed
    /// directly on the packed weights.
    pub fn matmul(&self, x: &Array, transpose: bool) -> Result<Array> {
        wrap(ffi::quantized_matmul(
            x.raw(),
            self.weight.raw(),
            self.scales.raw(),
            self.biases.raw(),
            transpose,
            self.group_size,
            self.bits,
        ))
    }
}

impl Array {
    /// Quantizes a matrix along its last axis.
    ///
    /// ```
    /// use perch_mlx::{Array, Dtype};
    /// let w = Array::arange(0.0, 128.0, 1.0, Dtype::Float32)?.reshape(&[2, 64])?;
    /// let q = w.quantize(64, 8)?;
    /// let back = q.dequantize()?;
    /// let err = back.subtract(&w)?.abs()?.max(&[], false)?.item::<f32>()?;
    /// assert!(err < 0.2);
    /// # Ok::<(), perch_mlx::Error>(())
    /// ```
    pub fn quantize(&self, group_size: i32, bits: i32) -> Result<Quantized> {
        let mut parts = from_array_vec(ffi::quantize(self.raw(), group_size, bits))?.into_iter();
        match (parts.next(), parts.next(), parts.next()) {
            (Some(weight), Some(scales), Some(biases)) => Ok(Quantized {
                weight,
                scales,
                biases,
                group_size,
                bits,
            }),
            _ => Err(crate::Error::Mlx(
                "affine quantize returned fewer than three arrays".into(),
            )),
        }
    }
}
