//! Element types: MLX's `Dtype` and the Rust types that map onto them.

/// The element type of an [`Array`](crate::Array). The discriminants are the codes the
/// C++ shim uses, so they must stay in the shim's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Dtype {
    /// `bool`
    Bool = 0,
    /// `uint8`
    Uint8,
    /// `uint16`
    Uint16,
    /// `uint32`
    Uint32,
    /// `uint64`
    Uint64,
    /// `int8`
    Int8,
    /// `int16`
    Int16,
    /// `int32`
    Int32,
    /// `int64`
    Int64,
    /// `float16`
    Float16,
    /// `float32`
    Float32,
    /// `float64` (CPU only in MLX)
    Float64,
    /// `bfloat16`
    Bfloat16,
    /// `complex64`
    Complex64,
}

const ALL: [Dtype; 14] = [
    Dtype::Bool,
    Dtype::Uint8,
    Dtype::Uint16,
    Dtype::Uint32,
    Dtype::Uint64,
    Dtype::Int8,
    Dtype::Int16,
    Dtype::Int32,
    Dtype::Int64,
    Dtype::Float16,
    Dtype::Float32,
    Dtype::Float64,
    Dtype::Bfloat16,
    Dtype::Complex64,
];

impl Dtype {
    pub(crate) fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_code(code: u8) -> Dtype {
        ALL[usize::from(code)]
    }

    /// Bytes per element.
    pub fn size_of(self) -> usize {
        match self {
            Dtype::Bool | Dtype::Uint8 | Dtype::Int8 => 1,
            Dtype::Uint16 | Dtype::Int16 | Dtype::Float16 | Dtype::Bfloat16 => 2,
            Dtype::Uint32 | Dtype::Int32 | Dtype::Float32 => 4,
            Dtype::Uint64 | Dtype::Int64 | Dtype::Float64 | Dtype::Complex64 => 8,
        }
    }

    /// Whether this is a floating-point type (`float16`, `bfloat16`, `float32`, `float64`).
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Dtype::Float16 | Dtype::Bfloat16 | Dtype::Float32 | Dtype::Float64
        )
    }
}

/// A Rust type whose values can be copied into and out of an [`Array`](crate::Array).
///
/// # Safety
/// `DTYPE` must have exactly the size and bit layout of `Self`, and every bit pattern MLX
/// can store for `DTYPE` must be a valid `Self`.
pub unsafe trait Element: Copy + Default + 'static {
    /// The matching MLX dtype.
    const DTYPE: Dtype;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        // SAFETY: each pair has the same size and plain-old-data layout.
        unsafe impl Element for $t { const DTYPE: Dtype = Dtype::$d; }
    )*};
}
element!(u8 => Uint8, u16 => Uint16, u32 => Uint32, u64 => Uint64, i8 => Int8, i16 => Int16,
    i32 => Int32, i64 => Int64, f32 => Float32, f64 => Float64);

// SAFETY: MLX stores booleans as one byte holding 0 or 1, the same as Rust's `bool`.
unsafe impl Element for bool {
    const DTYPE: Dtype = Dtype::Bool;
}
