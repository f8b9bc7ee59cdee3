//! Embeddings: each input's final hidden states pooled into one vector, as the model's
//! [`EmbeddingRecipe`] says, optionally cut to fewer dimensions, then normalised when the
//! recipe normalises. Inputs run in left-padded batches of similar lengths, each in
//! chunks the scheduler sizes by time like a prompt's prefill, interleaved with the decode
//! steps of running generations.

mod batches;
mod job;
mod recipe;

use std::time::Duration;

use perch_mlx::{Array, Dtype};

use crate::batch::BatchLayout;
use crate::kv_cache::LayerCache;
use crate::model::Model;
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

/// An embedding request in progress: its inputs in left-padded batches of similar
/// lengths, run a chunk at a time (so the scheduler can interleave them with decode
/// steps and notice a caller that went away).
pub struct EmbedTask {
    request: EmbedRequest,
    recipe: EmbeddingRecipe,
    /// Batches not started yet, as indices into the inputs.
    groups: std::collections::VecDeque<Vec<usize>>,
    current: Option<BatchRun>,
    vectors: Vec<Vec<f32>>,
}

/// One batch of inputs being read.
struct BatchRun {
    members: Vec<usize>,
    ids: Array,
    layout: BatchLayout,
    /// Left padding of each row.
    padding: Vec<usize>,
    cache: Vec<LayerCache>,
    pooled: Option<Array>,
    /// Positions read so far.
    done: usize,
}

impl EmbedTask {
    /// The task of embedding `request` as `recipe` says.
    pub fn new(request: EmbedRequest, recipe: EmbeddingRecipe) -> EmbedTask {
        let lengths: Vec<usize> = request.inputs.iter().map(Vec::len).collect();
        EmbedTask {
            groups: batches::batches(&lengths).into(),
            vectors: vec![Vec::new(); request.inputs.len()],
            request,
            recipe,
            current: None,
        }
    }

    /// Runs about `tokens` more tokens (over all rows of the current batch); the vectors,
    /// in the order of the inputs, once every input is done.
    pub fn step(&mut self, model: &Model, tokens: usize) -> Result<Option<Vec<Vec<f32>>>> {
        if self.current.is_none() {
            let Some(members) = self.groups.pop_front() else {
                return Ok(Some(std::mem::take(&mut self.vectors)));
            };
            let sequences: Vec<Vec<u32>> = members
                .iter()
                .map(|&i| self.request.inputs[i].clone())
                .collect();
            // The padding id is never attended to, so any id will do.
            let (ids, layout) = BatchLayout::pad(&sequences, 0)?;
            let len = ids.shape()[1] as usize;
            self.current = Some(BatchRun {
                padding: sequences.iter().map(|r| len - r.len()).collect(),
                cache: model.transformer.new_cache(),
                pooled: None,
                done: 0,
                members,
                ids,
                layout,
            });
        }
        let run = self.current.as_mut().expect("a batch runs");
        if let Some(pooled) = run.chunk(model, self.recipe.pooling, tokens)? {
            for (vector, &i) in pooled.into_iter().zip(&run.members) {
                self.vectors[i] = finish(vector, self.request.dimensions, self.recipe.normalize);
            }
            self.current = None;
            if self.groups.is_empty() {
                return Ok(Some(std::mem::take(&mut self.vectors)));
            }
        }
        Ok(None)
    }
}

impl BatchRun {
    /// Reads about `tokens` more tokens of the batch; its pooled vectors once done.
    fn chunk(
        &mut self,
        model: &Model,
        pooling: Pooling,
        tokens: usize,
    ) -> Result<Option<Vec<Vec<f32>>>> {
        let (batch, len) = (self.padding.len(), self.ids.shape()[1] as usize);
        let done = self.done;
        // A chunk takes that many tokens over all rows.
        let columns = (tokens / batch).clamp(1, len - done);
        let chunk = self.ids.slice(
            &[0, done as i32],
            &[batch as i32, (done + columns) as i32],
            &[1, 1],
        )?;
        let last = done + columns == len;
        match pooling {
            Pooling::Mean => {
                let hidden = model
                    .transformer
                    .hidden_states(&chunk, &mut self.cache, &self.layout, true)?
                    .astype(Dtype::Float32)?;
                let real = real_positions(&self.padding, done, columns)?;
                let sum = hidden.multiply(&real)?.sum(&[1], false)?;
                self.pooled = Some(match self.pooled.take() {
                    Some(before) => before.add(&sum)?,
                    None => sum,
                });
            }
            Pooling::LastToken => {
                // Left padding puts every row's last token in the last column.
                let hidden = model.transformer.hidden_states(
                    &chunk,
                    &mut self.cache,
                    &self.layout,
                    false,
                )?;
                if last {
                    self.pooled = Some(hidden.astype(Dtype::Float32)?);
                }
            }
        }
        let mut outputs: Vec<&Array> = self.cache.iter().flat_map(LayerCache::state).collect();
        outputs.extend(self.pooled.iter());
        perch_mlx::eval(&outputs)?;
        self.done += columns;
        if !last {
            return Ok(None);
        }
        let pooled = self
            .pooled
            .take()
            .expect("a batch has at least one position")
            .to_vec::<f32>()?;
        let width = pooled.len() / batch;
        let lengths = self.padding.iter().map(|p| len - p);
        Ok(Some(
            pooled
                .chunks(width)
                .zip(lengths)
                .map(|(v, row_len)| match pooling {
                    Pooling::Mean => v.iter().map(|x| x / row_len as f32).collect(),
                    Pooling::LastToken => v.to_vec(),
                })
                .collect(),
        ))
    }
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

/// `vector` cut to `dimensions` and, when `normalize`, scaled to unit length: the last
/// touches every engine gives a pooled vector.
pub fn finish(mut vector: Vec<f32>, dimensions: Option<usize>, normalize: bool) -> Vec<f32> {
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
