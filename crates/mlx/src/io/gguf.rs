//! GGUF files through MLX's loader. Q4_0, Q4_1 and Q8_0 tensors arrive as MLX affine
//! quantized triples (`name`, `name.scales`, `name.biases`); other quantized types arrive
//! dequantized to float16. Metadata keeps GGUF's kinds: strings, string lists, and numbers
//! or number lists as arrays.

use std::path::Path;

use cxx::UniquePtr;

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::{Array, Error, Result};

/// An open GGUF file: its tensors and metadata.
pub struct Gguf {
    file: UniquePtr<ffi::GgufFile>,
}

/// One GGUF metadata value.
#[derive(Clone, Debug)]
pub enum MetadataValue {
    /// A string (e.g. `general.architecture`, `tokenizer.chat_template`).
    String(String),
    /// A list of strings (e.g. `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    Strings(Vec<String>),
    /// A number (0-D) or list of numbers (1-D), integers, floats or booleans.
    Array(Array),
    /// A value MLX's loader does not carry (empty arrays).
    Empty,
}

impl MetadataValue {
    fn kind(&self) -> &'static str {
        match self {
            MetadataValue::String(_) => "a string",
            MetadataValue::Strings(_) => "a list of strings",
            MetadataValue::Array(_) => "a number or number list",
            MetadataValue::Empty => "empty",
        }
    }
}

impl Gguf {
    /// Opens a GGUF file, after checking its header ([`super::check_gguf`]). Fails if it
    /// is missing or malformed.
    pub fn open(path: &Path) -> Result<Gguf> {
        super::check_file(path, super::check_gguf)?;
        Ok(Gguf {
            file: ffi::load_gguf(super::path_text(path)?)?,
        })
    }

    /// Every tensor name (quantized tensors add `.scales` and `.biases` entries).
    pub fn tensor_names(&self) -> Vec<String> {
        ffi::gguf_tensor_names(&self.file)
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Result<Array> {
        wrap(ffi::gguf_tensor(&self.file, name)).map_err(|_| Error::MissingTensor(name.to_owned()))
    }

    /// Every metadata key.
    pub fn metadata_keys(&self) -> Vec<String> {
        ffi::gguf_metadata_keys(&self.file)
    }

    /// The metadata value under `key`, or `None` if there is none.
    pub fn metadata(&self, key: &str) -> Result<Option<MetadataValue>> {
        let Ok(kind) = ffi::gguf_metadata_kind(&self.file, key) else {
            return Ok(None);
        };
        Ok(Some(match kind {
            1 => MetadataValue::Array(wrap(ffi::gguf_metadata_array(&self.file, key))?),
            2 => MetadataValue::String(ffi::gguf_metadata_string(&self.file, key)?),
            3 => MetadataValue::Strings(ffi::gguf_metadata_strings(&self.file, key)?),
            _ => MetadataValue::Empty,
        }))
    }

    /// The string under `key`.
    pub fn metadata_string(&self, key: &str) -> Result<Option<String>> {
        match self.metadata(key)? {
            None => Ok(None),
            Some(MetadataValue::String(s)) => Ok(Some(s)),
            Some(other) => Err(mismatch(key, "a string", &other)),
        }
    }

    /// The list of strings under `key`.
    pub fn metadata_strings(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.metadata(key)? {
            None => Ok(None),
            Some(MetadataValue::Strings(s)) => Ok(Some(s)),
            Some(other) => Err(mismatch(key, "a list of strings", &other)),
        }
    }

    /// The single number under `key`, as an integer (floats are truncated).
    pub fn metadata_int(&self, key: &str) -> Result<Option<i64>> {
        match self.number(key)? {
            None => Ok(None),
            Some(a) => Ok(Some(a.astype(crate::Dtype::Int64)?.item::<i64>()?)),
        }
    }

    /// The single number under `key`, as a float.
    pub fn metadata_float(&self, key: &str) -> Result<Option<f64>> {
        match self.number(key)? {
            None => Ok(None),
            Some(a) => Ok(Some(f64::from(
                a.astype(crate::Dtype::Float32)?.item::<f32>()?,
            ))),
        }
    }

    fn number(&self, key: &str) -> Result<Option<Array>> {
        match self.metadata(key)? {
            None => Ok(None),
            Some(MetadataValue::Array(a)) if a.size() == 1 => Ok(Some(a)),
            Some(other) => Err(mismatch(key, "a single number", &other)),
        }
    }
}

fn mismatch(key: &str, requested: &'static str, actual: &MetadataValue) -> Error {
    Error::MetadataKind {
        key: key.to_owned(),
        requested,
        actual: actual.kind(),
    }
}
