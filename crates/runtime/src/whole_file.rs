//! Writing a file whole: the bytes go to a temporary file beside it, reach the disk, and
//! are renamed over it, and the rename reaches the disk with the folder. A reader, or a
//! crash, sees the old file or the new one, never part of one.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` whole, creating its folder if needed; a new file gets
/// permission bits `mode` (on Unix) from the moment it exists.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = dir.join(format!(".{name}.partial"));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(dir)?.sync_all()
}
