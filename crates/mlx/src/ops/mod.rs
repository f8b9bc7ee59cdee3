//! Operations on [`Array`](crate::Array), as methods, grouped by kind. All are lazy and
//! broadcast like NumPy; all return `Result` so that MLX's shape checks surface as errors.

mod elementwise;
mod index;
mod quantized;

pub use quantized::Quantized;
mod reduce;
mod shape;
