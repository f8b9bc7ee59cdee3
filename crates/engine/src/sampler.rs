//! Turning logits into the next token, on the device: logit bias, a constraint's mask,
//! repetition / presence / frequency penalties, then top-k, top-p and min-p filtering, then greedy choice
//! (temperature 0) or a draw at the given temperature from a seeded key. Log-probabilities
//! of the chosen token and its top alternatives come from the model's unmodified
//! distribution.

use perch_mlx::{random, Array, Dtype};

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
}

/// A sampled step: the chosen tokens and, if asked, log-probabilities (all lazy arrays).
pub struct Sampled {
    /// `[batch]` uint32 token ids.
    pub tokens: Array,
    /// `[batch]` log-probability of each chosen token.
    pub logprobs: Option<Array>,
    /// `[batch, n]` ids and log-probabilities of the `n` most likely tokens, unsorted.
    pub top: Option<(Array, Array)>,
}

/// Per-sequence sampling state (random key, penalty counts).
pub struct Sampler {
    params: SamplingParams,
    vocab: i32,
    key: Option<Array>,
    bias: Option<Array>,
    /// Tokens present in the prompt or generated so far, for the repetition penalty.
    seen: Option<Array>,
    /// Occurrences of each token in the generated text, for presence/frequency penalties.
    counts: Option<Array>,
    vocab_ids: Option<Array>,
    /// Added to the logits at the next step only (a constraint's mask).
    mask: Option<Array>,
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
            vocab: n,
            key,
            bias,
            seen,
            counts,
            vocab_ids,
            mask: None,
        })
    }

    /// Restricts the next step to the tokens where `mask` (`[1, vocab]`, 0 or −∞) is 0.
    pub fn mask_next(&mut self, mask: Array) {
        self.mask = Some(mask);
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

    /// Picks the next token from `logits` (`[batch, vocab]`).
    pub fn sample(&mut self, logits: &Array) -> Result<Sampled> {
        let logits = logits.astype(Dtype::Float32)?;
        let (logprobs, top) = match self.params.logprobs {
            None => (None, None),
            Some(n) => {
                let lp = logits.subtract(&logits.logsumexp(&[-1], true)?)?;
                let top = if n > 0 {
                    Some(top_n(&lp, n.min(self.vocab as usize) as i32)?)
                } else {
                    None
                };
                (Some(lp), top)
            }
        };
        let processed = self.process(logits)?;
        let tokens = if self.params.temperature == 0.0 {
            processed.argmax(-1, false)?
        } else {
            let lp = processed.subtract(&processed.logsumexp(&[-1], true)?)?;
            let filtered = self.filter(lp)?;
            let scaled = filtered.multiply(&Array::scalar(1.0 / self.params.temperature))?;
            random::categorical(&scaled, -1, &self.next_key()?)?.astype(Dtype::Uint32)?
        };
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

    /// Bias, penalties and the mask.
    fn process(&mut self, mut logits: Array) -> Result<Array> {
        let p = &self.params;
        if let Some(bias) = &self.bias {
            logits = logits.add(bias)?;
        }
        if let Some(mask) = self.mask.take() {
            logits = logits.add(&mask)?;
        }
        if let Some(seen) = &self.seen {
            let penalty = Array::scalar(p.repetition_penalty);
            let penalised = Array::where_(
                &logits.lt(&Array::scalar(0f32))?,
                &logits.multiply(&penalty)?,
                &logits.divide(&penalty)?,
            )?;
            logits = Array::where_(seen, &penalised, &logits)?;
        }
        if let Some(counts) = &self.counts {
            let present = counts.gt(&Array::scalar(0f32))?.astype(Dtype::Float32)?;
            let penalty = present
                .multiply(&Array::scalar(p.presence_penalty))?
                .add(&counts.multiply(&Array::scalar(p.frequency_penalty))?)?;
            logits = logits.subtract(&penalty)?;
        }
        Ok(logits)
    }

    /// top-k, top-p and min-p on log-probabilities: filtered-out tokens get −∞.
    fn filter(&self, mut lp: Array) -> Result<Array> {
        let p = &self.params;
        let neg_inf = Array::scalar(f32::NEG_INFINITY);
        if p.top_k > 0 && (p.top_k as i32) < self.vocab {
            let kth = lp.topk(p.top_k as i32, -1)?.min(&[-1], true)?;
            lp = Array::where_(&lp.lt(&kth)?, &neg_inf, &lp)?;
        }
        if p.top_p < 1.0 {
            let order = lp.negative()?.argsort(-1)?;
            let sorted = lp.take_along_axis(&order, -1)?;
            let before = sorted.exp()?.cumsum(-1, false, false)?;
            let kept = Array::where_(
                &before.lt(&Array::scalar(p.top_p))?,
                &sorted,
                &Array::scalar(f32::INFINITY),
            )?;
            let threshold = kept.min(&[-1], true)?;
            lp = Array::where_(&lp.lt(&threshold)?, &neg_inf, &lp)?;
        }
        if p.min_p > 0.0 {
            let threshold = lp.max(&[-1], true)?.add(&Array::scalar(p.min_p.ln()))?;
            lp = Array::where_(&lp.lt(&threshold)?, &neg_inf, &lp)?;
        }
        Ok(lp)
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
