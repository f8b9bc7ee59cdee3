//! Turning logits into next tokens, on the device (on the host when the logits are there
//! and every row wants only the most likely token), for every row of a batch in one step:
//! logit bias, a constraint's mask, repetition / presence / frequency penalties, then
//! top-k, top-p and min-p filtering, then greedy choice (temperature 0) or a draw at the
//! row's temperature from the row's own seeded key. Each row has its own parameters and
//! state (a [`Sampler`]); a feature no row uses adds nothing to the graph, and a row that
//! does not use a feature others use passes through it unchanged, so every row samples
//! exactly what it would sample alone. Log-probabilities of the chosen token and its top
//! alternatives come from the model's unmodified distribution.

use perch_mlx::{random, Array, Dtype};

use crate::logits::{argmax, Logits};
use crate::{EngineError, Result};

/// How to pick tokens. The defaults are greedy decoding with no penalties.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// 0 picks the most likely token; higher spreads the choice.
    pub temperature: f32,
    /// Keep the smallest set of tokens whose probabilities add up to this (1 = all).
    pub top_p: f32,
    /// Keep the `top_k` most likely tokens (0 = all).
    pub top_k: usize,
    /// Drop tokens less likely than `min_p` × the most likely one's probability.
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of every token already in the context.
    pub repetition_penalty: f32,
    /// Subtract from the logit of every token already generated.
    pub presence_penalty: f32,
    /// Subtract, per earlier occurrence, from the logit of every generated token.
    pub frequency_penalty: f32,
    /// Added to the logits of the given tokens.
    pub logit_bias: Vec<(u32, f32)>,
    /// Makes draws reproducible.
    pub seed: Option<u64>,
    /// Return log-probabilities with this many top alternatives per token.
    pub logprobs: Option<usize>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: Vec::new(),
            seed: None,
            logprobs: None,
        }
    }
}

impl SamplingParams {
    /// Checks every field is in range for a vocabulary of `vocab` tokens.
    pub fn validate(&self, vocab: usize) -> Result<()> {
        let bad =
            |field: &str, why: &str| Err(EngineError::InvalidRequest(format!("{field} {why}")));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad("temperature", "must be a finite number ≥ 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "must be in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", "must be in [0, 1]");
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad("repetition_penalty", "must be a finite number > 0");
        }
        if !self.presence_penalty.is_finite() || !self.frequency_penalty.is_finite() {
            return bad("presence_penalty/frequency_penalty", "must be finite");
        }
        if let Some((id, _)) = self.logit_bias.iter().find(|(id, _)| *id as usize >= vocab) {
            return bad(
                "logit_bias",
                &format!("names token {id}, beyond the vocabulary of {vocab}"),
            );
        }
        if self.logit_bias.iter().any(|(_, b)| !b.is_finite()) {
            return bad("logit_bias", "values must be finite");
        }
        Ok(())
    }

    fn top_k_filters(&self, vocab: i32) -> bool {
        self.temperature > 0.0 && self.top_k > 0 && (self.top_k as i32) < vocab
    }

    fn top_p_filters(&self) -> bool {
        self.temperature > 0.0 && self.top_p < 1.0
    }

    fn min_p_filters(&self) -> bool {
        self.temperature > 0.0 && self.min_p > 0.0
    }
}

/// A sampled step: the chosen tokens and, if asked, log-probabilities (all lazy arrays).
pub struct Sampled {
    /// `[batch]` uint32 token ids.
    pub tokens: Array,
    /// `[batch]` log-probability of each chosen token.
    pub logprobs: Option<Array>,
    /// `[batch, n]` ids and log-probabilities of the `n` most likely tokens, unsorted
    /// (`n` is the most any row asked for).
    pub top: Option<(Array, Array)>,
}

/// One sequence's sampling: its parameters, random key and penalty state.
pub struct Sampler {
    params: SamplingParams,
    key: Option<Array>,
    /// `[1, vocab]` logit bias.
    bias: Option<Array>,
    /// `[1, vocab]`: tokens present in the prompt or generated so far, for the repetition
    /// penalty.
    seen: Option<Array>,
    /// `[1, vocab]`: occurrences of each token in the generated text, for presence and
    /// frequency penalties.
    counts: Option<Array>,
    vocab_ids: Option<Array>,
}

