//! Helpers shared by perch-mlx's integration tests: float comparison and locating the
//! real SmolLM2 test model (from perch-test-support).
#![allow(dead_code, unused_imports)]

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

pub use perch_test_support::test_model;
