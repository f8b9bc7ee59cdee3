//! Running the lazy graph: [`eval`] and [`async_eval`].

use cxx::UniquePtr;

use crate::ffi::bridge as ffi;
use crate::{Array, Result};

/// Packs arrays into the shim's list type.
pub(crate) fn array_vec(arrays: &[&Array]) -> UniquePtr<ffi::ArrayVec> {
    let mut list = ffi::array_vec_new();
    for a in arrays {
        ffi::array_vec_push(list.pin_mut(), a.raw());
    }
    list
}

/// Unpacks the shim's list type.
pub(crate) fn from_array_vec(
    list: Result<UniquePtr<ffi::ArrayVec>, cxx::Exception>,
) -> Result<Vec<Array>> {
    let list = list?;
    (0..ffi::array_vec_len(&list))
        .map(|i| crate::array::wrap(ffi::array_vec_get(&list, i)))
        .collect()
}

/// Computes `arrays` (and everything they depend on) and waits for the result.
pub fn eval(arrays: &[&Array]) -> Result<()> {
    Ok(ffi::eval(&array_vec(arrays))?)
}

/// Starts computing `arrays` and returns at once; reading them (or [`eval`]) waits.
/// Lets the caller build the next graph while this one runs.
pub fn async_eval(arrays: &[&Array]) -> Result<()> {
    Ok(ffi::async_eval(&array_vec(arrays))?)
}
