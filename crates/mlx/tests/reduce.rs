//! Reductions, softmax, arg-reductions and sorting against hand-computed values.

mod common;

use common::{arr, assert_close, floats};

#[test]
fn sums_means_and_extremes() {
    let a = arr(&[1.0, 5.0, 3.0, 2.0, 4.0, 6.0], &[2, 3]);
    assert_eq!(floats(&a.sum(&[], false).unwrap()), vec![21.0]);
    assert_eq!(floats(&a.sum(&[0], false).unwrap()), vec![3.0, 9.0, 9.0]);
    assert_eq!(a.sum(&[1], true).unwrap().shape(), vec![2, 1]);
    assert_eq!(floats(&a.mean(&[1], false).unwrap()), vec![3.0, 4.0]);
    assert_eq!(floats(&a.max(&[1], false).unwrap()), vec![5.0, 6.0]);
    assert_eq!(floats(&a.min(&[0], false).unwrap()), vec![1.0, 4.0, 3.0]);
    assert!(a.sum(&[2], false).is_err(), "axis 2 of a 2-D array");
}

#[test]
fn softmax_and_logsumexp() {
    let x = arr(&[0.0, 1.0, 2.0], &[1, 3]);
    let denom = 1.0 + 1f32.exp() + 2f32.exp();
    let expected = [1.0 / denom, 1f32.exp() / denom, 2f32.exp() / denom];
    assert_close(&floats(&x.softmax(&[-1], false).unwrap()), &expected, 1e-6);
    assert_close(&floats(&x.softmax(&[-1], true).unwrap()), &expected, 1e-6);
    assert_close(
        &floats(&x.logsumexp(&[-1], false).unwrap()),
        &[denom.ln()],
        1e-6,
    );
    // Stable for large inputs.
    let big = arr(&[1000.0, 1000.0], &[2]);
    assert_close(
        &floats(&big.logsumexp(&[], false).unwrap()),
        &[1000.0 + 2f32.ln()],
        1e-3,
    );
}

#[test]
fn arg_reductions() {
    let a = arr(&[3.0, 9.0, 1.0, 7.0, 2.0, 8.0], &[2, 3]);
    assert_eq!(
        a.argmax(1, false).unwrap().to_vec::<u32>().unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        a.argmin(1, false).unwrap().to_vec::<u32>().unwrap(),
        vec![2, 1]
    );
    assert_eq!(a.argmax(0, true).unwrap().shape(), vec![1, 3]);
}

#[test]
fn sorting_and_selection() {
    let a = arr(&[0.3, 0.1, 0.9, 0.5, 0.7], &[5]);
    assert_eq!(
        a.argsort(0).unwrap().to_vec::<u32>().unwrap(),
        vec![1, 0, 3, 4, 2]
    );
    let mut top: Vec<f32> = floats(&a.topk(2, 0).unwrap());
    top.sort_by(f32::total_cmp);
    assert_eq!(top, vec![0.7, 0.9]);
    // After partitioning around kth = 2, positions 0..2 hold the two smallest.
    let part = a.argpartition(2, 0).unwrap().to_vec::<u32>().unwrap();
    let mut smallest = part[..2].to_vec();
    smallest.sort();
    assert_eq!(smallest, vec![0, 1]);
    assert_eq!(part[2], 3);
}

#[test]
fn cumulative_sums() {
    let a = arr(&[1.0, 2.0, 3.0, 4.0], &[4]);
    assert_eq!(
        floats(&a.cumsum(0, false, true).unwrap()),
        vec![1.0, 3.0, 6.0, 10.0]
    );
    assert_eq!(
        floats(&a.cumsum(0, false, false).unwrap()),
        vec![0.0, 1.0, 3.0, 6.0]
    );
    assert_eq!(
        floats(&a.cumsum(0, true, true).unwrap()),
        vec![10.0, 9.0, 7.0, 4.0]
    );
}
