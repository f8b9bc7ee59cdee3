//! Embeddings: each input's final hidden states pooled into one vector, as the model's
//! [`EmbeddingRecipe`] says, optionally cut to fewer dimensions, then normalised when the
//! recipe normalises. Inputs run in left-padded batches of similar lengths, each in
//! chunks sized by time like a prompt's prefill, with cancellation checked between them.

mod batches;
mod job;
mod recipe;

use std::time::{Duration, Instant};

use perch_mlx::{Array, Dtype};

use crate::batch::BatchLayout;
use crate::kv_cache::LayerCache;
use crate::model::Model;
use crate::prefill_pacer::PrefillPacer;
use crate::Result;

pub use job::EmbeddingJob;
pub use recipe::{EmbeddingRecipe, Pooling};

/// What to embed.
#[derive(Clone, Debug, Default)]
pub struct EmbedRequest {
    /// The inputs, tokenized (with what the tokenizer adds to a plain text).
    pub inputs: Vec<Vec<u32>>,
    /// Keep only the first this many dimensions (normalising again afterwards when the
    /// recipe normalises): the shorter embeddings of Matryoshka-trained models.
    pub dimensions: Option<usize>,
}

/// The vectors of an [`EmbedRequest`], in the order of its inputs.
#[derive(Clone, Debug)]
pub struct Embeddings {
    /// One per input.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read, over all inputs.
    pub prompt_tokens: usize,
    /// Time spent waiting for the model.
    pub queued: Duration,
    /// Time spent computing.
    pub compute_time: Duration,
}

/// Embeds every input of `request`; `None` when `cancelled` said so between chunks.
pub(crate) fn run(
    model: &Model,
    recipe: &EmbeddingRecipe,
    request: &EmbedRequest,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Vec<Vec<f32>>>> {
    let lengths: Vec<usize> = request.inputs.iter().map(Vec::len).collect();
    let mut vectors = vec![Vec::new(); request.inputs.len()];
    let mut pacer = PrefillPacer::default();
    for group in batches::batches(&lengths) {
        let rows: Vec<&[u32]> = group.iter().map(|&i| &request.inputs[i][..]).collect();
        let Some(pooled) = pool_batch(model, recipe.pooling, &rows, &mut pacer, cancelled)? else {
            return Ok(None);
        };
        for (vector, &i) in pooled.into_iter().zip(&group) {
            vectors[i] = finish(vector, request.dimensions, recipe.normalize);
        }
    }
    Ok(Some(vectors))
}

/// The pooled hidden states of `rows`, run as one left-padded batch.
fn pool_batch(
    model: &Model,
    pooling: Pooling,
    rows: &[&[u32]],
    pacer: &mut PrefillPacer,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Vec<Vec<f32>>>> {
    let sequences: Vec<Vec<u32>> = rows.iter().map(|r| r.to_vec()).collect();
    // The padding id is never attended to, so any id will do.
    let (ids, layout) = BatchLayout::pad(&sequences, 0)?;
    let (batch, len) = (rows.len(), ids.shape()[1] as usize);
    let padding: Vec<usize> = rows.iter().map(|r| len - r.len()).collect();
    let mut cache = model.transformer.new_cache();
    let mut pooled: Option<Array> = None;
    let mut done = 0;
    while done < len {
        if cancelled() {
            return Ok(None);
        }
        // The pacer counts tokens; a chunk takes that many over all rows.
        let columns = (pacer.next_chunk() / batch).clamp(1, len - done);
        let started = Instant::now();
        let chunk = ids.slice(
            &[0, done as i32],
            &[batch as i32, (done + columns) as i32],
            &[1, 1],
        )?;
        let last = done + columns == len;
        match pooling {
            Pooling::Mean => {
                let hidden = model
                    .transformer
                    .hidden_states(&chunk, &mut cache, &layout, true)?
                    .astype(Dtype::Float32)?;
                let real = real_positions(&padding, done, columns)?;
                let sum = hidden.multiply(&real)?.sum(&[1], false)?;
                pooled = Some(match pooled.take() {
                    Some(before) => before.add(&sum)?,
                    None => sum,
                });
            }
            Pooling::LastToken => {
                // Left padding puts every row's last token in the last column.
                let hidden = model
                    .transformer
                    .hidden_states(&chunk, &mut cache, &layout, false)?;
                if last {
                    pooled = Some(hidden.astype(Dtype::Float32)?);
                }
            }
        }
        let mut outputs: Vec<&Array> = cache.iter().flat_map(LayerCache::state).collect();
        outputs.extend(pooled.iter());
        perch_mlx::eval(&outputs)?;
        pacer.record(batch * columns, started.elapsed());
        done += columns;
    }
    let pooled = pooled
        .expect("a batch has at least one position")
        .to_vec::<f32>()?;
    let width = pooled.len() / batch;
    Ok(Some(
        pooled
            .chunks(width)
            .zip(rows)
            .map(|(v, row)| match pooling {
                Pooling::Mean => v.iter().map(|x| x / row.len() as f32).collect(),
                Pooling::LastToken => v.to_vec(),
            })
            .collect(),
    ))
}

/// `[rows, columns, 1]`: 1 where a row has a real token among positions
/// `start..start + columns`, 0 over its left padding.
fn real_positions(padding: &[usize], start: usize, columns: usize) -> Result<Array> {
    let mask: Vec<f32> = padding
        .iter()
        .flat_map(|&pad| (start..start + columns).map(move |p| f32::from(u8::from(p >= pad))))
        .collect();
    Ok(Array::from_slice(
        &mask,
        &[padding.len() as i32, columns as i32, 1],
    )?)
}

/// `vector` cut to `dimensions` and, when `normalize`, scaled to unit length.
fn finish(mut vector: Vec<f32>, dimensions: Option<usize>, normalize: bool) -> Vec<f32> {
    if let Some(d) = dimensions {
        vector.truncate(d);
    }
    if normalize {
        let norm = vector
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            for x in &mut vector {
                *x = (f64::from(*x) / norm) as f32;
            }
        }
    }
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_vectors_are_normalised_again() {
        let v = finish(vec![3.0, 4.0, 12.0], Some(2), true);
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(finish(vec![3.0, 4.0, 12.0], Some(2), false), vec![3.0, 4.0]);
        assert_eq!(finish(vec![0.0, 0.0], None, true), vec![0.0, 0.0]);
    }

    #[test]
    fn padding_positions_are_masked_out() {
        let mask = real_positions(&[2, 0], 1, 3)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(mask, vec![0.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    }
}