impl Sampler {
    /// A sampler for a vocabulary of `vocab` logits, primed with the prompt's tokens.
    pub fn new(params: SamplingParams, vocab: usize, prompt: &[u32]) -> Result<Sampler> {
        params.validate(vocab)?;
        let n = vocab as i32;
        let key = if params.temperature > 0.0 {
            let seed = params.seed.unwrap_or_else(fresh_seed);
            Some(random::key(seed)?)
        } else {
            None
        };
        let bias = if params.logit_bias.is_empty() {
            None
        } else {
            let mut dense = vec![0f32; vocab];
            for &(id, b) in &params.logit_bias {
                dense[id as usize] += b;
            }
            Some(Array::from_slice(&dense, &[1, n])?)
        };
        let seen = if params.repetition_penalty != 1.0 {
            let mut dense = vec![false; vocab];
            for &id in prompt.iter().filter(|&&id| (id as usize) < vocab) {
                dense[id as usize] = true;
            }
            Some(Array::from_slice(&dense, &[1, n])?)
        } else {
            None
        };
        let counts = if params.presence_penalty != 0.0 || params.frequency_penalty != 0.0 {
            Some(Array::zeros(&[1, n], Dtype::Float32)?)
        } else {
            None
        };
        let vocab_ids = if seen.is_some() || counts.is_some() {
            Some(Array::arange(0.0, f64::from(n), 1.0, Dtype::Uint32)?.reshape(&[1, n])?)
        } else {
            None
        };
        Ok(Sampler {
            params,
            key,
            bias,
            seen,
            counts,
            vocab_ids,
        })
    }

    /// Its parameters.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Whether it keeps penalty state, which [`Self::observe`] updates.
    pub fn has_penalties(&self) -> bool {
        self.vocab_ids.is_some()
    }

    /// Records the token just generated (`[1]`, lazy) for the penalties.
    pub fn observe(&mut self, token: &Array) -> Result<()> {
        let Some(ids) = &self.vocab_ids else {
            return Ok(());
        };
        let hit = ids.eq(&token.reshape(&[1, 1])?)?;
        if let Some(seen) = &self.seen {
            self.seen = Some(seen.logical_or(&hit)?);
        }
        if let Some(counts) = &self.counts {
            self.counts = Some(counts.add(&hit.astype(Dtype::Float32)?)?);
        }
        Ok(())
    }

    /// Whether it picks the most likely token with nothing to apply first but a mask,
    /// and wants no log-probabilities: a choice that needs no MLX graph.
    fn argmax_only(&self) -> bool {
        self.params.temperature == 0.0
            && self.params.logprobs.is_none()
            && self.bias.is_none()
            && !self.has_penalties()
    }

    fn next_key(&mut self) -> Result<Array> {
        let key = self
            .key
            .as_ref()
            .expect("a key exists whenever temperature > 0");
        let (next, sub) = random::split_once(key)?;
        self.key = Some(next);
        Ok(sub)
    }
}

