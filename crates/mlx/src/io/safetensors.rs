//! Safetensors files: a map of named arrays plus string metadata.

use std::collections::HashMap;
use std::path::Path;

use crate::array::wrap;
use crate::ffi::bridge as ffi;
use crate::{Array, Result};

/// The contents of a safetensors file.
#[derive(Clone, Debug, Default)]
pub struct Safetensors {
    /// Arrays by tensor name.
    pub tensors: HashMap<String, Array>,
    /// The header's `__metadata__` entries.
    pub metadata: HashMap<String, String>,
}

/// Reads a safetensors file, after checking its header ([`super::check_safetensors`]).
/// The arrays are loaded lazily, on first evaluation.
///
/// ```
/// use perch_mlx::{io, Array};
/// let dir = std::env::temp_dir().join(format!("perch-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("w.safetensors");
/// let mut file = io::Safetensors::default();
/// file.tensors.insert("w".into(), Array::from_slice(&[1.0f32, 2.0], &[2])?);
/// file.metadata.insert("format".into(), "mlx".into());
/// io::save_safetensors(&path, &file)?;
/// let back = io::load_safetensors(&path)?;
/// assert_eq!(back.tensors["w"].to_vec::<f32>()?, vec![1.0, 2.0]);
/// assert_eq!(back.metadata["format"], "mlx");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), perch_mlx::Error>(())
/// ```
pub fn load_safetensors(path: &Path) -> Result<Safetensors> {
    super::check_file(path, super::check_safetensors)?;
    let map = ffi::load_safetensors(super::path_text(path)?)?;
    let tensors = ffi::tensor_map_names(&map)
        .into_iter()
        .map(|name| Ok((name.clone(), wrap(ffi::tensor_map_get(&map, &name))?)))
        .collect::<Result<_>>()?;
    let flat = ffi::tensor_map_metadata(&map);
    let metadata = flat
        .chunks_exact(2)
        .map(|kv| (kv[0].clone(), kv[1].clone()))
        .collect();
    Ok(Safetensors { tensors, metadata })
}

/// Writes `file` as safetensors (evaluating its arrays).
pub fn save_safetensors(path: &Path, file: &Safetensors) -> Result<()> {
    let mut map = ffi::tensor_map_new();
    for (name, array) in &file.tensors {
        ffi::tensor_map_insert(map.pin_mut(), name, array.raw());
    }
    for (key, value) in &file.metadata {
        ffi::tensor_map_set_metadata(map.pin_mut(), key, value);
    }
    Ok(ffi::save_safetensors(super::path_text(path)?, &map)?)
}
