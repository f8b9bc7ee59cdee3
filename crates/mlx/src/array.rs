//! [`Array`]: an owned handle to an MLX array, its constructors and read-back.

use cxx::UniquePtr;

use crate::ffi::bridge as ffi;
use crate::{Dtype, Element, Error, Result};

/// An n-dimensional MLX array.
///
/// Cloning is cheap (it shares the underlying buffer and graph node). Operations are lazy:
/// they record a graph that runs on [`eval`](crate::eval), or implicitly when data is read.
///
/// ```
/// use perch_mlx::{Array, Dtype};
/// let a = Array::from_slice(&[1i32, 2, 3, 4, 5, 6], &[2, 3])?;
/// assert_eq!(a.shape(), vec![2, 3]);
/// assert_eq!(a.dtype(), Dtype::Int32);
/// assert_eq!(a.to_vec::<i32>()?, vec![1, 2, 3, 4, 5, 6]);
/// # Ok::<(), perch_mlx::Error>(())
/// ```
pub struct Array {
    pub(crate) inner: UniquePtr<ffi::Array>,
}

/// Turns the result of a shim call into an [`Array`].
pub(crate) fn wrap(result: Result<UniquePtr<ffi::Array>, cxx::Exception>) -> Result<Array> {
    Ok(Array { inner: result? })
}

impl Array {
    pub(crate) fn raw(&self) -> &ffi::Array {
        // Never null: every constructor checks the shim's result.
        &self.inner
    }

    /// Builds an array of `shape` from a slice, row-major. Fails if the slice's length is
    /// not the number of elements the shape holds.
    pub fn from_slice<T: Element>(data: &[T], shape: &[i32]) -> Result<Array> {
        let expected = shape.iter().try_fold(1usize, |n, &d| {
            usize::try_from(d).ok().and_then(|d| n.checked_mul(d))
        });
        if expected != Some(data.len()) {
            return Err(Error::ShapeMismatch {
                len: data.len(),
                shape: shape.to_vec(),
                expected: expected.unwrap_or(0),
            });
        }
        // SAFETY: `T: Element` is plain data; viewing it as bytes is sound.
        let bytes = unsafe {
            std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), std::mem::size_of_val(data))
        };
        wrap(ffi::array_from_bytes(bytes, shape, T::DTYPE.code()))
    }

    /// A 0-dimensional array holding `value`.
    pub fn scalar<T: Element>(value: T) -> Array {
        Array::from_slice(&[value], &[]).expect("one element always fills the empty shape")
    }

    /// An array of `shape` filled with zeros.
    pub fn zeros(shape: &[i32], dtype: Dtype) -> Result<Array> {
        wrap(ffi::zeros(shape, dtype.code()))
    }

    /// An array of `shape` filled with ones.
    pub fn ones(shape: &[i32], dtype: Dtype) -> Result<Array> {
        wrap(ffi::ones(shape, dtype.code()))
    }

    /// An array of `shape` filled with `value` (converted to `dtype`).
    pub fn full(shape: &[i32], value: f64, dtype: Dtype) -> Result<Array> {
        wrap(ffi::full(shape, value, dtype.code()))
    }

    /// The values `start, start + step, …` below `stop`, as a 1-D array.
    ///
    /// ```
    /// use perch_mlx::{Array, Dtype};
    /// let a = Array::arange(0.0, 5.0, 2.0, Dtype::Int32)?;
    /// assert_eq!(a.to_vec::<i32>()?, vec![0, 2, 4]);
    /// # Ok::<(), perch_mlx::Error>(())
    /// ```
    pub fn arange(start: f64, stop: f64, step: f64, dtype: Dtype) -> Result<Array> {
        wrap(ffi::arange(start, stop, step, dtype.code()))
    }

    /// The element type.
    pub fn dtype(&self) -> Dtype {
        Dtype::from_code(ffi::array_dtype(self.raw()).expect("every MLX dtype has a code"))
    }

    /// The size of each dimension.
    pub fn shape(&self) -> Vec<i32> {
        ffi::array_shape(self.raw())
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn size(&self) -> usize {
        ffi::array_size(self.raw())
    }

    /// Bytes the elements take (size × dtype size).
    pub fn nbytes(&self) -> usize {
        ffi::array_nbytes(self.raw())
    }

    /// Evaluates the array and copies its elements out, row-major.
    /// Fails if `T` is not the array's dtype (use [`astype`](Array::astype) first).
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let actual = self.dtype();
        if actual != T::DTYPE {
            return Err(Error::DtypeMismatch {
                requested: T::DTYPE,
                actual,
            });
        }
        let mut out = vec![T::default(); self.size()];
        // SAFETY: `T: Element` is plain data of the array's dtype; the shim writes exactly
        // `nbytes` bytes (it checks the length) of that dtype into the buffer.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                out.as_mut_ptr().cast::<u8>(),
                std::mem::size_of_val(out.as_slice()),
            )
        };
        ffi::array_copy_to(self.raw(), bytes)?;
        Ok(out)
    }

    /// The single element of a one-element array.
    pub fn item<T: Element>(&self) -> Result<T> {
        let size = self.size();
        if size != 1 {
            return Err(Error::NotScalar(size));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// Evaluates this array (see [`eval`](crate::eval)).
    pub fn eval(&self) -> Result<()> {
        crate::eval(&[self])
    }
}

impl Clone for Array {
    fn clone(&self) -> Self {
        Array {
            inner: ffi::array_clone(self.raw()),
        }
    }
}

impl std::fmt::Debug for Array {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match ffi::array_to_string(self.raw()) {
            Ok(text) => f.write_str(&text),
            Err(e) => write!(
                f,
                "array(shape={:?}, dtype={:?}, unprintable: {e})",
                self.shape(),
                self.dtype()
            ),
        }
    }
}

impl<T: Element> From<T> for Array {
    fn from(value: T) -> Self {
        Array::scalar(value)
    }
}
