//! Shape changes, indexing, slicing and joining.

mod common;

use common::{arr, floats};
use perch_mlx::{Array, Dtype, Error};

fn iota(n: i32, shape: &[i32]) -> Array {
    Array::arange(0.0, f64::from(n), 1.0, Dtype::Float32)
        .unwrap()
        .reshape(shape)
        .unwrap()
}

#[test]
fn reshape_transpose_squeeze_expand() {
    let a = iota(6, &[2, 3]);
    assert_eq!(a.reshape(&[3, -1]).unwrap().shape(), vec![3, 2]);
    let err = a.reshape(&[4, 2]).unwrap_err();
    assert!(matches!(err, Error::Mlx(_)), "{err:?}");
    let t = iota(24, &[2, 3, 4]).transpose(&[2, 0, 1]).unwrap();
    assert_eq!(t.shape(), vec![4, 2, 3]);
    assert_eq!(
        floats(&t.slice(&[1, 0, 0], &[2, 1, 3], &[1, 1, 1]).unwrap()),
        vec![1.0, 5.0, 9.0]
    );
    assert_eq!(a.expand_dims(&[0, 3]).unwrap().shape(), vec![1, 2, 3, 1]);
    assert_eq!(
        iota(3, &[1, 3, 1]).squeeze(&[0, 2]).unwrap().shape(),
        vec![3]
    );
    assert!(a.squeeze(&[0]).is_err(), "axis 0 has size 2");
    assert_eq!(
        floats(&arr(&[1.0, 2.0], &[2, 1]).broadcast_to(&[2, 2]).unwrap()),
        vec![1.0, 1.0, 2.0, 2.0]
    );
    assert!(arr(&[1.0, 2.0], &[2]).broadcast_to(&[3]).is_err());
}

#[test]
fn triangles() {
    let ones = Array::ones(&[3, 3], Dtype::Float32).unwrap();
    assert_eq!(
        floats(&ones.tril(0).unwrap()),
        vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    );
    assert_eq!(
        floats(&ones.triu(1).unwrap()),
        vec![0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    );
}

#[test]
fn take_rows_like_an_embedding() {
    let table = iota(6, &[3, 2]);
    let ids = Array::from_slice(&[2u32, 0, 2], &[1, 3]).unwrap();
    let rows = table.take(&ids, 0).unwrap();
    assert_eq!(rows.shape(), vec![1, 3, 2]);
    assert_eq!(floats(&rows), vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]);
}

#[test]
fn take_along_axis_gathers_per_row() {
    let logits = arr(&[0.1, 0.2, 0.3, 1.0, 2.0, 3.0], &[2, 3]);
    let picks = Array::from_slice(&[2i32, 0], &[2, 1]).unwrap();
    assert_eq!(
        floats(&logits.take_along_axis(&picks, 1).unwrap()),
        vec![0.3, 1.0]
    );
}

#[test]
fn slices_and_slice_updates() {
    let a = iota(12, &[3, 4]);
    assert_eq!(
        floats(&a.slice(&[0, 1], &[3, 4], &[2, 2]).unwrap()),
        vec![1.0, 3.0, 9.0, 11.0]
    );
    let cache = Array::zeros(&[2, 4], Dtype::Float32).unwrap();
    let step = arr(&[7.0, 8.0], &[2, 1]);
    let updated = cache
        .slice_update(&step, &[0, 2], &[2, 3], &[1, 1])
        .unwrap();
    assert_eq!(
        floats(&updated),
        vec![0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 8.0, 0.0]
    );
    assert!(cache
        .slice_update(&arr(&[1.0; 3], &[3, 1]), &[0, 0], &[2, 1], &[1, 1])
        .is_err());
}

#[test]
fn concatenate_stack_split() {
    let a = arr(&[1.0, 2.0], &[1, 2]);
    let b = arr(&[3.0, 4.0], &[1, 2]);
    let rows = Array::concatenate(&[&a, &b], 0).unwrap();
    assert_eq!(rows.shape(), vec![2, 2]);
    let cols = Array::concatenate(&[&a, &b], 1).unwrap();
    assert_eq!(floats(&cols), vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(Array::stack(&[&a, &b], 0).unwrap().shape(), vec![2, 1, 2]);
    assert!(Array::concatenate(&[&a, &arr(&[1.0; 3], &[1, 3])], 0).is_err());

    let parts = iota(6, &[6]).split(3, 0).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(floats(&parts[1]), vec![2.0, 3.0]);
    assert!(
        iota(6, &[6]).split(4, 0).is_err(),
        "6 does not split into 4 equal parts"
    );
    let uneven = iota(6, &[6]).split_at(&[1, 4], 0).unwrap();
    let sizes: Vec<_> = uneven.iter().map(|p| p.size()).collect();
    assert_eq!(sizes, vec![1, 3, 2]);
}
