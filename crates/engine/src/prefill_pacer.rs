//! How many prompt tokens the next prefill step takes. Chunks are sized by time, not by a
//! fixed token count: a client that goes away is noticed between chunks, and 512 tokens
//! are half a second on Metal but close to a minute on a small CPU. The pacer measures
//! the rate of the chunks read so far and sizes the next to take about the time the
//! scheduler's policy gives it (longer when nothing else runs, less while other streams
//! wait on it). The rate weighs each chunk by its tokens: a chunk of a few tokens is
//! mostly its step's fixed cost (or a step that also copied a KV stream) and moves it
//! little, while one of hundreds replaces what was measured before.

use std::time::Duration;

/// Sizes prefill chunks from the measured rate of the previous ones.
#[derive(Clone, Debug)]
pub struct PrefillPacer {
    /// Tokens per second of the chunks read so far, once one was timed.
    rate: Option<f64>,
    /// Tokens in the last chunk.
    last: usize,
    /// Tokens timed so far (the rate's weight, up to [`Self::MEMORY`]).
    measured: usize,
}

impl PrefillPacer {
    /// Tokens in the first chunk, before any rate is known: small enough to stay near
    /// the target on a slow CPU.
    pub const FIRST: usize = 8;
    /// Most tokens in one chunk (bounds the attention scores' memory).
    pub const MAX: usize = 512;
    /// Most a chunk grows over the previous one: a tiny chunk's rate understates the
    /// device, whose fixed per-step cost it is dominated by.
    pub const GROWTH: usize = 4;
    /// Tokens' worth of weight the rate measured so far keeps against a new chunk's.
    pub const MEMORY: usize = 64;

    /// The size of the next chunk, to take about `target` (the first one, before any rate
    /// is known: [`Self::FIRST`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use perch_engine::prefill_pacer::PrefillPacer;
    /// let mut pacer = PrefillPacer::default();
    /// assert_eq!(pacer.chunk_for(Duration::from_secs(1)), PrefillPacer::FIRST);
    /// pacer.record(100, Duration::from_millis(100)); // 1000 tok/s
    /// assert_eq!(pacer.chunk_for(Duration::from_millis(20)), 20);
    /// ```
    pub fn chunk_for(&self, target: Duration) -> usize {
        match self.rate {
            None => Self::FIRST,
            Some(rate) => {
                let fitting = (rate * target.as_secs_f64()) as usize;
                fitting.clamp(1, (self.last * Self::GROWTH).min(Self::MAX))
            }
        }
    }

    /// The most tokens, up to [`Self::MAX`], that read within `target` at the measured
    /// rate, however small the last chunk was: whether a prompt's rest is short enough to
    /// read in one chunk (a small chunk's rate understates the device, so this errs
    /// short; [`Self::FIRST`] before any rate is known).
    ///
    /// ```
    /// use std::time::Duration;
    /// use perch_engine::prefill_pacer::PrefillPacer;
    /// let mut pacer = PrefillPacer::default();
    /// pacer.record(8, Duration::from_millis(40)); // 200 tok/s
    /// assert_eq!(pacer.chunk_for(Duration::from_millis(250)), 32);
    /// assert_eq!(pacer.reads_within(Duration::from_millis(250)), 50);
    /// ```
    pub fn reads_within(&self, target: Duration) -> usize {
        match self.rate {
            None => Self::FIRST,
            Some(rate) => ((rate * target.as_secs_f64()) as usize).min(Self::MAX),
        }
    }

    /// Records that `tokens` took `elapsed`: the rate becomes the average time per token
    /// of this chunk and of what was measured before (worth the tokens it was measured
    /// on, up to [`Self::MEMORY`]), weighed by their tokens.
    ///
    /// ```
    /// use std::time::Duration;
    /// use perch_engine::prefill_pacer::PrefillPacer;
    /// let mut pacer = PrefillPacer::default();
    /// pacer.record(8, Duration::from_millis(800)); // 10 tok/s: 2 or 3 tokens per 250 ms
    /// assert_eq!(pacer.chunk_for(Duration::from_millis(250)), 2);
    /// ```
    pub fn record(&mut self, tokens: usize, elapsed: Duration) {
        let tokens = tokens.max(1);
        let per_token = elapsed.as_secs_f64().max(1e-6) / tokens as f64;
        let per_token = match self.rate {
            None => per_token,
            Some(rate) => {
                let (new, past) = (tokens as f64, self.measured.min(Self::MEMORY) as f64);
                (new * per_token + past / rate) / (new + past)
            }
        };
        self.rate = Some(1.0 / per_token);
        self.last = tokens;
        self.measured += tokens;
    }
}

impl Default for PrefillPacer {
    fn default() -> Self {
        PrefillPacer {
            rate: None,
            last: Self::FIRST,
            measured: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: Duration = Duration::from_millis(250);

    #[test]
    fn a_fast_device_grows_by_steps_up_to_the_maximum() {
        let mut pacer = PrefillPacer::default();
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let n = pacer.chunk_for(TARGET);
            sizes.push(n);
            pacer.record(n, Duration::from_millis(2));
        }
        assert_eq!(sizes, [8, 32, 128, 512, 512, 512]);
    }

    #[test]
    fn a_slow_device_gets_chunks_that_take_about_the_target() {
        let mut pacer = PrefillPacer::default();
        // 40 tokens per second: 10 tokens per 250 ms, reached in two steps.
        pacer.record(8, Duration::from_millis(200));
        assert_eq!(pacer.chunk_for(TARGET), 10);
        pacer.record(10, Duration::from_millis(250));
        assert_eq!(pacer.chunk_for(TARGET), 10);
    }

    #[test]
    fn a_very_slow_step_still_takes_one_token() {
        let mut pacer = PrefillPacer::default();
        pacer.record(8, Duration::from_secs(60));
        assert_eq!(pacer.chunk_for(TARGET), 1);
    }

    #[test]
    fn chunks_shrink_at_once_when_the_rate_drops() {
        let mut pacer = PrefillPacer::default();
        for _ in 0..4 {
            let n = pacer.chunk_for(TARGET);
            pacer.record(n, Duration::from_millis(2));
        }
        assert_eq!(pacer.chunk_for(TARGET), 512);
        // Long context: attention now dominates and 512 tokens take 5 s.
        pacer.record(512, Duration::from_secs(5));
        assert_eq!(pacer.chunk_for(TARGET), 28);
    }

    #[test]
    fn a_few_slow_tokens_move_the_rate_little() {
        let mut pacer = PrefillPacer::default();
        pacer.record(128, Duration::from_millis(320)); // 400 tok/s
        assert_eq!(pacer.reads_within(TARGET), 100);
        // 8 tokens at 100 tok/s: a step's fixed cost, or a stream copied beside them.
        pacer.record(8, Duration::from_millis(80));
        assert_eq!(pacer.reads_within(TARGET), 75);
    }

    #[test]
    fn a_slow_first_chunk_counts_for_its_own_tokens_only() {
        let mut pacer = PrefillPacer::default();
        // The model's first batch: 8 tokens at 60 tok/s, paying for its weights' pages.
        pacer.record(8, Duration::from_millis(134));
        // Then 32 at 250 tok/s: 40 tokens in 262 ms, not 64 tokens' worth of the first.
        pacer.record(32, Duration::from_millis(128));
        assert_eq!(pacer.reads_within(TARGET), 38);
    }
}
