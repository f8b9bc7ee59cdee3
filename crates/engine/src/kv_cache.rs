//! The key/value cache of one layer, for a batch of sequences. Storage grows ahead of
//! use — by an eighth of what it holds, in multiples of [`KV_STEP`] positions — so
//! decoding writes into place instead of reallocating every token, copies stay rare as
//! the cache grows, and the room reserved beyond what is used stays within about an
//! eighth (a batch of short sequences does not each hold hundreds of empty positions). A batch gains and loses rows as sequences join and leave it
//! (see [`crate::batch_cache`]); a row can be copied out whole for the prefix cache.

use perch_mlx::{Array, Dtype};

use crate::Result;

/// Storage grows in multiples of this many positions.
pub const KV_STEP: i32 = 32;

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

    /// A cache whose first positions are `keys` and `values`
    /// (`[batch, kv_heads, len, head_dim]`).
    pub fn holding(keys: Array, values: Array) -> LayerCache {
        let offset = keys.shape()[2];
        LayerCache {
            keys: Some(keys),
            values: Some(values),
            offset,
        }
    }

    /// Views of the filled positions: (keys, values).
    fn filled(&self) -> Result<(Array, Array)> {
        let view = |a: &Option<Array>| -> Result<Array> {
            let a = a.as_ref().expect("a filled cache has storage");
            let s = a.shape();
            Ok(a.slice(
                &[0, 0, 0, 0],
                &[s[0], s[1], self.offset, s[3]],
                &[1, 1, 1, 1],
            )?)
        };
        Ok((view(&self.keys)?, view(&self.values)?))
    }

    /// The rows `index` (`[rows]` uint32) of the batch, in that order.
    pub fn take_rows(&self, index: &Array) -> Result<LayerCache> {
        let (keys, values) = self.filled()?;
        Ok(LayerCache::holding(
            keys.take(index, 0)?,
            values.take(index, 0)?,
        ))
    }

    /// Every row with `pad` empty positions put in front (to line it up with longer
    /// rows).
    pub fn pad_front(&self, pad: i32) -> Result<LayerCache> {
        let (keys, values) = self.filled()?;
        let padded = |a: &Array| -> Result<Array> {
            let s = a.shape();
            let zeros = Array::zeros(&[s[0], s[1], pad, s[3]], a.dtype())?;
            Ok(Array::concatenate(&[&zeros, a], 2)?)
        };
        Ok(LayerCache::holding(padded(&keys)?, padded(&values)?))
    }

    /// Every row without its first `start` positions (padding no row needs any more).
    pub fn drop_front(&self, start: i32) -> Result<LayerCache> {
        let (keys, values) = self.filled()?;
        let rest = |a: &Array| -> Result<Array> {
            let s = a.shape();
            Ok(a.slice(&[0, 0, start, 0], &s, &[1, 1, 1, 1])?)
        };
        Ok(LayerCache::holding(rest(&keys)?, rest(&values)?))
    }

    /// `self`'s rows, then `other`'s (both filled to the same position).
    pub fn stack(&self, other: &LayerCache) -> Result<LayerCache> {
        let (k1, v1) = self.filled()?;
        let (k2, v2) = other.filled()?;
        Ok(LayerCache::holding(
            Array::concatenate(&[&k1, &k2], 0)?,
            Array::concatenate(&[&v1, &v2], 0)?,
        ))
    }

    /// Row `row`'s positions `start..start + len`, copied into arrays of their own
    /// (`[1, kv_heads, len, head_dim]`), so the batch's storage can go without them.
    pub fn copy_row(&self, row: i32, start: i32, len: i32) -> Result<(Array, Array)> {
        let (keys, values) = self.filled()?;
        let part = |a: &Array| -> Result<Array> {
            let s = a.shape();
            Ok(a.slice(
                &[row, 0, start, 0],
                &[row + 1, s[1], start + len, s[3]],
                &[1, 1, 1, 1],
            )?
            .contiguous()?)
        };
        Ok((part(&keys)?, part(&values)?))
    }

    /// The first `len` positions of a one-row cache kept by [`Self::copy_row`], as the
    /// start of a new sequence's cache.
    pub fn resume(kept: &(Array, Array), len: i32) -> Result<LayerCache> {
        let first = |a: &Array| -> Result<Array> {
            let s = a.shape();
            Ok(a.slice(&[0, 0, 0, 0], &[s[0], s[1], len, s[3]], &[1, 1, 1, 1])?)
        };
        Ok(LayerCache::holding(first(&kept.0)?, first(&kept.1)?))
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
            let wanted = len.max(start / 8);
            let grow = (wanted + KV_STEP - 1) / KV_STEP * KV_STEP;
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
