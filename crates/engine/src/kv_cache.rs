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
        let start = self.offset;
        let keys = write(&mut self.keys, keys, start)?;
        let values = write(&mut self.values, values, start)?;
        self.offset = keys.shape()[2];
        Ok((keys, values))
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

/// Writes `new` into `storage` at position `start` (growing it by whole steps when it is
/// full) and returns a view of positions `0..start + new`.
fn write(storage: &mut Option<Array>, new: &Array, start: i32) -> Result<Array> {
    let shape = new.shape();
    let (batch, heads, len, dim) = (shape[0], shape[1], shape[2], shape[3]);
    let end = start + len;
    let capacity = storage.as_ref().map_or(0, |s| s.shape()[2]);
    let current = match storage.take() {
        Some(s) if end <= capacity => s,
        old => {
            let grow = (len + KV_STEP - 1) / KV_STEP * KV_STEP;
            grown(old, [batch, heads, grow, dim], start, new.dtype())?
        }
    };
    let updated = current.slice_update(
        new,
        &[0, 0, start, 0],
        &[batch, heads, end, dim],
        &[1, 1, 1, 1],
    )?;
    let view = updated.slice(&[0, 0, 0, 0], &[batch, heads, end, dim], &[1, 1, 1, 1])?;
    *storage = Some(updated);
    Ok(view)
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