/// Picks one token for each row of `logits` (`[rows, vocab]`) with that row's sampler;
/// `masks` (`rows × vocab`, 0 or −∞, row-major) restricts the rows a constraint holds.
/// Observes nothing: the caller feeds each chosen token back with [`Sampler::observe`].
/// Logits in host memory whose every row wants the most likely token, with nothing but a
/// mask to apply, are chosen on the host (as MLX's argmax would choose them); otherwise
/// every row is sampled on MLX.
pub fn sample(
    rows: &mut [&mut Sampler],
    logits: &Logits,
    masks: Option<&[f32]>,
) -> Result<Sampled> {
    let (count, vocab) = (logits.rows(), logits.vocab());
    if count != rows.len() || masks.is_some_and(|m| m.len() != count * vocab) {
        return Err(EngineError::StepFailed(format!(
            "{count} rows of {vocab} logits, {} samplers and {} mask values",
            rows.len(),
            masks.map_or(0, <[f32]>::len)
        )));
    }
    if let Some((values, _)) = logits.on_host() {
        if rows.iter().all(|r| r.argmax_only()) {
            return greedy_on_host(values, vocab, masks);
        }
    }
    let logits = logits.to_array()?.astype(Dtype::Float32)?;
    let (count, vocab) = (count as i32, vocab as i32);
    let column = |values: Vec<f32>| Array::from_slice(&values, &[count, 1]);
    let per_row = |f: &dyn Fn(&SamplingParams) -> f32| -> Result<Array> {
        Ok(column(rows.iter().map(|r| f(&r.params)).collect())?)
    };
    let (logprobs, top) = match rows.iter().filter_map(|r| r.params.logprobs).max() {
        None => (None, None),
        Some(n) => {
            let lp = logits.subtract(&logits.logsumexp(&[-1], true)?)?;
            let top = if n > 0 {
                Some(top_n(&lp, n.min(vocab as usize) as i32)?)
            } else {
                None
            };
            (Some(lp), top)
        }
    };

    let mut processed = logits;
    if rows.iter().any(|r| r.bias.is_some()) {
        processed = processed.add(&stack_rows(rows, vocab, |r| r.bias.as_ref())?)?;
    }
    if let Some(masks) = masks {
        processed = processed.add(&Array::from_slice(masks, &[count, vocab])?)?;
    }
    if rows.iter().any(|r| r.seen.is_some()) {
        let seen = stack_rows(rows, vocab, |r| r.seen.as_ref())?;
        let penalty = per_row(&|p| p.repetition_penalty)?;
        let penalised = Array::where_(
            &processed.lt(&Array::scalar(0f32))?,
            &processed.multiply(&penalty)?,
            &processed.divide(&penalty)?,
        )?;
        processed = Array::where_(&seen, &penalised, &processed)?;
    }
    if rows.iter().any(|r| r.counts.is_some()) {
        let counts = stack_rows(rows, vocab, |r| r.counts.as_ref())?;
        let present = counts.gt(&Array::scalar(0f32))?.astype(Dtype::Float32)?;
        let penalty = present
            .multiply(&per_row(&|p| p.presence_penalty)?)?
            .add(&counts.multiply(&per_row(&|p| p.frequency_penalty)?)?)?;
        processed = processed.subtract(&penalty)?;
    }

    let greedy = processed.argmax(-1, false)?;
    let tokens = if rows.iter().all(|r| r.params.temperature == 0.0) {
        greedy
    } else {
        let drawn = draw(rows, &processed, vocab)?;
        let is_greedy: Vec<bool> = rows.iter().map(|r| r.params.temperature == 0.0).collect();
        Array::where_(&Array::from_slice(&is_greedy, &[count])?, &greedy, &drawn)?
    }
    .astype(Dtype::Uint32)?;
    let chosen = match &logprobs {
        Some(lp) => Some(
            lp.take_along_axis(&tokens.reshape(&[-1, 1])?, -1)?
                .reshape(&[-1])?,
        ),
        None => None,
    };
    Ok(Sampled {
        tokens,
        logprobs: chosen,
        top,
    })
}

/// The most likely token of each row of `values` (row-major, `vocab` wide), after its
/// mask.
fn greedy_on_host(values: &[f32], vocab: usize, masks: Option<&[f32]>) -> Result<Sampled> {
    let mut masked = Vec::new();
    let tokens: Vec<u32> = values
        .chunks_exact(vocab)
        .enumerate()
        .map(|(row, values)| {
            let values = match masks {
                Some(masks) => {
                    let mask = &masks[row * vocab..(row + 1) * vocab];
                    masked.clear();
                    masked.extend(values.iter().zip(mask).map(|(v, m)| v + m));
                    &masked[..]
                }
                None => values,
            };
            argmax(values) as u32
        })
        .collect();
    Ok(Sampled {
        tokens: Array::from_slice(&tokens, &[tokens.len() as i32])?,
        logprobs: None,
        top: None,
    })
}

