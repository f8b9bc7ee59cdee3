//! Measures the host cost of building graph nodes through the binding (no evaluation):
//! `cargo run --release -p perch-mlx --example op-overhead`.

use std::time::Instant;

use perch_mlx::{Array, Dtype};

fn main() -> perch_mlx::Result<()> {
    let a = Array::ones(&[1, 1, 576], Dtype::Float32)?;
    let b = Array::ones(&[576], Dtype::Float32)?;
    a.eval()?;
    b.eval()?;
    let n = 20_000;
    let time =
        |label: &str, f: &mut dyn FnMut() -> perch_mlx::Result<()>| -> perch_mlx::Result<()> {
            let start = Instant::now();
            for _ in 0..n {
                f()?;
            }
            println!(
                "{label:28} {:.2} µs",
                start.elapsed().as_secs_f64() * 1e6 / n as f64
            );
            Ok(())
        };
    time("add (graph node)", &mut || a.add(&b).map(drop))?;
    time("reshape", &mut || a.reshape(&[1, 576]).map(drop))?;
    time("shape()", &mut || {
        std::hint::black_box(a.shape());
        Ok(())
    })?;
    time("dtype()", &mut || {
        std::hint::black_box(a.dtype());
        Ok(())
    })?;
    time("clone", &mut || {
        std::hint::black_box(a.clone());
        Ok(())
    })?;
    time("scalar", &mut || {
        std::hint::black_box(Array::scalar(1.0f32));
        Ok(())
    })?;
    time("rms_norm", &mut || {
        perch_mlx::fast::rms_norm(&a, Some(&b), 1e-5).map(drop)
    })?;
    Ok(())
}
