//! `perch import FILE.gguf DIR`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

/// Arguments of `perch import`.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The GGUF file to convert.
    gguf: PathBuf,
    /// The MLX directory to create (must not exist, or be empty).
    dir: PathBuf,
}

/// Runs the import and reports what it wrote.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    eprintln!("importing {} …", args.gguf.display());
    let summary = perch_engine::import::import_gguf(&args.gguf, &args.dir).with_context(|| {
        format!(
            "importing {} into {}",
            args.gguf.display(),
            args.dir.display()
        )
    })?;
    println!(
        "wrote {} tensors ({:.1} MB in {} safetensors file{}) and config, tokenizer and template to {} in {:.1} s",
        summary.tensors,
        summary.bytes as f64 / 1e6,
        summary.shards,
        if summary.shards == 1 { "" } else { "s" },
        args.dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
