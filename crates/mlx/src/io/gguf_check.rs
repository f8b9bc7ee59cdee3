//! A structural check of a GGUF file, in Rust, before MLX's loader (C and C++ that trusts
//! the file) reads it. A model file comes from the internet: every count, length, offset
//! and size in its header is checked against the bytes actually there, so a malformed or
//! hostile file is refused with a message instead of making the loader allocate without
//! bound or read past the end of the file.
//!
//! Layout (versions 2 and 3): `GGUF`, version, tensor count, metadata count; the metadata
//! key/values; one record per tensor (name, dimensions, type, offset); padding to the
//! alignment; the tensor data, each tensor at its offset from the start of that section.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;

use super::MAX_DIM;
use crate::{Error, Result};

/// Longest string the header may hold (a tokenizer's merges list holds many strings,
/// none long).
const MAX_STRING: u64 = 1 << 24;
/// Deepest nesting of arrays in metadata values.
const MAX_ARRAY_DEPTH: u32 = 2;
/// Most dimensions a tensor has in GGML.
const MAX_DIMS: u32 = 4;

/// What the header says, once checked.
#[derive(Clone, Debug, PartialEq)]
pub struct GgufSummary {
    /// Format version (2 or 3).
    pub version: u32,
    /// Number of tensors.
    pub tensors: u64,
    /// Number of metadata entries.
    pub metadata: u64,
    /// The metadata entries that hold one number, flag or string.
    pub scalars: BTreeMap<String, GgufScalar>,
    /// The metadata entries that hold a list of numbers or strings (the tokenizer's
    /// vocabulary, merges, token types and scores); nested lists are left out.
    pub arrays: BTreeMap<String, GgufArray>,
    /// Each tensor's type, element count and bytes in the file, in header order.
    pub tensor_infos: Vec<GgufTensorInfo>,
}

/// One metadata value that is not an array.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufScalar {
    /// Any integer type.
    Int(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// A flag.
    Bool(bool),
    /// Text.
    Str(String),
}

impl GgufScalar {
    /// The value as a whole number, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            GgufScalar::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            GgufScalar::Int(n) => Some(*n as f64),
            GgufScalar::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufScalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One metadata list.
#[derive(Clone, Debug, PartialEq)]
pub enum GgufArray {
    /// Numbers of any type (integers, floats, flags), as `f64` (exact for every integer a
    /// tokenizer's metadata holds).
    Numbers(Vec<f64>),
    /// Strings.
    Strings(Vec<String>),
}

/// One tensor as the header declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufTensorInfo {
    /// Its name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Its GGML type (0 = F32, 1 = F16, 2 = Q4_0, 3 = Q4_1, 8 = Q8_0, …).
    pub kind: u32,
    /// Number of elements.
    pub elements: u64,
    /// Bytes it takes in the file.
    pub bytes: u64,
}

