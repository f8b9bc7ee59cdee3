//! Array construction, inspection and read-back.

mod common;

use common::{arr, floats};
use perch_mlx::{Array, Dtype, Error};

#[test]
fn from_slice_keeps_shape_dtype_and_values() {
    let a = Array::from_slice(&[1i64, -2, 3, 4, 5, 6], &[3, 2]).unwrap();
    assert_eq!(a.shape(), vec![3, 2]);
    assert_eq!(a.ndim(), 2);
    assert_eq!(a.size(), 6);
    assert_eq!(a.nbytes(), 48);
    assert_eq!(a.dtype(), Dtype::Int64);
    assert_eq!(a.to_vec::<i64>().unwrap(), vec![1, -2, 3, 4, 5, 6]);
}

#[test]
fn every_element_type_round_trips() {
    assert_eq!(
        Array::from_slice(&[true, false], &[2])
            .unwrap()
            .to_vec::<bool>()
            .unwrap(),
        vec![true, false]
    );
    assert_eq!(
        Array::from_slice(&[255u8, 0], &[2])
            .unwrap()
            .to_vec::<u8>()
            .unwrap(),
        vec![255, 0]
    );
    assert_eq!(
        Array::from_slice(&[-7i8], &[1])
            .unwrap()
            .to_vec::<i8>()
            .unwrap(),
        vec![-7]
    );
    assert_eq!(
        Array::from_slice(&[65535u16], &[1])
            .unwrap()
            .to_vec::<u16>()
            .unwrap(),
        vec![65535]
    );
    assert_eq!(
        Array::from_slice(&[-300i16], &[1])
            .unwrap()
            .to_vec::<i16>()
            .unwrap(),
        vec![-300]
    );
    assert_eq!(
        Array::from_slice(&[u32::MAX], &[1])
            .unwrap()
            .to_vec::<u32>()
            .unwrap(),
        vec![u32::MAX]
    );
    assert_eq!(
        Array::from_slice(&[i32::MIN], &[1])
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![i32::MIN]
    );
    assert_eq!(
        Array::from_slice(&[u64::MAX], &[1])
            .unwrap()
            .to_vec::<u64>()
            .unwrap(),
        vec![u64::MAX]
    );
    assert_eq!(
        Array::from_slice(&[0.1f64], &[1])
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![0.1]
    );
}

#[test]
fn element_count_is_checked_before_mlx_sees_the_data() {
    let err = Array::from_slice(&[1.0f32, 2.0, 3.0], &[2, 2]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                len: 3,
                expected: 4,
                ..
            }
        ),
        "{err}"
    );
    let err = Array::from_slice(&[1.0f32; 4], &[2, 3]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ShapeMismatch {
                len: 4,
                expected: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(Array::from_slice(&[1.0f32], &[-1]).is_err());
}

#[test]
fn scalars_and_items() {
    let s = Array::scalar(2.5f32);
    assert_eq!(s.shape(), Vec::<i32>::new());
    assert_eq!(s.item::<f32>().unwrap(), 2.5);
    assert_eq!(Array::from(7i32).item::<i32>().unwrap(), 7);
    assert!(matches!(
        arr(&[1.0, 2.0], &[2]).item::<f32>(),
        Err(Error::NotScalar(2))
    ));
}

#[test]
fn reading_with_the_wrong_type_is_an_error() {
    let err = arr(&[1.0], &[1]).to_vec::<i32>().unwrap_err();
    assert!(
        matches!(
            err,
            Error::DtypeMismatch {
                requested: Dtype::Int32,
                actual: Dtype::Float32
            }
        ),
        "{err}"
    );
}

#[test]
fn filled_constructors() {
    assert_eq!(
        floats(&Array::zeros(&[2, 2], Dtype::Float32).unwrap()),
        vec![0.0; 4]
    );
    assert_eq!(
        Array::ones(&[3], Dtype::Int32)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![1; 3]
    );
    assert_eq!(
        floats(&Array::full(&[2], 1.5, Dtype::Float32).unwrap()),
        vec![1.5, 1.5]
    );
    assert_eq!(
        Array::full(&[2], 7.0, Dtype::Int64)
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        vec![7, 7]
    );
    assert_eq!(
        floats(&Array::arange(1.0, 2.0, 0.25, Dtype::Float32).unwrap()),
        vec![1.0, 1.25, 1.5, 1.75]
    );
    let h = Array::full(&[1], 0.5, Dtype::Float16).unwrap();
    assert_eq!(h.dtype(), Dtype::Float16);
    assert_eq!(floats(&h.astype(Dtype::Float32).unwrap()), vec![0.5]);
}

#[test]
fn reading_a_strided_view_gives_logical_order() {
    let a = Array::arange(0.0, 6.0, 1.0, Dtype::Float32)
        .unwrap()
        .reshape(&[2, 3])
        .unwrap();
    assert_eq!(
        floats(&a.transpose(&[]).unwrap()),
        vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(
        floats(&arr(&[1.0, 2.0], &[2]).broadcast_to(&[2, 2]).unwrap()),
        vec![1.0, 2.0, 1.0, 2.0]
    );
}

#[test]
fn clones_share_values_and_arrays_move_between_threads() {
    let a = arr(&[1.0, 2.0], &[2]);
    let b = a.clone();
    drop(a);
    let handle = std::thread::spawn(move || {
        b.multiply(&Array::from(3.0f32))
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
    });
    assert_eq!(handle.join().unwrap(), vec![3.0, 6.0]);
}

#[test]
fn debug_prints_values() {
    let text = format!("{:?}", Array::from_slice(&[1i32, 2], &[2]).unwrap());
    assert!(text.contains('1') && text.contains('2'), "{text}");
}

#[test]
fn eval_and_async_eval_compute_the_graph() {
    let a = arr(&[1.0, 2.0], &[2]).exp().unwrap();
    let b = a.add(&a).unwrap();
    perch_mlx::async_eval(&[&b]).unwrap();
    perch_mlx::eval(&[&a, &b]).unwrap();
    common::assert_close(&floats(&b), &[2.0 * 1f32.exp(), 2.0 * 2f32.exp()], 1e-5);
}
