//! `contiguous` copies a view out of a larger array, so the larger array's memory goes when
//! it does; a plain slice keeps it (the prefix cache keeps copies of cache rows for that
//! reason). Alone in its binary: it reads MLX's process-wide memory counter.

use perch_mlx::{memory, Array, Dtype};

/// A 16 MB array and one 64 KB row of it, made by `cut`; MB still held once the big
/// array is dropped.
fn held_after_dropping_the_whole(cut: impl Fn(Array) -> Array) -> f64 {
    let big = Array::ones(&[256, 16384], Dtype::Float32).unwrap();
    big.eval().unwrap();
    let row = cut(big.slice(&[3, 0], &[4, 16384], &[1, 1]).unwrap());
    row.eval().unwrap();
    drop(big);
    let held = memory::active() as f64 / 1e6;
    assert_eq!(row.sum(&[], false).unwrap().item::<f32>().unwrap(), 16384.0);
    held
}

#[test]
fn a_contiguous_copy_lets_the_array_it_came_from_go() {
    let viewed = held_after_dropping_the_whole(|view| view);
    assert!(viewed >= 16.0, "a view keeps its array: {viewed:.1} MB");
    let copied = held_after_dropping_the_whole(|view| view.contiguous().unwrap());
    assert!(
        copied < 4.0,
        "{copied:.1} MB still held after the array went"
    );
}
