//! Safe Rust over Apple's MLX, linked against the official `libmlx` from the MLX wheels.
//!
//! Perch binds MLX's C++ API itself (through `cxx` and a small shim in `src/shim/`) so one
//! engine builds and is tested on Linux CPU, macOS Metal and Linux CUDA alike. Every
//! operation returns [`Result`]: MLX reports bad shapes, missing files and the like with a
//! C++ exception, which arrives here as [`Error::Mlx`] with MLX's message.
//!
//! Nothing LLM-specific lives in this crate.
//!
//! ```
//! use perch_mlx::Array;
//! let a = Array::from_slice(&[1.0f32, 2.0, 3.0, 4.0], &[2, 2])?;
//! let b = a.matmul(&a)?.sum(&[], false)?;
//! assert_eq!(b.item::<f32>()?, 54.0);
//! # Ok::<(), perch_mlx::Error>(())
//! ```

mod array;
mod device;
mod dtype;
mod error;
pub mod fast;
mod ffi;
pub mod io;
pub mod memory;
mod ops;
pub mod random;
mod transforms;

pub use array::Array;
pub use device::{
    default_device, device_info, is_available, set_default_device, DeviceInfo, DeviceKind,
    InfoValue,
};
pub use dtype::{Dtype, Element};
pub use error::{Error, Result};
pub use ops::Quantized;
pub use transforms::{async_eval, eval};

/// The version of the linked libmlx, such as `"0.32.4"`.
pub fn version() -> String {
    ffi::bridge::version()
}
