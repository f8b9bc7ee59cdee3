//! A compiled constraint travelling with its request, and the same constraint at work in a
//! generation: the mask for the next step, and the chosen token fed back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llguidance::Matcher;

use crate::{EngineError, Result};

/// A grammar compiled for one request (see [`crate::Engine::constrain`]). Cloning shares
/// the compiled grammar; each generation that starts from it (one per choice of a request
/// with `n` > 1) works on its own copy of the matcher.
#[derive(Clone)]
pub struct Constraint(Arc<Matcher>);

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Constraint")
    }
}

impl Constraint {
    pub(crate) fn new(matcher: Matcher) -> Constraint {
        Constraint(Arc::new(matcher))
    }

    /// Whether `tokens` make a whole output the grammar accepts (to check a grammar
    /// against a model family's own examples).
    pub fn accepts(&self, tokens: &[u32]) -> bool {
        let mut matcher = self.0.deep_clone();
        matcher.consume_tokens(tokens).is_ok() && matcher.is_accepting().unwrap_or(false)
    }

    /// A fresh matcher of its own, for one generation.
    pub(crate) fn start(&self) -> ActiveConstraint {
        ActiveConstraint {
            matcher: self.0.deep_clone(),
            mask_time: Duration::ZERO,
        }
    }
}

/// A constraint at work in one generation.
pub(crate) struct ActiveConstraint {
    matcher: Matcher,
    /// Host time spent computing masks.
    pub mask_time: Duration,
}

impl ActiveConstraint {
    /// Writes the additive mask for the next token into `row` (one slot per logit): 0
    /// where allowed, −∞ elsewhere (logits past the tokenizer's vocabulary are never
    /// allowed).
    pub fn fill_mask(&mut self, row: &mut [f32]) -> Result<()> {
        let started = Instant::now();
        let allowed = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| EngineError::Constraint(e.to_string()))?;
        row.fill(f32::NEG_INFINITY);
        allowed.iter_set_entries(|id| {
            if let Some(slot) = row.get_mut(id) {
                *slot = 0.0;
            }
        });
        self.mask_time += started.elapsed();
        Ok(())
    }

    /// Feeds the chosen token; an end-of-sequence token the constraint allowed ends it.
    pub fn accept(&mut self, token: u32) -> Result<()> {
        if self.matcher.is_stopped() {
            return Ok(());
        }
        self.matcher
            .consume_token(token)
            .map_err(|e| EngineError::Constraint(e.to_string()))
    }
}
