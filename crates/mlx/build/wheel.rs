//! Fetching and unpacking the official MLX wheel into a cache outside the source tree.
//!
//! The wheel is downloaded with `python3 -m pip download` (so it honours the user's pip
//! configuration and index mirrors) and unzipped with Python's `zipfile`, keyed by MLX
//! version and variant so that switching variant never mixes files.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The MLX release Perch is built and tested against.
pub const MLX_VERSION: &str = "0.32.4";

/// Which build of libmlx to link.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Variant {
    /// `mlx-metal`: macOS on Apple Silicon.
    Metal,
    /// `mlx-cpu`: Linux, CPU only.
    Cpu,
    /// `mlx-cuda-12`: Linux with NVIDIA GPUs, chosen by `PERCH_MLX=cuda`.
    Cuda,
}

impl Variant {
    /// The variant for the target being built, honouring `PERCH_MLX=cuda`.
    pub fn for_target() -> Variant {
        let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
        if os == "macos" {
            return Variant::Metal;
        }
        match env::var("PERCH_MLX").as_deref() {
            Ok("cuda") => Variant::Cuda,
            _ => Variant::Cpu,
        }
    }

    /// The PyPI package that ships this variant's libmlx.
    pub fn package(self) -> &'static str {
        match self {
            Variant::Metal => "mlx-metal",
            Variant::Cpu => "mlx-cpu",
            Variant::Cuda => "mlx-cuda-12",
        }
    }
}

/// Returns the unpacked `mlx` folder (holding `include/` and `lib/`), downloading and
/// unzipping the wheel first if the cache does not have it yet.
pub fn ensure_unpacked(variant: Variant) -> Result<PathBuf, String> {
    let root = cache_root()?.join(format!("{MLX_VERSION}-{}", variant.package()));
    let mlx_dir = root.join("mlx");
    if root.join(".complete").exists() {
        return Ok(mlx_dir);
    }
    let staging = root.with_extension(format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| format!("creating {}: {e}", staging.display()))?;
    let wheel = download(variant, &staging)?;
    // The wheel's `mlx_*.libs/` (BLAS, LAPACK) must stay two folders above `mlx/lib/`:
    // libmlx finds them through the relative rpath `$ORIGIN/../../mlx_*.libs`.
    run(Command::new(python())
        .args(["-m", "zipfile", "-e"])
        .arg(&wheel)
        .arg(&staging))?;
    std::fs::remove_file(&wheel).map_err(|e| format!("removing {}: {e}", wheel.display()))?;
    std::fs::write(staging.join(".complete"), MLX_VERSION).map_err(|e| e.to_string())?;
    match std::fs::rename(&staging, &root) {
        Ok(()) => {}
        // Another build unpacked it concurrently; theirs is as good as ours.
        Err(_) if root.join(".complete").exists() => {
            let _ = std::fs::remove_dir_all(&staging);
        }
        Err(e) => return Err(format!("moving {} into place: {e}", staging.display())),
    }
    Ok(mlx_dir)
}

fn cache_root() -> Result<PathBuf, String> {
    if let Some(dir) = env::var_os("PERCH_MLX_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    let home = env::var_os("HOME").ok_or("HOME is not set; set PERCH_MLX_CACHE or MLX_DIR")?;
    let home = PathBuf::from(home);
    let base = match env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None if cfg!(target_os = "macos") => home.join("Library/Caches"),
        None => home.join(".cache"),
    };
    Ok(base.join("perch").join("mlx"))
}

fn download(variant: Variant, dest: &Path) -> Result<PathBuf, String> {
    let spec = format!("{}=={MLX_VERSION}", variant.package());
    run(Command::new(python())
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--dest",
        ])
        .arg(dest)
        .arg(&spec))?;
    std::fs::read_dir(dest)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .ok_or_else(|| format!("pip reported success but left no wheel for {spec}"))
}

fn python() -> String {
    env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .output()
        .map_err(|e| format!("could not run {shown}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
