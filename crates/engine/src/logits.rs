//! A step's logits, `[rows, vocab]`, where the backend left them: an MLX array (lazy,
//! possibly still being computed on MLX's device) or values already in host memory
//! (llama.cpp computes them there). Host logits go to MLX only when a row's sampling needs
//! its graph; a greedy choice is made on the host (see [`crate::sampler::sample`]), which
//! spares each decode step a round trip through MLX's graph and its stream thread.

use perch_mlx::Array;

use crate::Result;

/// A step's logits, one row per sequence.
pub enum Logits {
    /// On MLX's device, `[rows, vocab]`.
    Device(Array),
    /// In host memory.
    Host {
        /// `rows × vocab` values, row-major.
        values: Vec<f32>,
        /// The width of a row.
        vocab: usize,
    },
}

impl Logits {
    /// Rows in it.
    pub fn rows(&self) -> usize {
        match self {
            Logits::Device(array) => array.shape()[0] as usize,
            Logits::Host { values, vocab } => values.len() / vocab,
        }
    }

    /// As an MLX array, `[rows, vocab]` (host values copied in).
    pub fn array(&self) -> Result<Array> {
        Ok(match self {
            Logits::Device(array) => array.clone(),
            Logits::Host { values, vocab } => {
                Array::from_slice(values, &[self.rows() as i32, *vocab as i32])?
            }
        })
    }

    /// The values, row-major, and the width of a row, where they are in host memory.
    pub fn on_host(&self) -> Option<(&[f32], usize)> {
        match self {
            Logits::Device(_) => None,
            Logits::Host { values, vocab } => Some((values, *vocab)),
        }
    }

    /// Only the rows at `keep`, in that order.
    pub fn select(self, keep: &[usize]) -> Result<Logits> {
        Ok(match self {
            Logits::Device(array) => {
                let index: Vec<u32> = keep.iter().map(|&i| i as u32).collect();
                Logits::Device(array.take(&Array::from_slice(&index, &[keep.len() as i32])?, 0)?)
            }
            Logits::Host { values, vocab } => Logits::Host {
                values: keep
                    .iter()
                    .flat_map(|&row| &values[row * vocab..(row + 1) * vocab])
                    .copied()
                    .collect(),
                vocab,
            },
        })
    }

    /// Starts computing them, where they are still to be computed.
    pub fn start(&self) -> Result<()> {
        if let Logits::Device(array) = self {
            perch_mlx::async_eval(&[array])?;
        }
        Ok(())
    }
}

/// Where the largest of `values` is, as MLX's argmax chooses: the first of equal ones,
/// and a NaN above any number (the first NaN, if there are several). Each of a handful of
/// lanes keeps its own maximum and whether it saw a NaN, which the compiler turns into
/// vector instructions; then the first value equal to the largest is found.
pub fn argmax(values: &[f32]) -> usize {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut nan = [false; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for ((lane, nan), &value) in lanes.iter_mut().zip(&mut nan).zip(chunk) {
            *lane = if value > *lane { value } else { *lane };
            *nan |= value.is_nan();
        }
    }
    if nan.contains(&true) || tail.iter().any(|v| v.is_nan()) {
        return values.iter().position(|v| v.is_nan()).unwrap_or(0);
    }
    let largest = lanes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
    values.iter().position(|&v| v == largest).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mlx_argmax(values: &[f32]) -> usize {
        let index: u32 = Array::from_slice(values, &[values.len() as i32])
            .unwrap()
            .argmax(0, false)
            .unwrap()
            .item()
            .unwrap();
        index as usize
    }

    #[test]
    fn argmax_chooses_among_equal_values_and_nans_as_mlx_does() {
        let vocab = 1003;
        let mut values: Vec<f32> = (0..vocab).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        values[700] = 50.0;
        values[40] = 50.0;
        values[vocab - 1] = 50.0;
        assert_eq!(argmax(&values), 40);
        assert_eq!(argmax(&values), mlx_argmax(&values));
        values[900] = f32::NAN;
        values[300] = f32::NAN;
        assert_eq!(argmax(&values), 300);
        assert_eq!(argmax(&values), mlx_argmax(&values));
    }

    #[test]
    fn argmax_finds_the_largest_in_the_tail_past_the_lanes() {
        let mut values = vec![-3.0f32; 16 * 5 + 7];
        values[16 * 5 + 4] = -1.0;
        assert_eq!(argmax(&values), 16 * 5 + 4);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 5]), 0);
    }
}
