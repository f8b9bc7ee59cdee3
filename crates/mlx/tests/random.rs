//! Keyed random numbers: reproducible from a seed, and distributed as asked.

mod common;

use common::{arr, floats};
use perch_mlx::{random, Dtype};

#[test]
fn same_key_same_numbers_other_key_other_numbers() {
    let a = random::uniform(0.0, 1.0, &[8], Dtype::Float32, &random::key(42).unwrap()).unwrap();
    let b = random::uniform(0.0, 1.0, &[8], Dtype::Float32, &random::key(42).unwrap()).unwrap();
    let c = random::uniform(0.0, 1.0, &[8], Dtype::Float32, &random::key(43).unwrap()).unwrap();
    assert_eq!(floats(&a), floats(&b));
    assert_ne!(floats(&a), floats(&c));
}

#[test]
fn uniform_stays_in_range() {
    let u = floats(
        &random::uniform(-2.0, 3.0, &[1000], Dtype::Float32, &random::key(0).unwrap()).unwrap(),
    );
    assert!(u.iter().all(|&x| (-2.0..3.0).contains(&x)));
    let mean = u.iter().sum::<f32>() / u.len() as f32;
    assert!((mean - 0.5).abs() < 0.2, "mean {mean}");
}

#[test]
fn split_keys_are_independent() {
    let keys = random::split(&random::key(5).unwrap(), 3).unwrap();
    assert_eq!(keys.shape(), vec![3, 2]);
    let k: Vec<u32> = keys.to_vec().unwrap();
    assert_ne!(k[0..2], k[2..4]);
}

#[test]
fn normal_has_unit_spread() {
    let n = floats(&random::normal(&[4000], Dtype::Float32, &random::key(9).unwrap()).unwrap());
    let mean = n.iter().sum::<f32>() / n.len() as f32;
    let var = n.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n.len() as f32;
    assert!(
        mean.abs() < 0.1 && (var - 1.0).abs() < 0.1,
        "mean {mean}, var {var}"
    );
}

#[test]
fn categorical_follows_the_logits() {
    let certain = arr(&[f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY], &[1, 3]);
    for seed in 0..5 {
        let pick = random::categorical(&certain, -1, &random::key(seed).unwrap()).unwrap();
        assert_eq!(pick.to_vec::<u32>().unwrap(), vec![1]);
    }
    let row = arr(&[0.25f32.ln(), 0.75f32.ln()], &[1, 2]);
    let rows = row.broadcast_to(&[2000, 2]).unwrap();
    let picks = random::categorical(&rows, -1, &random::key(3).unwrap()).unwrap();
    let ones = picks
        .astype(Dtype::Float32)
        .unwrap()
        .mean(&[], false)
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!((ones - 0.75).abs() < 0.04, "fraction of 1s: {ones}");
    let again = random::categorical(&rows, -1, &random::key(3).unwrap()).unwrap();
    assert_eq!(
        picks.to_vec::<u32>().unwrap(),
        again.to_vec::<u32>().unwrap()
    );
}

#[test]
fn gumbel_noise_added_to_logits_draws_from_them() {
    // argmax(logits + Gumbel noise) is a draw from softmax(logits).
    let row = arr(&[0.25f32.ln(), 0.75f32.ln()], &[1, 2]);
    let rows = row.broadcast_to(&[2000, 2]).unwrap();
    let draw = |seed| {
        let noise =
            random::gumbel(&[2000, 2], Dtype::Float32, &random::key(seed).unwrap()).unwrap();
        noise.add(&rows).unwrap().argmax(-1, false).unwrap()
    };
    let ones = draw(5)
        .astype(Dtype::Float32)
        .unwrap()
        .mean(&[], false)
        .unwrap()
        .item::<f32>()
        .unwrap();
    assert!((ones - 0.75).abs() < 0.04, "fraction of 1s: {ones}");
    assert_eq!(
        draw(5).to_vec::<u32>().unwrap(),
        draw(5).to_vec::<u32>().unwrap(),
        "the same key draws the same"
    );
    assert_ne!(
        draw(5).to_vec::<u32>().unwrap(),
        draw(6).to_vec::<u32>().unwrap()
    );
}
