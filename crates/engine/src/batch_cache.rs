//! The key/value cache of the sequences decoding together: one left-padded batch per
//! layer, and the padding of each row. A sequence whose prompt has just been read joins
//! as the last row (the shorter side padded at the front to line up); rows that end leave,
//! and padding no remaining row needs is dropped. A row's real positions can be copied out
//! for the prefix cache.

use perch_mlx::Array;

use crate::batch::BatchLayout;
use crate::kv_cache::LayerCache;
use crate::Result;

/// The batch's caches, one per layer, and each row's left padding.
#[derive(Default)]
pub struct BatchCache {
    layers: Vec<LayerCache>,
    padding: Vec<i32>,
}

impl BatchCache {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.padding.len()
    }

    /// Positions filled in every row, padding included.
    pub fn offset(&self) -> i32 {
        self.layers.first().map_or(0, LayerCache::offset)
    }

    /// The layers' caches, for a forward pass.
    pub fn layers_mut(&mut self) -> &mut [LayerCache] {
        &mut self.layers
    }

    /// Where each row starts, for a forward pass's positions and mask.
    pub fn layout(&self) -> BatchLayout {
        BatchLayout::with_padding(self.padding.clone())
    }

    /// Bytes of storage held.
    pub fn nbytes(&self) -> usize {
        self.layers.iter().map(LayerCache::nbytes).sum()
    }

    /// Adds a sequence's own cache (one row, one entry per layer) as the last row.
    pub fn push(&mut self, cache: Vec<LayerCache>) -> Result<()> {
        let joining = cache.first().map_or(0, LayerCache::offset);
        if self.padding.is_empty() {
            self.layers = cache;
            self.padding = vec![0];
            return Ok(());
        }
        let offset = self.offset();
        if joining > offset {
            let pad = joining - offset;
            self.layers = self
                .layers
                .iter()
                .map(|l| l.pad_front(pad))
                .collect::<Result<_>>()?;
            for p in &mut self.padding {
                *p += pad;
            }
        }
        let pad = offset.max(joining) - joining;
        self.layers = self
            .layers
            .iter()
            .zip(&cache)
            .map(|(batch, row)| {
                if pad > 0 {
                    batch.stack(&row.pad_front(pad)?)
                } else {
                    batch.stack(row)
                }
            })
            .collect::<Result<_>>()?;
        self.padding.push(pad);
        Ok(())
    }

    /// Keeps only the rows `keep` (in that order), dropping the padding no kept row
    /// needs; with none kept the batch is empty.
    pub fn retain(&mut self, keep: &[usize]) -> Result<()> {
        if keep.is_empty() {
            *self = BatchCache::default();
            return Ok(());
        }
        if keep.len() == self.rows() && keep.iter().enumerate().all(|(i, &k)| i == k) {
            return Ok(());
        }
        let padding: Vec<i32> = keep.iter().map(|&r| self.padding[r]).collect();
        let unneeded = padding.iter().copied().min().unwrap_or(0);
        let index: Vec<u32> = keep.iter().map(|&r| r as u32).collect();
        let index = Array::from_slice(&index, &[index.len() as i32])?;
        self.layers = self
            .layers
            .iter()
            .map(|l| {
                let kept = l.take_rows(&index)?;
                if unneeded > 0 {
                    kept.drop_front(unneeded)
                } else {
                    Ok(kept)
                }
            })
            .collect::<Result<_>>()?;
        self.padding = padding.into_iter().map(|p| p - unneeded).collect();
        Ok(())
    }

    /// Row `row`'s first `len` real positions in every layer, copied out of the batch.
    pub fn copy_row(&self, row: usize, len: usize) -> Result<Vec<(Array, Array)>> {
        let start = self.padding[row];
        let len = (len as i32).min(self.offset() - start);
        self.layers
            .iter()
            .map(|l| l.copy_row(row as i32, start, len))
            .collect()
    }
}
