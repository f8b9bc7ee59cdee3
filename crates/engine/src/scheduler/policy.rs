//! How the scheduler shares one model between sequences: how many run at once, which
//! waiting request starts next, and how long each prefill chunk may take. A plain struct
//! with no model behind it, so the rules are tested on their own.
//!
//! Requests start in arrival order while places are free; started prompts are read in
//! chunks, taking turns, one chunk between two decode steps of the running streams. With
//! nothing else running a chunk may take [`SchedulePolicy::idle_chunk`] (the longest a
//! cancelled prompt keeps computing); while streams run, a chunk takes at most
//! [`SchedulePolicy::interleave`] of a decode step, so a long prompt arriving slows their
//! tokens by at most that share instead of stalling them. A prompt whose rest reads within
//! [`SchedulePolicy::short_prompt`] is read whole: a chat's new turn after its cached
//! prefix pauses the streams once, briefly, instead of trickling in a token or two a step.
//! Where the backend batches prompts, short prompts waiting together are read in one step
//! while they fit in [`SchedulePolicy::idle_chunk`]: the streams pause once for all of
//! them, and they start decoding together.

use std::time::Duration;

/// The rules.
#[derive(Clone, Debug, PartialEq)]
pub struct SchedulePolicy {
    /// Most sequences admitted at once (reading their prompt or generating).
    pub max_sequences: usize,
    /// The time a prefill chunk may take when no stream is waiting on it, and the time
    /// the short prompts read together in one step may take.
    pub idle_chunk: Duration,
    /// A prefill chunk's time as a share of one decode step, while streams run.
    pub interleave: f64,
    /// The shortest time a chunk is given, so a prompt always moves on.
    pub min_chunk: Duration,
    /// A prompt whose unread rest takes at most this long is read in one chunk, streams
    /// or not. (Several short prompts waiting together may pause the streams once for up
    /// to [`Self::idle_chunk`], where the backend reads them in one batch.)
    pub short_prompt: Duration,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        SchedulePolicy {
            max_sequences: 4,
            idle_chunk: Duration::from_secs(1),
            interleave: 0.5,
            min_chunk: Duration::from_millis(1),
            short_prompt: Duration::from_millis(250),
        }
    }
}

/// Where the sequences stand before a scheduling decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Generating tokens.
    pub decoding: usize,
    /// Started, with part of their prompt read.
    pub prefilling: usize,
    /// Arrived, not started.
    pub waiting: usize,
}

impl SchedulePolicy {
    /// A policy admitting at most `max_sequences` at once, the other rules as default.
    pub fn with_sequences(max_sequences: usize) -> Self {
        SchedulePolicy {
            max_sequences: max_sequences.max(1),
            ..SchedulePolicy::default()
        }
    }

    /// Whether the oldest waiting request starts now: when a place is free (one being
    /// read holds a place too).
    ///
    /// ```
    /// use perch_engine::scheduler::policy::{Occupancy, SchedulePolicy};
    /// let policy = SchedulePolicy::with_sequences(2);
    /// let now = |decoding, prefilling| Occupancy { decoding, prefilling, waiting: 1 };
    /// assert!(policy.starts_next(now(1, 0)));
    /// assert!(policy.starts_next(now(0, 1)), "prompts are read side by side");
    /// assert!(!policy.starts_next(now(1, 1)), "both places taken");
    /// ```
    pub fn starts_next(&self, now: Occupancy) -> bool {
        now.waiting > 0 && now.decoding + now.prefilling < self.max_sequences
    }

    /// How long the next prefill chunk may take, given the running streams and the time
    /// their last decode step took (unknown before the first).
    ///
    /// ```
    /// use std::time::Duration;
    /// use perch_engine::scheduler::policy::SchedulePolicy;
    /// let policy = SchedulePolicy::default();
    /// assert_eq!(policy.chunk_time(0, None), Duration::from_secs(1));
    /// let step = Duration::from_millis(20);
    /// assert_eq!(policy.chunk_time(3, Some(step)), Duration::from_millis(10));
    /// ```
    pub fn chunk_time(&self, decoding: usize, decode_step: Option<Duration>) -> Duration {
        if decoding == 0 {
            return self.idle_chunk;
        }
        decode_step
            .map_or(self.min_chunk, |step| step.mul_f64(self.interleave))
            .clamp(self.min_chunk, self.idle_chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_start_while_places_are_free() {
        let policy = SchedulePolicy::with_sequences(3);
        let mut now = Occupancy {
            waiting: 5,
            ..Occupancy::default()
        };
        let mut started = 0;
        while policy.starts_next(now) {
            now.waiting -= 1;
            now.prefilling += 1;
            started += 1;
        }
        assert_eq!((started, now.waiting), (3, 2));
        // Read prompts decode; the places stay taken.
        now.decoding += now.prefilling;
        now.prefilling = 0;
        assert!(!policy.starts_next(now));
        // One stream ends: the next waiting request starts.
        now.decoding -= 1;
        assert!(policy.starts_next(now));
        assert!(!policy.starts_next(Occupancy::default()), "nothing waits");
    }

    #[test]
    fn chunks_shrink_to_a_share_of_the_decode_step_while_streams_run() {
        let policy = SchedulePolicy::default();
        let idle = policy.chunk_time(0, Some(Duration::from_millis(5)));
        assert_eq!(idle, policy.idle_chunk, "nothing to hold back");
        assert_eq!(
            policy.chunk_time(8, Some(Duration::from_millis(40))),
            Duration::from_millis(20)
        );
        // Before any step is timed, and on a very fast device: the floor.
        assert_eq!(policy.chunk_time(1, None), policy.min_chunk);
        assert_eq!(
            policy.chunk_time(1, Some(Duration::from_micros(100))),
            policy.min_chunk
        );
        // A very slow step never gives a chunk more than an idle one.
        assert_eq!(
            policy.chunk_time(1, Some(Duration::from_secs(10))),
            policy.idle_chunk
        );
    }

    #[test]
    fn at_least_one_sequence_runs() {
        assert_eq!(SchedulePolicy::with_sequences(0).max_sequences, 1);
    }
}
