//! Reading and writing weight files: safetensors (read and write, with metadata) and GGUF
//! (read: tensors, with Q4_0, Q4_1 and Q8_0 kept quantized, and every metadata kind).
//! Every file is checked in Rust (`*_check.rs`) before MLX's loader sees it.

mod gguf;
mod gguf_check;
mod safetensors;
mod safetensors_check;

pub use gguf::{Gguf, MetadataValue};
pub use gguf_check::{check_gguf, GgufArray, GgufScalar, GgufSummary, GgufTensorInfo};
pub use safetensors::{load_safetensors, save_safetensors, Safetensors};
pub use safetensors_check::{check_safetensors, SafetensorsTensor};

/// Largest dimension a checked file may declare: MLX stores shapes as 32-bit signed
/// integers.
const MAX_DIM: u64 = i32::MAX as u64;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// Runs `check` over the file at `path` (buffered, with its length).
fn check_file<T>(
    path: &Path,
    check: impl FnOnce(BufReader<File>, u64) -> crate::Result<T>,
) -> crate::Result<T> {
    let unreadable = |source| crate::Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    check(BufReader::new(file), len)
}

/// MLX takes paths as UTF-8 text.
fn path_text(path: &Path) -> crate::Result<&str> {
    path.to_str()
        .ok_or_else(|| crate::Error::Mlx(format!("path is not valid UTF-8: {}", path.display())))
}

/// Checks the GGUF file at `path` and returns what its header says, without loading a
/// tensor.
pub fn read_gguf_header(path: &Path) -> crate::Result<GgufSummary> {
    check_file(path, check_gguf)
}

/// Checks the safetensors file at `path` and returns its tensors, without loading one.
pub fn read_safetensors_header(path: &Path) -> crate::Result<Vec<SafetensorsTensor>> {
    check_file(path, check_safetensors)
}
