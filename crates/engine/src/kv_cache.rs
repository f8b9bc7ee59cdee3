//! The key/value cache of one layer, for a batch of sequences. Storage grows in
//! preallocated steps of [`KV_STEP`] positions, so decoding writes into place instead of
//! reallocating every token.

use perch_mlx::{Array, Dtype};

use crate::Result;

/// Positions added to a layer's cache each time it fills up.
pub const KV_STEP: i32 = 256;

/// Keys and values `[batch, kv_heads, capacity, head_dim]` of one layer; the first
/// `offset` positions hold data.
#[derive(Default)]
pub struct LayerCache {
    keys: Option<Array>,
    values: Option<Array>,
    offset: i32,
}

impl LayerCache {
    /// Positions filled so far (the same for every row of the batch; shorter prompts are
    /// left-padded).
    pub fn offset(&self) -> i32 {
        self.offset
    }

    /// Appends `keys` and `values` (`[batch, kv_heads, new, head_dim]`) and returns views
    /// of everything cached so far.
    pub fn append(&mut self, keys: &Array, values: &Array) -> Result<(Array, Array)> {
        let shape = keys.shape();
        let (batch, heads, new, dim) = (shape[0], shape[1], shape[2], shape[3]);
        let start = self.offset;
        let end = start + new;
        let capacity = self.keys.as_ref().map_or(0, |k| k.shape()[2]);
        if end > capacity {
            let grow = (new + KV_STEP - 1) / KV_STEP * KV_STEP;
            self.keys = Some(grown(
                self.keys.take(),
                [batch, heads, grow, dim],
                start,
                keys.dtype(),
            )?);
            let value_dim = values.shape()[3];
            self.values = Some(grown(
                self.values.take(),
                [batch, heads, grow, value_dim],
                start,
                values.dtype(),
            )?);
        }
        let (Some(k), Some(v)) = (&self.keys, &self.values) else {
            unreachable!("storage was allocated above");
        };
        let value_dim = values.shape()[3];
        let k = k.slice_update(
            keys,
            &[0, 0, start, 0],
            &[batch, heads, end, dim],
            &[1, 1, 1, 1],
        )?;
        let v = v.slice_update(
            values,
            &[0, 0, start, 0],
            &[batch, heads, end, value_dim],
            &[1, 1, 1, 1],
        )?;
        let k_view = k.slice(&[0, 0, 0, 0], &[batch, heads, end, dim], &[1, 1, 1, 1])?;
        let v_view = v.slice(
            &[0, 0, 0, 0],
            &[batch, heads, end, value_dim],
            &[1, 1, 1, 1],
        )?;
        self.keys = Some(k);
        self.values = Some(v);
        self.offset = end;
        Ok((k_view, v_view))
    }

    /// The storage arrays (keys, values), for evaluating the cache on its own.
    pub fn state(&self) -> impl Iterator<Item = &Array> {
        self.keys.iter().chain(self.values.iter())
    }

    /// Bytes of preallocated storage.
    pub fn nbytes(&self) -> usize {
        self.keys.as_ref().map_or(0, Array::nbytes) + self.values.as_ref().map_or(0, Array::nbytes)
    }
}

/// `old`'s first `used` positions followed by `extra` fresh zeroed positions.
fn grown(old: Option<Array>, extra: [i32; 4], used: i32, dtype: Dtype) -> Result<Array> {
    let fresh = Array::zeros(&extra, dtype)?;
    match old {
        None => Ok(fresh),
        Some(old) => {
            let s = old.shape();
            let kept = old.slice(&[0, 0, 0, 0], &[s[0], s[1], used, s[3]], &[1, 1, 1, 1])?;
            Ok(Array::concatenate(&[&kept, &fresh], 2)?)
        }
    }
}
