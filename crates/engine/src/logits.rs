//! A step's logits, `[rows, vocab]`, where the backend left them: an MLX array (lazy,
//! possibly still being computed on MLX's device) or values already in host memory
//! (llama.cpp computes them there). Host logits go to MLX only when a step's sampling
//! needs its graph; when every row of the step wants only the most likely token, the
//! choice is made on the host (see [`crate::sampler::sample`]), which spares the step a
//! round trip through MLX's graph and its stream thread.

use perch_mlx::Array;

use crate::{EngineError, Result};

/// A step's logits, one row per sequence.
pub struct Logits(Place);

enum Place {
    /// On MLX's device, `[rows, vocab]`.
    Device(Array),
    /// In host memory: `rows × vocab` values, row-major.
    Host { values: Vec<f32>, vocab: usize },
}

impl Logits {
    /// Logits on MLX's device, `[rows, vocab]`.
    pub fn device(array: Array) -> Logits {
        Logits(Place::Device(array))
    }

    /// Logits in host memory: rows of `vocab` values each, one after another.
    pub fn host(values: Vec<f32>, vocab: usize) -> Result<Logits> {
        if vocab == 0 || values.len() % vocab != 0 {
            return Err(EngineError::StepFailed(format!(
                "{} logits do not make rows of {vocab}",
                values.len()
            )));
        }
        Ok(Logits(Place::Host { values, vocab }))
    }

    /// Rows in it.
    pub fn rows(&self) -> usize {
        match &self.0 {
            Place::Device(array) => array.shape()[0] as usize,
            Place::Host { values, vocab } => values.len() / vocab,
        }
    }

    /// The width of a row (the model's vocabulary).
    pub fn vocab(&self) -> usize {
        match &self.0 {
            Place::Device(array) => array.shape()[1] as usize,
            Place::Host { vocab, .. } => *vocab,
        }
    }

    /// As an MLX array, `[rows, vocab]` (host values copied in).
    pub fn to_array(&self) -> Result<Array> {
        Ok(match &self.0 {
            Place::Device(array) => array.clone(),
            Place::Host { values, vocab } => {
                Array::from_slice(values, &[self.rows() as i32, *vocab as i32])?
            }
        })
    }

    /// The values, row-major, and the width of a row, where they are in host memory.
    pub fn on_host(&self) -> Option<(&[f32], usize)> {
        match &self.0 {
            Place::Device(_) => None,
            Place::Host { values, vocab } => Some((values, *vocab)),
        }
    }

    /// Only the rows at `keep`, in that order.
    pub fn select(self, keep: &[usize]) -> Result<Logits> {
        Ok(Logits(match self.0 {
            Place::Device(array) => {
                let index: Vec<u32> = keep.iter().map(|&i| i as u32).collect();
                Place::Device(array.take(&Array::from_slice(&index, &[keep.len() as i32])?, 0)?)
            }
            Place::Host { values, vocab } => Place::Host {
                values: keep
                    .iter()
                    .flat_map(|&row| &values[row * vocab..(row + 1) * vocab])
                    .copied()
                    .collect(),
                vocab,
            },
        }))
    }

    /// Starts computing them on MLX's device, where they are still to be computed.
    pub fn start_computing(&self) -> Result<()> {
        if let Place::Device(array) = &self.0 {
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

    /// `argmax` and MLX's, which must agree, on `values`; the index.
    fn both(values: &[f32]) -> usize {
        let ours = argmax(values);
        assert_eq!(ours, mlx_argmax(values), "{values:?}");
        ours
    }

    #[test]
    fn argmax_chooses_among_equal_values_and_nans_as_mlx_does() {
        let vocab = 1003;
        let mut values: Vec<f32> = (0..vocab).map(|i| ((i * 37) % 101) as f32 * 0.1).collect();
        values[700] = 50.0;
        values[40] = 50.0;
        values[vocab - 1] = 50.0;
        assert_eq!(both(&values), 40);
        values[900] = f32::NAN;
        values[300] = f32::NAN;
        assert_eq!(both(&values), 300);
    }

    #[test]
    fn argmax_chooses_in_the_tail_past_the_lanes_as_mlx_does() {
        let mut values = vec![-3.0f32; 16 * 5 + 7];
        values[16 * 5 + 4] = -1.0;
        assert_eq!(both(&values), 16 * 5 + 4);
        values[3] = f32::INFINITY;
        assert_eq!(both(&values), 3);
        values[16 * 5 + 6] = f32::NAN;
        assert_eq!(both(&values), 16 * 5 + 6);
        assert_eq!(both(&[f32::NEG_INFINITY; 5]), 0);
        assert_eq!(both(&[-1.0, -0.0, 0.0, -2.0]), 1);
    }

    #[test]
    fn host_rows_selected_are_the_device_rows_selected() {
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        let host = Logits::host(values.clone(), 4).unwrap();
        let device = Logits::device(Array::from_slice(&values, &[3, 4]).unwrap());
        assert_eq!(host.rows(), 3);
        let host = host.select(&[2, 0]).unwrap().to_array().unwrap();
        let device = device.select(&[2, 0]).unwrap().to_array().unwrap();
        assert_eq!(host.shape(), [2, 4]);
        assert_eq!(
            host.to_vec::<f32>().unwrap(),
            device.to_vec::<f32>().unwrap()
        );
    }

    #[test]
    fn host_values_that_do_not_make_whole_rows_are_refused() {
        assert!(Logits::host(vec![0.0; 10], 4).is_err());
        assert!(Logits::host(vec![0.0; 8], 0).is_err());
    }
}