/// Checks the GGUF header read from `reader`, a file of `len` bytes in all.
///
/// ```
/// use perch_mlx::io::check_gguf;
/// let mut file = b"GGUF".to_vec();
/// file.extend(3u32.to_le_bytes());
/// file.extend(0u64.to_le_bytes()); // tensors
/// file.extend(0u64.to_le_bytes()); // metadata
/// let summary = check_gguf(&file[..], file.len() as u64).unwrap();
/// assert_eq!((summary.version, summary.tensors), (3, 0));
/// // Claims a billion tensors in 24 bytes:
/// file[8..16].copy_from_slice(&1_000_000_000u64.to_le_bytes());
/// assert!(check_gguf(&file[..], file.len() as u64).is_err());
/// ```
pub fn check_gguf(reader: impl Read, len: u64) -> Result<GgufSummary> {
    let mut r = Reader {
        inner: reader,
        pos: 0,
        len,
    };
    let magic: [u8; 4] = r.bytes_array()?;
    if &magic != b"GGUF" {
        return Err(malformed("it does not start with GGUF"));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(malformed(format!(
            "version {version} is not supported (2 or 3)"
        )));
    }
    let tensors = r.count("tensor", 8 + 4 + 4 + 8 + 8)?;
    let metadata = r.count("metadata entry", 8 + 4 + 1)?;
    let mut alignment = 32u64;
    let mut scalars = BTreeMap::new();
    let mut arrays = BTreeMap::new();
    for _ in 0..metadata {
        let key = r.string()?;
        let kind = r.u32()?;
        if key == "general.alignment" {
            if kind != 4 {
                return Err(malformed("general.alignment is not a u32"));
            }
            alignment = u64::from(r.u32()?);
            if alignment == 0 || !alignment.is_power_of_two() {
                return Err(malformed(format!(
                    "general.alignment {alignment} is not a power of two"
                )));
            }
            scalars.insert(key, GgufScalar::Int(alignment as i64));
        } else if let Some(value) = r.scalar(kind)? {
            scalars.insert(key, value);
        } else if let Some(list) = r.array(kind)? {
            arrays.insert(key, list);
        } else {
            r.skip_value(kind, 0)?;
        }
    }
    let mut names = HashSet::new();
    let mut extents = Vec::new();
    let mut tensor_infos = Vec::new();
    for _ in 0..tensors {
        let name = r.string()?;
        let dims = r.u32()?;
        if !(1..=MAX_DIMS).contains(&dims) {
            return Err(malformed(format!("tensor {name:?} has {dims} dimensions")));
        }
        let mut shape = Vec::with_capacity(dims as usize);
        for _ in 0..dims {
            shape.push(r.u64()?);
        }
        let kind = r.u32()?;
        let offset = r.u64()?;
        let bytes = tensor_bytes(&name, kind, &shape)?;
        if offset % alignment != 0 {
            return Err(malformed(format!(
                "tensor {name:?} starts at offset {offset}, not a multiple of the alignment {alignment}"
            )));
        }
        if !names.insert(name.clone()) {
            return Err(malformed(format!("tensor {name:?} appears twice")));
        }
        tensor_infos.push(GgufTensorInfo {
            name: name.clone(),
            kind,
            elements: shape.iter().product(),
            bytes,
        });
        extents.push((name, offset, bytes));
    }
    let data_start = r.pos.div_ceil(alignment) * alignment;
    let data_len = len.saturating_sub(data_start);
    for (name, offset, bytes) in &extents {
        let end = offset
            .checked_add(*bytes)
            .ok_or_else(|| malformed(format!("tensor {name:?} overflows")))?;
        if end > data_len {
            return Err(malformed(format!(
                "tensor {name:?} needs bytes {offset}..{end} of the data, which holds {data_len}: the file is truncated or corrupt"
            )));
        }
    }
    Ok(GgufSummary {
        version,
        tensors,
        metadata,
        scalars,
        arrays,
        tensor_infos,
    })
}

fn malformed(message: impl Into<String>) -> Error {
    Error::MalformedFile {
        format: "GGUF",
        message: message.into(),
    }
}

/// Elements per block and bytes per block of a GGML tensor type, for the types GGUF
/// files carry.
fn block_layout(kind: u32) -> Option<(u64, u64)> {
    Some(match kind {
        0 => (1, 4),      // F32
        1 => (1, 2),      // F16
        2 => (32, 18),    // Q4_0
        3 => (32, 20),    // Q4_1
        6 => (32, 22),    // Q5_0
        7 => (32, 24),    // Q5_1
        8 => (32, 34),    // Q8_0
        9 => (32, 36),    // Q8_1
        10 => (256, 84),  // Q2_K
        11 => (256, 110), // Q3_K
        12 => (256, 144), // Q4_K
        13 => (256, 176), // Q5_K
        14 => (256, 210), // Q6_K
        15 => (256, 292), // Q8_K
        16 => (256, 66),  // IQ2_XXS
        17 => (256, 74),  // IQ2_XS
        18 => (256, 98),  // IQ3_XXS
        19 => (256, 50),  // IQ1_S
        20 => (32, 18),   // IQ4_NL
        21 => (256, 110), // IQ3_S
        22 => (256, 82),  // IQ2_S
        23 => (256, 136), // IQ4_XS
        24 => (1, 1),     // I8
        25 => (1, 2),     // I16
        26 => (1, 4),     // I32
        27 => (1, 8),     // I64
        28 => (1, 8),     // F64
        29 => (256, 56),  // IQ1_M
        30 => (1, 2),     // BF16
        34 => (256, 54),  // TQ1_0
        35 => (256, 66),  // TQ2_0
        39 => (32, 17),   // MXFP4
        _ => return None,
    })
}

