//! Any bytes as a safetensors file: the check before MLX's loader must answer, never
//! panic or allocate without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = perch_mlx::io::check_safetensors(data, data.len() as u64);
});
