//! mlx::core::fast kernels against hand-computed values.

mod common;

use common::{arr, assert_close, floats};
use perch_mlx::fast::{self, AttentionMask, RopeFrequencies, RopeOffset};
use perch_mlx::{Array, Dtype};

#[test]
fn rms_norm_with_weight() {
    let x = arr(&[1.0, 2.0, 3.0, 4.0], &[1, 4]);
    let w = arr(&[1.0, 1.0, 2.0, 2.0], &[4]);
    let r = 7.5f32.sqrt(); // mean of squares is 30 / 4
    assert_close(
        &floats(&fast::rms_norm(&x, Some(&w), 0.0).unwrap()),
        &[1.0 / r, 2.0 / r, 6.0 / r, 8.0 / r],
        1e-6,
    );
    assert!(
        fast::rms_norm(&x, Some(&arr(&[1.0; 3], &[3])), 1e-5).is_err(),
        "weight of the wrong size"
    );
}

#[test]
fn layer_norm_with_weight_and_bias() {
    let x = arr(&[1.0, 2.0, 3.0], &[1, 3]);
    let w = arr(&[2.0; 3], &[3]);
    let b = arr(&[1.0; 3], &[3]);
    let z = 1.5f32.sqrt(); // (x - 2) / sqrt(2/3)
    let expected = [1.0 - 2.0 * z, 1.0, 1.0 + 2.0 * z];
    assert_close(
        &floats(&fast::layer_norm(&x, Some(&w), Some(&b), 0.0).unwrap()),
        &expected,
        1e-5,
    );
    assert_close(
        &floats(&fast::layer_norm(&x, None, None, 0.0).unwrap()),
        &[-z, 0.0, z],
        1e-5,
    );
}

/// Expected RoPE of an all-ones row of 4 features at position `p` with base 10000:
/// frequencies 1 and 0.01.
fn rope_of_ones(p: f32, traditional: bool) -> Vec<f32> {
    let (c0, s0, c1, s1) = (p.cos(), p.sin(), (0.01 * p).cos(), (0.01 * p).sin());
    if traditional {
        vec![c0 - s0, c0 + s0, c1 - s1, c1 + s1]
    } else {
        vec![c0 - s0, c1 - s1, c0 + s0, c1 + s1]
    }
}

#[test]
fn rope_rotates_halves_or_pairs() {
    let x = Array::ones(&[1, 1, 2, 4], Dtype::Float32).unwrap();
    for traditional in [false, true] {
        let y = fast::rope(
            &x,
            4,
            traditional,
            RopeFrequencies::Base(10000.0),
            1.0,
            RopeOffset::Uniform(1),
        )
        .unwrap();
        let expected = [
            rope_of_ones(1.0, traditional),
            rope_of_ones(2.0, traditional),
        ]
        .concat();
        assert_close(&floats(&y), &expected, 1e-5);
    }
    let scaled = fast::rope(
        &x,
        4,
        false,
        RopeFrequencies::Base(10000.0),
        0.5,
        RopeOffset::Uniform(2),
    )
    .unwrap();
    assert_close(
        &floats(&scaled),
        &[rope_of_ones(1.0, false), rope_of_ones(1.5, false)].concat(),
        1e-5,
    );
}

#[test]
fn rope_with_explicit_frequencies_matches_base() {
    // Frequencies are given as periods: base^(2i/dims) = [1, 100] for base 10000, dims 4.
    let x = Array::ones(&[1, 1, 3, 4], Dtype::Float32).unwrap();
    let periods = arr(&[1.0, 100.0], &[2]);
    let a = fast::rope(
        &x,
        4,
        false,
        RopeFrequencies::Base(10000.0),
        1.0,
        RopeOffset::Uniform(5),
    )
    .unwrap();
    let b = fast::rope(
        &x,
        4,
        false,
        RopeFrequencies::Freqs(&periods),
        1.0,
        RopeOffset::Uniform(5),
    )
    .unwrap();
    assert_close(&floats(&a), &floats(&b), 1e-6);
}

#[test]
fn rope_with_an_offset_per_batch_row() {
    let x = Array::ones(&[2, 1, 1, 4], Dtype::Float32).unwrap();
    let offsets = Array::from_slice(&[3i32, 7], &[2]).unwrap();
    let y = fast::rope(
        &x,
        4,
        false,
        RopeFrequencies::Base(10000.0),
        1.0,
        RopeOffset::PerRow(&offsets),
    )
    .unwrap();
    assert_close(
        &floats(&y),
        &[rope_of_ones(3.0, false), rope_of_ones(7.0, false)].concat(),
        1e-5,
    );
}

fn qkv() -> (Array, Array, Array) {
    let q = arr(&[1.0, 0.0, 0.0, 1.0], &[1, 1, 2, 2]);
    let k = q.clone();
    let v = arr(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    (q, k, v)
}

// Scores are the identity: softmax([1, 0]) = [a, b] with a = e / (e + 1).
fn weights() -> (f32, f32) {
    let e = std::f32::consts::E;
    (e / (e + 1.0), 1.0 / (e + 1.0))
}

#[test]
fn attention_without_mask() {
    let (q, k, v) = qkv();
    let (a, b) = weights();
    let out = fast::scaled_dot_product_attention(&q, &k, &v, 1.0, AttentionMask::None).unwrap();
    assert_close(
        &floats(&out),
        &[
            a + 3.0 * b,
            2.0 * a + 4.0 * b,
            b + 3.0 * a,
            2.0 * b + 4.0 * a,
        ],
        1e-5,
    );
}

#[test]
fn attention_with_causal_boolean_and_additive_masks() {
    let (q, k, v) = qkv();
    let (a, b) = weights();
    let expected = [1.0, 2.0, b + 3.0 * a, 2.0 * b + 4.0 * a];
    let causal =
        fast::scaled_dot_product_attention(&q, &k, &v, 1.0, AttentionMask::Causal).unwrap();
    assert_close(&floats(&causal), &expected, 1e-5);
    let allowed = Array::from_slice(&[true, false, true, true], &[2, 2]).unwrap();
    let boolean =
        fast::scaled_dot_product_attention(&q, &k, &v, 1.0, AttentionMask::Array(&allowed))
            .unwrap();
    assert_close(&floats(&boolean), &expected, 1e-5);
    let additive = arr(&[0.0, f32::NEG_INFINITY, 0.0, 0.0], &[2, 2]);
    let added =
        fast::scaled_dot_product_attention(&q, &k, &v, 1.0, AttentionMask::Array(&additive))
            .unwrap();
    assert_close(&floats(&added), &expected, 1e-5);
}

#[test]
fn grouped_query_attention_shares_kv_heads() {
    let (q, k, v) = qkv();
    let q2 = Array::concatenate(&[&q, &q.multiply(&Array::from(2.0f32)).unwrap()], 1).unwrap();
    let grouped =
        fast::scaled_dot_product_attention(&q2, &k, &v, 0.5, AttentionMask::None).unwrap();
    assert_eq!(grouped.shape(), vec![1, 2, 2, 2]);
    let k2 = Array::concatenate(&[&k, &k], 1).unwrap();
    let v2 = Array::concatenate(&[&v, &v], 1).unwrap();
    let repeated =
        fast::scaled_dot_product_attention(&q2, &k2, &v2, 0.5, AttentionMask::None).unwrap();
    assert_close(&floats(&grouped), &floats(&repeated), 1e-6);
    let three_heads = Array::concatenate(&[&q, &q, &q], 1).unwrap();
    assert!(
        fast::scaled_dot_product_attention(&three_heads, &k2, &v2, 1.0, AttentionMask::None)
            .is_err()
    );
}
