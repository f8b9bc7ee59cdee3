//! Where each row of a batch stands: how many left-padding positions it has. From that
//! come the rotary offsets (so every sequence starts at position 0) and the attention mask
//! (causal, and blind to padding).

use perch_mlx::fast::AttentionMask;
use perch_mlx::{Array, Dtype};

use crate::Result;

/// The left padding of each row of a batch.
#[derive(Clone, Debug, Default)]
pub struct BatchLayout {
    left_padding: Vec<i32>,
}

/// What a forward step needs: the mask and rotary offsets for `queries` new positions
/// after `offset` cached ones.
pub struct StepPositions {
    /// Mask over `[batch, 1, queries, offset + queries]`, or a causal/no mask when no row
    /// is padded.
    pub mask: Option<Array>,
    /// Whether the whole step is causal (no padding, more than one query).
    pub causal: bool,
    /// Rotary offset per row (`offset - padding`), when rows differ.
    pub rope_offsets: Option<Array>,
    /// The shared rotary offset when no row is padded.
    pub offset: i32,
}

impl StepPositions {
    /// The attention mask for `fast::scaled_dot_product_attention`.
    pub fn attention_mask(&self) -> AttentionMask<'_> {
        match (&self.mask, self.causal) {
            (Some(m), _) => AttentionMask::Array(m),
            (None, true) => AttentionMask::Causal,
            (None, false) => AttentionMask::None,
        }
    }
}

impl BatchLayout {
    /// A batch of `rows` unpadded sequences.
    pub fn unpadded(rows: usize) -> Self {
        BatchLayout {
            left_padding: vec![0; rows],
        }
    }

    /// A batch with the given left padding per row.
    pub fn with_padding(left_padding: Vec<i32>) -> Self {
        BatchLayout { left_padding }
    }

    /// Left-pads `sequences` with `pad_id` to a common length; returns the `[batch, len]`
    /// ids and the layout.
    pub fn pad(sequences: &[Vec<u32>], pad_id: u32) -> Result<(Array, BatchLayout)> {
        let len = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(len * sequences.len());
        let mut padding = Vec::with_capacity(sequences.len());
        for s in sequences {
            let pad = len - s.len();
            ids.extend(std::iter::repeat_n(pad_id, pad));
            ids.extend_from_slice(s);
            padding.push(pad as i32);
        }
        let array = Array::from_slice(&ids, &[sequences.len() as i32, len as i32])?;
        Ok((
            array,
            BatchLayout {
                left_padding: padding,
            },
        ))
    }

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.left_padding.len()
    }

    /// The mask and offsets for `queries` new positions after `offset` cached ones.
    pub fn step(&self, offset: i32, queries: i32) -> Result<StepPositions> {
        if self.left_padding.iter().all(|&p| p == 0) {
            return Ok(StepPositions {
                mask: None,
                causal: queries > 1,
                rope_offsets: None,
                offset,
            });
        }
        let keys = offset + queries;
        let rows = self.rows() as i32;
        let key_pos = Array::arange(0.0, f64::from(keys), 1.0, Dtype::Int32)?;
        let query_pos = Array::arange(f64::from(offset), f64::from(keys), 1.0, Dtype::Int32)?;
        let causal = key_pos
            .reshape(&[1, keys])?
            .le(&query_pos.reshape(&[queries, 1])?)?;
        let padding = Array::from_slice(&self.left_padding, &[rows])?;
        let real = key_pos
            .reshape(&[1, keys])?
            .ge(&padding.reshape(&[rows, 1])?)?;
        // Padding queries would see no key at all (and softmax would give NaN, which then
        // leaks through 0 × NaN); letting every query see itself keeps them finite.
        let itself = key_pos
            .reshape(&[1, keys])?
            .eq(&query_pos.reshape(&[queries, 1])?)?;
        let mask = causal
            .reshape(&[1, 1, queries, keys])?
            .logical_and(&real.reshape(&[rows, 1, 1, keys])?)?
            .logical_or(&itself.reshape(&[1, 1, queries, keys])?)?;
        let rope_offsets = Array::scalar(offset).subtract(&padding)?;
        Ok(StepPositions {
            mask: Some(mask),
            causal: false,
            rope_offsets: Some(rope_offsets),
            offset,
        })
    }
}
