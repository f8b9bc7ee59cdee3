//! The error type of `perch-mlx`.

/// What can go wrong calling MLX.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// MLX rejected the operation (bad shapes, unsupported dtype, unreadable file…);
    /// the message is MLX's own.
    #[error("MLX: {0}")]
    Mlx(String),
    /// The Rust data given to build an array does not match the requested shape.
    #[error("{len} elements cannot fill shape {shape:?} ({expected} elements)")]
    ShapeMismatch {
        /// Elements supplied.
        len: usize,
        /// The requested shape.
        shape: Vec<i32>,
        /// Elements the shape holds.
        expected: usize,
    },
    /// The array's dtype is not the Rust element type asked for.
    #[error("array has dtype {actual:?}, not {requested:?}")]
    DtypeMismatch {
        /// The dtype of the Rust type asked for.
        requested: crate::Dtype,
        /// The array's dtype.
        actual: crate::Dtype,
    },
    /// `item` was called on an array with other than one element.
    #[error("item() needs an array of one element, this one has {0}")]
    NotScalar(usize),
    /// A GGUF metadata value was read as a kind it is not.
    #[error("GGUF metadata {key:?} is {actual}, not {requested}")]
    MetadataKind {
        /// The metadata key.
        key: String,
        /// What the caller asked for.
        requested: &'static str,
        /// What the value is.
        actual: &'static str,
    },
    /// A file could not be opened or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A weight file whose structure does not hold together (found before MLX reads it).
    #[error("not a valid {format} file: {message}")]
    MalformedFile {
        /// `GGUF` or `safetensors`.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A tensor name that the file does not hold.
    #[error("no tensor named {0:?}")]
    MissingTensor(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<cxx::Exception> for Error {
    fn from(e: cxx::Exception) -> Self {
        Error::Mlx(e.what().to_owned())
    }
}
