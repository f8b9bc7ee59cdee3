//! Helpers shared by perch-mlx's integration tests: float comparison and locating the
//! real SmolLM2 test model.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use perch_mlx::Array;

/// Asserts two float slices agree element-wise within `tol`.
pub fn assert_close(actual: &[f32], expected: &[f32], tol: f32) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "lengths differ: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol,
            "element {i}: {a} vs {e} (tol {tol}); {actual:?} vs {expected:?}"
        );
    }
}

/// The elements of a float32 array.
pub fn floats(a: &Array) -> Vec<f32> {
    a.to_vec::<f32>().expect("float32 array")
}

/// A float32 array from values and a shape.
pub fn arr(values: &[f32], shape: &[i32]) -> Array {
    Array::from_slice(values, shape).expect("values fill shape")
}

/// The SmolLM2-135M-Instruct Q4_1 GGUF: `PERCH_TEST_MODEL`, else whatever
/// `scripts/fetch-test-model` prints (it downloads the model once into the cache).
pub fn test_model() -> PathBuf {
    if let Some(path) = std::env::var_os("PERCH_TEST_MODEL") {
        return PathBuf::from(path);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-test-model");
    let output = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run scripts/fetch-test-model");
    assert!(
        output.status.success(),
        "scripts/fetch-test-model failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    PathBuf::from(String::from_utf8(output.stdout).expect("utf-8 path").trim())
}
