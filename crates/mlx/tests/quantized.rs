//! Affine quantization: round trips, and quantized matmul against dequantize + matmul.

mod common;

use common::{assert_close, floats};
use perch_mlx::{random, Array, Dtype};

#[test]
fn quantize_packs_and_dequantize_restores() {
    let w = Array::arange(-64.0, 64.0, 1.0, Dtype::Float32)
        .unwrap()
        .reshape(&[2, 64])
        .unwrap();
    let q = w.quantize(64, 4).unwrap();
    assert_eq!(q.weight.dtype(), Dtype::Uint32);
    assert_eq!(q.weight.shape(), vec![2, 8]);
    assert_eq!(q.scales.shape(), vec![2, 1]);
    assert_eq!(q.biases.shape(), vec![2, 1]);
    // Row 0 spans [-64, -1] in 16 levels, a step of 63/15 = 4.2. Rounding costs up to half
    // a step; MLX also nudges the scale so that the row's extreme lands on a level exactly,
    // which can add a few percent.
    let back = floats(&q.dequantize().unwrap());
    let orig = floats(&w);
    let worst = back
        .iter()
        .zip(&orig)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst <= 0.55 * 4.2, "worst error {worst}");
    assert!(worst > 0.0, "4 bits cannot hold 64 distinct values exactly");
    assert!(
        w.quantize(48, 4).is_err(),
        "group size must divide and be supported"
    );
}

#[test]
fn quantized_matmul_matches_dequantized_matmul() {
    let key = random::key(1).unwrap();
    let (k0, k1) = random::split_once(&key).unwrap();
    let w = random::normal(&[96, 128], Dtype::Float32, &k0).unwrap();
    let x = random::normal(&[3, 128], Dtype::Float32, &k1).unwrap();
    for bits in [4, 8] {
        let q = w.quantize(32, bits).unwrap();
        let fused = q.matmul(&x, true).unwrap();
        let reference = x
            .matmul(&q.dequantize().unwrap().transpose(&[]).unwrap())
            .unwrap();
        assert_eq!(fused.shape(), vec![3, 96]);
        assert_close(&floats(&fused), &floats(&reference), 1e-3);
    }
}
