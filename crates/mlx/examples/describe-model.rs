//! Opens a GGUF model through MLX, describes it, and times its largest quantized matmul.
//!
//! `cargo run --release -p perch-mlx --example describe-model -- MODEL.gguf`
//!
//! Until the engine exists this is Perch's end-to-end smoke test of the binding on real
//! weights: metadata, quantized tensors kept packed, memory accounting and kernel speed.

use std::path::PathBuf;
use std::time::Instant;

use perch_mlx::io::Gguf;
use perch_mlx::{memory, random, Array, Dtype, Quantized};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: describe-model MODEL.gguf (scripts/fetch-test-model prints one)")?
        .into();

    let start = Instant::now();
    let gguf = Gguf::open(&path)?;
    let names = gguf.tensor_names();
    let tensors: Vec<Array> = names
        .iter()
        .map(|n| gguf.tensor(n))
        .collect::<Result<_, _>>()?;
    perch_mlx::eval(&tensors.iter().collect::<Vec<_>>())?;
    let load = start.elapsed();

    let arch = gguf
        .metadata_string("general.architecture")?
        .unwrap_or_default();
    let name = gguf.metadata_string("general.name")?.unwrap_or_default();
    let layers = gguf
        .metadata_int(&format!("{arch}.block_count"))?
        .unwrap_or(0);
    let width = gguf
        .metadata_int(&format!("{arch}.embedding_length"))?
        .unwrap_or(0);
    let bytes: usize = tensors.iter().map(Array::nbytes).sum();
    println!("model        {name} ({arch}), {layers} layers, width {width}");
    println!(
        "MLX          {} on {:?}",
        perch_mlx::version(),
        perch_mlx::default_device()
    );
    println!(
        "tensors      {} entries, {:.1} MB",
        names.len(),
        bytes as f64 / 1e6
    );
    println!(
        "load         {:.1} ms (read + evaluate every tensor)",
        load.as_secs_f64() * 1e3
    );
    println!(
        "MLX memory   active {:.1} MB, peak {:.1} MB",
        mb(memory::active()),
        mb(memory::peak())
    );

    // The widest projection of layer 0, multiplied as decode does: one row at a time.
    let layer = "blk.0.ffn_up";
    let packed = Quantized {
        weight: gguf.tensor(&format!("{layer}.weight"))?,
        scales: gguf.tensor(&format!("{layer}.scales"))?,
        biases: gguf.tensor(&format!("{layer}.biases"))?,
        group_size: 32,
        bits: 4,
    };
    let x = random::normal(&[1, width as i32], Dtype::Float32, &random::key(0)?)?;
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        packed.matmul(&x, true)?.eval()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{layer}     {:?} 4-bit matmul, 1 row: median {:.3} ms over {} runs",
        packed.weight.shape(),
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1e6
}