/// Bytes of a tensor of type `kind` and `shape` (innermost dimension first).
fn tensor_bytes(name: &str, kind: u32, shape: &[u64]) -> Result<u64> {
    let (block, block_bytes) = block_layout(kind)
        .ok_or_else(|| malformed(format!("tensor {name:?} has unknown type {kind}")))?;
    if shape.contains(&0) {
        return Err(malformed(format!("tensor {name:?} has an empty dimension")));
    }
    if shape.iter().any(|&d| d > MAX_DIM) {
        return Err(malformed(format!(
            "tensor {name:?} has a dimension beyond {MAX_DIM}, more than MLX can hold"
        )));
    }
    if shape[0] % block != 0 {
        return Err(malformed(format!(
            "tensor {name:?}: rows of {} elements do not fill whole blocks of {block}",
            shape[0]
        )));
    }
    let blocks = shape[1..]
        .iter()
        .try_fold(shape[0] / block, |n, &d| n.checked_mul(d));
    blocks
        .and_then(|n| n.checked_mul(block_bytes))
        .ok_or_else(|| malformed(format!("tensor {name:?} is impossibly large")))
}

/// Bytes of one value of a fixed-size metadata type.
fn scalar_bytes(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Reads little-endian values, never past `len` and never allocating more than the
/// bytes left could hold.
struct Reader<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read> Reader<R> {
    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    fn take(&mut self, n: u64) -> Result<()> {
        if n > self.left() {
            return Err(malformed(format!(
                "it ends at byte {} while the header needs {n} more bytes at {}",
                self.len, self.pos
            )));
        }
        self.pos += n;
        Ok(())
    }

    fn bytes_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N as u64)?;
        let mut out = [0u8; N];
        self.inner
            .read_exact(&mut out)
            .map_err(|e| malformed(format!("reading the header: {e}")))?;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes_array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes_array()?))
    }

    /// A count of items at least `min_bytes` each, which the rest of the file must hold.
    fn count(&mut self, what: &str, min_bytes: u64) -> Result<u64> {
        let n = self.u64()?;
        if n.saturating_mul(min_bytes) > self.left() {
            return Err(malformed(format!(
                "it claims {n} {what}s, more than its {} remaining bytes can hold",
                self.left()
            )));
        }
        Ok(n)
    }

    fn skip(&mut self, n: u64) -> Result<()> {
        self.take(n)?;
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| malformed(format!("reading the header: {e}")))?;
        if copied != n {
            return Err(malformed("the file ended inside its header"));
        }
        Ok(())
    }

    fn string(&mut self) -> Result<String> {
        let n = self.u64()?;
        if n > MAX_STRING {
            return Err(malformed(format!("a string of {n} bytes")));
        }
        self.take(n)?;
        let mut bytes = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut bytes)
            .map_err(|e| malformed(format!("reading the header: {e}")))?;
        String::from_utf8(bytes).map_err(|_| malformed("a string is not UTF-8"))
    }

    /// Reads a value of type `kind` if it is a scalar or a string; `None` (having read
    /// nothing) for an array.
    fn scalar(&mut self, kind: u32) -> Result<Option<GgufScalar>> {
        let value = match kind {
            0 => GgufScalar::Int(i64::from(self.bytes_array::<1>()?[0])),
            1 => GgufScalar::Int(i64::from(self.bytes_array::<1>()?[0] as i8)),
            2 => GgufScalar::Int(i64::from(u16::from_le_bytes(self.bytes_array()?))),
            3 => GgufScalar::Int(i64::from(i16::from_le_bytes(self.bytes_array()?))),
            4 => GgufScalar::Int(i64::from(self.u32()?)),
            5 => GgufScalar::Int(i64::from(i32::from_le_bytes(self.bytes_array()?))),
            6 => GgufScalar::Float(f64::from(f32::from_le_bytes(self.bytes_array()?))),
            7 => GgufScalar::Bool(self.bytes_array::<1>()?[0] != 0),
            8 => GgufScalar::Str(self.string()?),
            10 => GgufScalar::Int(self.u64()? as i64),
            11 => GgufScalar::Int(i64::from_le_bytes(self.bytes_array()?)),
            12 => GgufScalar::Float(f64::from_le_bytes(self.bytes_array()?)),
            _ => return Ok(None),
        };
        Ok(Some(value))
    }

    /// Reads a list of numbers or strings if `kind` is an array of them; `None` (having
    /// read only the item type, when it is an array of arrays) otherwise.
    fn array(&mut self, kind: u32) -> Result<Option<GgufArray>> {
        if kind != 9 {
            return Ok(None);
        }
        let item = self.u32()?;
        match item {
            8 => {
                let n = self.count("array item", 8)?;
                let strings = (0..n).map(|_| self.string()).collect::<Result<_>>()?;
                Ok(Some(GgufArray::Strings(strings)))
            }
            9 => {
                // Lists of lists: skipped (no metadata Perch reads holds them).
                let n = self.count("array item", 8)?;
                (0..n).try_for_each(|_| self.skip_value(9, 1))?;
                Ok(None)
            }
            _ => {
                let size = scalar_bytes(item)
                    .ok_or_else(|| malformed(format!("unknown metadata type {item}")))?;
                let n = self.count("array item", size)?;
                let numbers = (0..n)
                    .map(|_| match self.scalar(item)? {
                        Some(GgufScalar::Int(v)) => Ok(v as f64),
                        Some(GgufScalar::Float(v)) => Ok(v),
                        Some(GgufScalar::Bool(v)) => Ok(f64::from(u8::from(v))),
                        _ => Err(malformed(format!("unknown metadata type {item}"))),
                    })
                    .collect::<Result<_>>()?;
                Ok(Some(GgufArray::Numbers(numbers)))
            }
        }
    }

    fn skip_value(&mut self, kind: u32, depth: u32) -> Result<()> {
        if let Some(n) = scalar_bytes(kind) {
            return self.skip(n);
        }
        match kind {
            8 => {
                let n = self.u64()?;
                if n > MAX_STRING {
                    return Err(malformed(format!("a string of {n} bytes")));
                }
                self.skip(n)
            }
            9 if depth < MAX_ARRAY_DEPTH => {
                let item = self.u32()?;
                if scalar_bytes(item).is_none() && !matches!(item, 8 | 9) {
                    return Err(malformed(format!("unknown metadata type {item}")));
                }
                match scalar_bytes(item) {
                    Some(size) => {
                        let n = self.u64()?;
                        let bytes = n
                            .checked_mul(size)
                            .ok_or_else(|| malformed(format!("an array of {n} items")))?;
                        self.skip(bytes)
                    }
                    None => {
                        // Strings and arrays are at least 8 bytes each.
                        let n = self.count("array item", 8)?;
                        (0..n).try_for_each(|_| self.skip_value(item, depth + 1))
                    }
                }
            }
            9 => Err(malformed("metadata arrays nest too deeply")),
            other => Err(malformed(format!("unknown metadata type {other}"))),
        }
    }
}