/// A draw for every row from its filtered distribution at its temperature (greedy rows
/// draw at temperature 1 from noise-free logits; their draw is not used): the Gumbel-max
/// trick, each row's noise drawn with its own key, so a row draws the same in any batch.
fn draw(rows: &mut [&mut Sampler], processed: &Array, vocab: i32) -> Result<Array> {
    let count = rows.len() as i32;
    let lp = processed.subtract(&processed.logsumexp(&[-1], true)?)?;
    let filtered = filter(rows, lp, vocab)?;
    let inverse: Vec<f32> = rows
        .iter()
        .map(|r| match r.params.temperature {
            t if t > 0.0 => 1.0 / t,
            _ => 1.0,
        })
        .collect();
    let scaled = filtered.multiply(&Array::from_slice(&inverse, &[count, 1])?)?;
    let mut noise = Vec::with_capacity(rows.len());
    for row in rows.iter_mut() {
        noise.push(if row.params.temperature > 0.0 {
            random::gumbel(&[1, vocab], Dtype::Float32, &row.next_key()?)?
        } else {
            Array::zeros(&[1, vocab], Dtype::Float32)?
        });
    }
    let noise = Array::concatenate(&noise.iter().collect::<Vec<_>>(), 0)?;
    Ok(noise.add(&scaled)?.argmax(-1, false)?)
}

/// top-k, top-p and min-p on log-probabilities, each for the rows that ask for it:
/// filtered-out tokens get −∞.
fn filter(rows: &[&mut Sampler], mut lp: Array, vocab: i32) -> Result<Array> {
    let count = rows.len() as i32;
    let neg_inf = Array::scalar(f32::NEG_INFINITY);
    let which = |f: &dyn Fn(&SamplingParams) -> bool| -> Vec<bool> {
        rows.iter().map(|r| f(&r.params)).collect()
    };
    // Only the rows in `on` take `filtered`.
    let for_rows = |on: &[bool], filtered: Array, lp: Array| -> Result<Array> {
        if on.iter().all(|&b| b) {
            return Ok(filtered);
        }
        Ok(Array::where_(
            &Array::from_slice(on, &[count, 1])?,
            &filtered,
            &lp,
        )?)
    };
    let top_k = which(&|p| p.top_k_filters(vocab));
    if top_k.contains(&true) {
        let descending = lp.negative()?.argsort(-1)?;
        let sorted = lp.take_along_axis(&descending, -1)?;
        let kth: Vec<u32> = rows
            .iter()
            .map(|r| r.params.top_k.clamp(1, vocab as usize) as u32 - 1)
            .collect();
        let kth = sorted.take_along_axis(&Array::from_slice(&kth, &[count, 1])?, -1)?;
        let filtered = Array::where_(&lp.lt(&kth)?, &neg_inf, &lp)?;
        lp = for_rows(&top_k, filtered, lp)?;
    }
    let top_p = which(&|p| p.top_p_filters());
    if top_p.contains(&true) {
        let p: Vec<f32> = rows.iter().map(|r| r.params.top_p).collect();
        let order = lp.negative()?.argsort(-1)?;
        let sorted = lp.take_along_axis(&order, -1)?;
        let before = sorted.exp()?.cumsum(-1, false, false)?;
        let kept = Array::where_(
            &before.lt(&Array::from_slice(&p, &[count, 1])?)?,
            &sorted,
            &Array::scalar(f32::INFINITY),
        )?;
        let threshold = kept.min(&[-1], true)?;
        let filtered = Array::where_(&lp.lt(&threshold)?, &neg_inf, &lp)?;
        lp = for_rows(&top_p, filtered, lp)?;
    }
    let min_p = which(&|p| p.min_p_filters());
    if min_p.contains(&true) {
        let ln: Vec<f32> = rows
            .iter()
            .map(|r| {
                if r.params.min_p > 0.0 {
                    r.params.min_p.ln()
                } else {
                    0.0
                }
            })
            .collect();
        let threshold = lp
            .max(&[-1], true)?
            .add(&Array::from_slice(&ln, &[count, 1])?)?;
        let filtered = Array::where_(&lp.lt(&threshold)?, &neg_inf, &lp)?;
        lp = for_rows(&min_p, filtered, lp)?;
    }
    Ok(lp)
}

