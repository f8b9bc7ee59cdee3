//! A structural check of a safetensors file, in Rust, before MLX's loader reads it: the
//! header's length is bounded and inside the file, the header is a JSON object of
//! tensors whose dtype, shape and byte range agree with each other, lie inside the data
//! section and do not overlap. A model file comes from the internet; a malformed one is
//! refused with a message instead of reaching C++ that trusts it.

use std::io::Read;

use serde_json::Value;

use super::MAX_DIM;
use crate::{Error, Result};

/// Largest header accepted (the reference implementation's bound).
const MAX_HEADER: u64 = 100 << 20;

/// One tensor as the header declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetensorsTensor {
    /// Its name.
    pub name: String,
    /// Its dtype as the file names it (`F16`, `U32`, …).
    pub dtype: String,
    /// Number of elements.
    pub elements: u64,
    /// Bytes it takes in the file.
    pub bytes: u64,
}

/// Checks the safetensors file read from `reader`, `len` bytes in all; returns its
/// tensors.
///
/// ```
/// use perch_mlx::io::check_safetensors;
/// let header = br#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
/// let mut file = (header.len() as u64).to_le_bytes().to_vec();
/// file.extend(header);
/// file.extend([0u8; 8]);
/// assert_eq!(check_safetensors(&file[..], file.len() as u64).unwrap().len(), 1);
/// // The data is cut short:
/// assert!(check_safetensors(&file[..file.len() - 1], file.len() as u64 - 1).is_err());
/// ```
pub fn check_safetensors(mut reader: impl Read, len: u64) -> Result<Vec<SafetensorsTensor>> {
    let mut size = [0u8; 8];
    reader
        .read_exact(&mut size)
        .map_err(|_| malformed("it is shorter than the 8 bytes of its header length"))?;
    let header_len = u64::from_le_bytes(size);
    if header_len > MAX_HEADER || header_len > len.saturating_sub(8) {
        return Err(malformed(format!(
            "its header claims {header_len} bytes; the file has {len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    reader
        .read_exact(&mut header)
        .map_err(|e| malformed(format!("reading the header: {e}")))?;
    let header: Value = serde_json::from_slice(&header)
        .map_err(|e| malformed(format!("the header is not JSON: {e}")))?;
    let Value::Object(entries) = header else {
        return Err(malformed("the header is not a JSON object"));
    };
    let data_len = len.saturating_sub(8 + header_len);
    let mut ranges = Vec::new();
    let mut tensors = Vec::new();
    for (name, entry) in &entries {
        if name == "__metadata__" {
            // MLX writes `null` when there is none.
            let all_strings = entry.is_null()
                || entry
                    .as_object()
                    .is_some_and(|m| m.values().all(Value::is_string));
            if !all_strings {
                return Err(malformed("__metadata__ is not a map of strings"));
            }
            continue;
        }
        let (begin, end, elements) = tensor_range(name, entry)?;
        if end > data_len {
            return Err(malformed(format!(
                "tensor {name:?} needs bytes {begin}..{end} of the data, which holds {data_len}: the file is truncated or corrupt"
            )));
        }
        ranges.push((begin, end, name));
        tensors.push(SafetensorsTensor {
            name: name.clone(),
            dtype: entry["dtype"].as_str().unwrap_or_default().to_owned(),
            elements,
            bytes: end - begin,
        });
    }
    ranges.sort();
    for pair in ranges.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(malformed(format!(
                "tensors {:?} and {:?} overlap",
                pair[0].2, pair[1].2
            )));
        }
    }
    Ok(tensors)
}

/// The byte range and element count of one tensor entry, checked against its dtype and
/// shape.
fn tensor_range(name: &str, entry: &Value) -> Result<(u64, u64, u64)> {
    let bad = |what: &str| malformed(format!("tensor {name:?}: {what}"));
    let dtype = entry["dtype"].as_str().ok_or_else(|| bad("no dtype"))?;
    let element_bits = dtype_bits(dtype).ok_or_else(|| bad(&format!("unknown dtype {dtype}")))?;
    let shape = entry["shape"]
        .as_array()
        .ok_or_else(|| bad("no shape"))?
        .iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| bad("a dimension is not a whole number"))
        })
        .collect::<Result<Vec<u64>>>()?;
    let offsets = entry["data_offsets"]
        .as_array()
        .filter(|o| o.len() == 2)
        .ok_or_else(|| bad("data_offsets is not [begin, end]"))?;
    let (begin, end) = match (offsets[0].as_u64(), offsets[1].as_u64()) {
        (Some(b), Some(e)) if b <= e => (b, e),
        _ => return Err(bad("data_offsets is not [begin, end] with begin ≤ end")),
    };
    if shape.iter().any(|&d| d > MAX_DIM) {
        return Err(bad("a dimension is beyond what MLX can hold (2^31 - 1)"));
    }
    let bits = shape
        .iter()
        .try_fold(element_bits, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad("its shape is impossibly large"))?;
    if bits.div_ceil(8) != end - begin {
        return Err(bad(&format!(
            "shape {shape:?} of {dtype} needs {} bytes, data_offsets give {}",
            bits.div_ceil(8),
            end - begin
        )));
    }
    Ok((begin, end, shape.iter().product()))
}

fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 8,
        "U16" | "I16" | "F16" | "BF16" => 16,
        "U32" | "I32" | "F32" => 32,
        "U64" | "I64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

fn malformed(message: impl Into<String>) -> Error {
    Error::MalformedFile {
        format: "safetensors",
        message: message.into(),
    }
}
