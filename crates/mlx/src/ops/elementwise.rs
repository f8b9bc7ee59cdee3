//! Element-wise arithmetic, comparisons and math functions (with broadcasting).

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::{Array, Dtype, Result};

macro_rules! binary {
    ($($(#[$doc:meta])* $name:ident => $ffi:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self, other: &Array) -> Result<Array> {
            wrap(ffi::$ffi(self.raw(), other.raw()))
        }
    )*};
}

macro_rules! unary {
    ($($(#[$doc:meta])* $name:ident => $ffi:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(&self) -> Result<Array> {
            wrap(ffi::$ffi(self.raw()))
        }
    )*};
}

/// Element-wise operations.
///
/// ```
/// use perch_mlx::Array;
/// let a = Array::from_slice(&[1.0f32, 2.0, 3.0], &[3])?;
/// let b = a.multiply(&Array::from(2.0f32))?.add(&a)?;
/// assert_eq!(b.to_vec::<f32>()?, vec![3.0, 6.0, 9.0]);
/// # Ok::<(), perch_mlx::Error>(())
/// ```
impl Array {
    binary! {
        /// `self + other`.
        add => add;
        /// `self - other`.
        subtract => subtract;
        /// `self * other`.
        multiply => multiply;
        /// `self / other` (true division; integers give floats).
        divide => divide;
        /// `self ** other`.
        power => power;
        /// Element-wise maximum.
        maximum => maximum;
        /// Element-wise minimum.
        minimum => minimum;
        /// `self == other`, as booleans.
        eq => equal;
        /// `self != other`, as booleans.
        ne => not_equal;
        /// `self < other`, as booleans.
        lt => less;
        /// `self <= other`, as booleans.
        le => less_equal;
        /// `self > other`, as booleans.
        gt => greater;
        /// `self >= other`, as booleans.
        ge => greater_equal;
        /// Logical and of booleans.
        logical_and => logical_and;
        /// Logical or of booleans.
        logical_or => logical_or;
        /// Matrix product over the last two axes, batching over the rest.
        matmul => matmul;
    }

    unary! {
        /// `-self`.
        negative => negative;
        /// `e^self`.
        exp => exp;
        /// Natural logarithm.
        log => log;
        /// Square root.
        sqrt => sqrt;
        /// `1 / sqrt(self)`.
        rsqrt => rsqrt;
        /// `1 / (1 + e^-self)`.
        sigmoid => sigmoid;
        /// Hyperbolic tangent.
        tanh => tanh;
        /// The error function.
        erf => erf;
        /// Absolute value.
        abs => abs;
        /// `self * self`.
        square => square;
        /// Sine.
        sin => sin;
        /// Cosine.
        cos => cos;
        /// Logical not of booleans.
        logical_not => logical_not;
    }

    /// SiLU (swish): `self * sigmoid(self)`.
    pub fn silu(&self) -> Result<Array> {
        self.multiply(&self.sigmoid()?)
    }

    /// GELU with the exact error function: `0.5 * x * (1 + erf(x / √2))`.
    pub fn gelu(&self) -> Result<Array> {
        let inner = self
            .multiply(&self.scalar_like(std::f64::consts::FRAC_1_SQRT_2)?)?
            .erf()?;
        let one_plus = inner.add(&self.scalar_like(1.0)?)?;
        self.multiply(&one_plus)?.multiply(&self.scalar_like(0.5)?)
    }

    /// GELU with the tanh approximation used by Gemma:
    /// `0.5 * x * (1 + tanh(√(2/π) * (x + 0.044715 x³)))`.
    pub fn gelu_approx(&self) -> Result<Array> {
        let cube = self.multiply(&self.square()?)?;
        let inner = self.add(&cube.multiply(&self.scalar_like(0.044715)?)?)?;
        let t = inner
            .multiply(&self.scalar_like((2.0 / std::f64::consts::PI).sqrt())?)?
            .tanh()?;
        let one_plus = t.add(&self.scalar_like(1.0)?)?;
        self.multiply(&one_plus)?.multiply(&self.scalar_like(0.5)?)
    }

    /// A 0-dimensional array holding `value` in this array's dtype, so that mixing it in
    /// does not promote (a float32 scalar would turn float16 activations into float32).
    pub fn scalar_like(&self, value: f64) -> Result<Array> {
        Array::full(&[], value, self.dtype())
    }

    /// Picks `x` where `condition` is true and `y` elsewhere.
    pub fn where_(condition: &Array, x: &Array, y: &Array) -> Result<Array> {
        wrap(ffi::where_(condition.raw(), x.raw(), y.raw()))
    }

    /// Converts the elements to `dtype`.
    pub fn astype(&self, dtype: Dtype) -> Result<Array> {
        wrap(ffi::astype(self.raw(), dtype.code()))
    }
}