/// `[rows, vocab]`: each row's `[1, vocab]` array from `part`, zeros (or false) where a
/// row has none.
fn stack_rows(
    rows: &[&mut Sampler],
    vocab: i32,
    part: impl Fn(&Sampler) -> Option<&Array>,
) -> Result<Array> {
    let some = rows
        .iter()
        .find_map(|r| part(r))
        .expect("called only when a row has one");
    let filler = Array::zeros(&[1, vocab], some.dtype())?;
    let parts: Vec<&Array> = rows.iter().map(|r| part(r).unwrap_or(&filler)).collect();
    if parts.len() == 1 {
        return Ok(parts[0].clone());
    }
    Ok(Array::concatenate(&parts, 0)?)
}

/// The `n` most likely tokens of each row: (`[batch, n]` ids, their log-probabilities).
fn top_n(lp: &Array, n: i32) -> Result<(Array, Array)> {
    let rows = lp.shape()[0];
    let ids = lp
        .negative()?
        .argpartition(n - 1, -1)?
        .slice(&[0, 0], &[rows, n], &[1, 1])?;
    let values = lp.take_along_axis(&ids, -1)?;
    Ok((ids, values))
}

fn fresh_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ COUNTER.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOCAB: usize = 300;

    fn greedy() -> Sampler {
        Sampler::new(SamplingParams::default(), VOCAB, &[]).unwrap()
    }

    fn tokens(rows: &mut [Sampler], logits: &Logits, masks: &[f32]) -> Vec<u32> {
        let mut rows: Vec<&mut Sampler> = rows.iter_mut().collect();
        let sampled = sample(&mut rows, logits, Some(masks)).unwrap();
        sampled.tokens.to_vec::<u32>().unwrap()
    }

    #[test]
    fn greedy_rows_of_host_logits_choose_as_mlx_does() {
        let mut values: Vec<f32> = (0..3 * VOCAB).map(|i| ((i * 53) % 97) as f32).collect();
        // Row 0: two equal largest values. Row 1: a NaN. Row 2: its largest masked out.
        values[10] = 500.0;
        values[250] = 500.0;
        values[VOCAB + 120] = f32::NAN;
        values[2 * VOCAB + 7] = 500.0;
        values[2 * VOCAB + 299] = 400.0;
        let mut masks = vec![0.0f32; 3 * VOCAB];
        masks[2 * VOCAB + 7] = f32::NEG_INFINITY;
        let device = Logits::device(Array::from_slice(&values, &[3, VOCAB as i32]).unwrap());
        let host = Logits::host(values, VOCAB).unwrap();

        let mut rows = [greedy(), greedy(), greedy()];
        let on_host = tokens(&mut rows, &host, &masks);
        assert_eq!(on_host, [10, 120, 299]);
        assert_eq!(on_host, tokens(&mut rows, &device, &masks));
    }

    #[test]
    fn only_rows_that_want_the_most_likely_token_alone_skip_mlx() {
        let with = |params: SamplingParams| Sampler::new(params, VOCAB, &[1, 2]).unwrap();
        assert!(greedy().argmax_only());
        for params in [
            SamplingParams {
                temperature: 0.7,
                ..Default::default()
            },
            SamplingParams {
                logprobs: Some(0),
                ..Default::default()
            },
            SamplingParams {
                logit_bias: vec![(3, 1.0)],
                ..Default::default()
            },
            SamplingParams {
                repetition_penalty: 1.1,
                ..Default::default()
            },
            SamplingParams {
                frequency_penalty: 0.5,
                ..Default::default()
            },
        ] {
            assert!(!with(params.clone()).argmax_only(), "{params:?}");
        }
    }

    #[test]
    fn logits_that_do_not_match_the_rows_are_refused() {
        let logits = Logits::host(vec![0.0; 2 * VOCAB], VOCAB).unwrap();
        let mut one = greedy();
        assert!(sample(&mut [&mut one], &logits, None).is_err());
        let (mut a, mut b) = (greedy(), greedy());
        assert!(sample(&mut [&mut a, &mut b], &logits, Some(&[0.0; VOCAB])).is_err());
    }
}
