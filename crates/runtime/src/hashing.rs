//! Hashes of model files: sha256 (what the store records and Hugging Face gives for LFS
//! files) and Git's blob sha1 (what the hub gives for small files kept in Git).

use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::manifest::hex;
use crate::StoreError;

/// The sha256 of the file at `path`, in lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String, StoreError> {
    let mut hasher = Sha256::new();
    read_chunks(path, |chunk| hasher.update(chunk))?;
    Ok(hex(&hasher.finalize()))
}

/// Git's object id of the file at `path` as a blob: sha1 of `blob LEN\0` and the bytes.
pub fn git_blob_sha1(path: &Path) -> Result<String, StoreError> {
    let len = std::fs::metadata(path)
        .map_err(|e| StoreError::io(path, e))?
        .len();
    let mut hasher = Sha1::new();
    hasher.update(format!("blob {len}\0"));
    read_chunks(path, |chunk| hasher.update(chunk))?;
    Ok(hex(&hasher.finalize()))
}

fn read_chunks(path: &Path, mut each: impl FnMut(&[u8])) -> Result<(), StoreError> {
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| StoreError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        each(&buffer[..n]);
    }
}
