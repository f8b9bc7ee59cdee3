//! Element-wise ops against hand-computed values, and shape errors.

mod common;

use common::{arr, assert_close, floats};
use perch_mlx::{Array, Dtype, Error};

#[test]
fn arithmetic_broadcasts() {
    let a = arr(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let row = arr(&[10.0, 20.0], &[2]);
    let col = arr(&[1.0, 2.0], &[2, 1]);
    assert_eq!(floats(&a.add(&row).unwrap()), vec![11.0, 22.0, 13.0, 24.0]);
    assert_eq!(floats(&a.subtract(&col).unwrap()), vec![0.0, 1.0, 1.0, 2.0]);
    assert_eq!(
        floats(&a.multiply(&row).unwrap()),
        vec![10.0, 40.0, 30.0, 80.0]
    );
    assert_eq!(floats(&a.divide(&col).unwrap()), vec![1.0, 2.0, 1.5, 2.0]);
    assert_eq!(
        floats(&a.power(&Array::from(2.0f32)).unwrap()),
        vec![1.0, 4.0, 9.0, 16.0]
    );
    assert_eq!(
        floats(&a.maximum(&Array::from(2.5f32)).unwrap()),
        vec![2.5, 2.5, 3.0, 4.0]
    );
    assert_eq!(
        floats(&a.minimum(&Array::from(2.5f32)).unwrap()),
        vec![1.0, 2.0, 2.5, 2.5]
    );
    assert_eq!(floats(&a.negative().unwrap()), vec![-1.0, -2.0, -3.0, -4.0]);
}

#[test]
fn incompatible_shapes_are_errors_with_mlxs_message() {
    let err = arr(&[1.0, 2.0, 3.0], &[3])
        .add(&arr(&[1.0, 2.0], &[2]))
        .unwrap_err();
    let Error::Mlx(message) = &err else {
        panic!("expected an MLX error, got {err:?}")
    };
    assert!(message.contains("broadcast"), "{message}");
    assert!(arr(&[1.0; 6], &[2, 3])
        .matmul(&arr(&[1.0; 6], &[2, 3]))
        .is_err());
}

#[test]
fn comparisons_give_booleans() {
    let a = arr(&[1.0, 2.0, 3.0], &[3]);
    let two = Array::from(2.0f32);
    assert_eq!(
        a.eq(&two).unwrap().to_vec::<bool>().unwrap(),
        vec![false, true, false]
    );
    assert_eq!(
        a.ne(&two).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, true]
    );
    assert_eq!(
        a.lt(&two).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, false]
    );
    assert_eq!(
        a.le(&two).unwrap().to_vec::<bool>().unwrap(),
        vec![true, true, false]
    );
    assert_eq!(
        a.gt(&two).unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, true]
    );
    assert_eq!(
        a.ge(&two).unwrap().to_vec::<bool>().unwrap(),
        vec![false, true, true]
    );
    let t = Array::from_slice(&[true, true, false], &[3]).unwrap();
    let u = Array::from_slice(&[true, false, false], &[3]).unwrap();
    assert_eq!(
        t.logical_and(&u).unwrap().to_vec::<bool>().unwrap(),
        vec![true, false, false]
    );
    assert_eq!(
        t.logical_or(&u).unwrap().to_vec::<bool>().unwrap(),
        vec![true, true, false]
    );
    assert_eq!(
        t.logical_not().unwrap().to_vec::<bool>().unwrap(),
        vec![false, false, true]
    );
}

