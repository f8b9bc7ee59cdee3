//! Reading and writing weight files: safetensors (read and write, with metadata) and GGUF
//! (read: tensors, with Q4_0, Q4_1 and Q8_0 kept quantized, and every metadata kind).

mod gguf;
mod safetensors;

pub use gguf::{Gguf, MetadataValue};
pub use safetensors::{load_safetensors, save_safetensors, Safetensors};

use std::path::Path;

/// MLX takes paths as UTF-8 text.
fn path_text(path: &Path) -> crate::Result<&str> {
    path.to_str()
        .ok_or_else(|| crate::Error::Mlx(format!("path is not valid UTF-8: {}", path.display())))
}