#[test]
fn math_functions() {
    let x = arr(&[0.0, 1.0, 4.0], &[3]);
    assert_close(
        &floats(&x.exp().unwrap()),
        &[1.0, std::f32::consts::E, 54.598_15],
        1e-3,
    );
    assert_close(
        &floats(&arr(&[1.0, std::f32::consts::E], &[2]).log().unwrap()),
        &[0.0, 1.0],
        1e-6,
    );
    assert_eq!(floats(&x.sqrt().unwrap()), vec![0.0, 1.0, 2.0]);
    assert_close(
        &floats(&arr(&[4.0, 0.25], &[2]).rsqrt().unwrap()),
        &[0.5, 2.0],
        1e-6,
    );
    assert_close(
        &floats(&arr(&[0.0, 2.0], &[2]).sigmoid().unwrap()),
        &[0.5, 0.880_797],
        1e-6,
    );
    assert_close(
        &floats(&arr(&[0.0, 1.0], &[2]).tanh().unwrap()),
        &[0.0, 0.761_594],
        1e-6,
    );
    assert_close(
        &floats(&arr(&[0.0, 1.0], &[2]).erf().unwrap()),
        &[0.0, 0.842_700_8],
        1e-6,
    );
    assert_eq!(
        floats(&arr(&[-2.0, 3.0], &[2]).abs().unwrap()),
        vec![2.0, 3.0]
    );
    assert_eq!(
        floats(&arr(&[-2.0, 3.0], &[2]).square().unwrap()),
        vec![4.0, 9.0]
    );
    assert_close(
        &floats(
            &arr(&[0.0, std::f32::consts::FRAC_PI_2], &[2])
                .sin()
                .unwrap(),
        ),
        &[0.0, 1.0],
        1e-6,
    );
    assert_close(
        &floats(&arr(&[0.0, std::f32::consts::PI], &[2]).cos().unwrap()),
        &[1.0, -1.0],
        1e-6,
    );
}

#[test]
fn activations() {
    let x = arr(&[-1.0, 0.0, 2.0], &[3]);
    // silu(x) = x * sigmoid(x)
    assert_close(
        &floats(&x.silu().unwrap()),
        &[-0.268_941_4, 0.0, 1.761_594_2],
        1e-6,
    );
    // gelu(x) = 0.5 x (1 + erf(x/√2))
    assert_close(
        &floats(&x.gelu().unwrap()),
        &[-0.158_655_25, 0.0, 1.954_499_7],
        1e-5,
    );
    // tanh approximation
    assert_close(
        &floats(&x.gelu_approx().unwrap()),
        &[-0.158_808, 0.0, 1.954_597_7],
        1e-5,
    );
}

#[test]
fn half_precision_stays_half_with_scalar_like() {
    let h = arr(&[1.0, 2.0], &[2]).astype(Dtype::Float16).unwrap();
    let doubled = h.multiply(&h.scalar_like(2.0).unwrap()).unwrap();
    assert_eq!(doubled.dtype(), Dtype::Float16);
    assert_eq!(h.silu().unwrap().dtype(), Dtype::Float16);
    assert_eq!(
        floats(&doubled.astype(Dtype::Float32).unwrap()),
        vec![2.0, 4.0]
    );
}

#[test]
fn matmul_batches() {
    let a = arr(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let b = arr(&[5.0, 6.0, 7.0, 8.0], &[2, 2]);
    assert_eq!(floats(&a.matmul(&b).unwrap()), vec![19.0, 22.0, 43.0, 50.0]);
    let batch = Array::stack(&[&a, &b], 0).unwrap();
    let out = batch.matmul(&arr(&[1.0, 0.0, 0.0, 1.0], &[2, 2])).unwrap();
    assert_eq!(out.shape(), vec![2, 2, 2]);
    assert_eq!(floats(&out), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
}

#[test]
fn where_and_astype() {
    let cond = Array::from_slice(&[true, false, true], &[3]).unwrap();
    let x = arr(&[1.0, 2.0, 3.0], &[3]);
    let picked = Array::where_(&cond, &x, &Array::from(f32::NEG_INFINITY)).unwrap();
    assert_eq!(floats(&picked), vec![1.0, f32::NEG_INFINITY, 3.0]);
    assert_eq!(
        arr(&[1.7, -1.7], &[2])
            .astype(Dtype::Int32)
            .unwrap()
            .to_vec::<i32>()
            .unwrap(),
        vec![1, -1]
    );
    let bf = arr(&[1.0, 3.0], &[2]).astype(Dtype::Bfloat16).unwrap();
    assert_eq!(bf.dtype(), Dtype::Bfloat16);
    assert_eq!(floats(&bf.astype(Dtype::Float32).unwrap()), vec![1.0, 3.0]);
}
