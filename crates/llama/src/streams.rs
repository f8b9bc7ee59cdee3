//! Which llama.cpp stream a new sequence runs in. The KV cache has one stream of cells per
//! sequence id (as llama-server has one per slot), each attended only by its own sequence;
//! a stream is empty, running, or keeps a finished sequence for the prefix cache.
//!
//! Two things decide: what a kept sequence saves the prompt reading, and whether the
//! running streams stay consecutive. llama.cpp splits a step into one pass over the
//! weights per run of consecutive stream ids, so a gap costs every running sequence a
//! second pass on every step until it closes. Streams copy only whole (a partial copy
//! across streams is not supported), so a kept sequence is either taken over by the
//! prompt that continues it or, when it shares much and holds more worth keeping, copied
//! into an empty stream.

/// What a stream holds, as a new prompt sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Held {
    Empty,
    Running,
    /// A finished sequence of `tokens`, the first `shared` of them the prompt's own;
    /// `last_used` orders kept ones by recency (higher is more recent).
    Kept {
        shared: usize,
        tokens: usize,
        last_used: u64,
    },
}

/// Where a new sequence runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Placement {
    /// An empty stream.
    Empty(usize),
    /// A kept sequence's stream, cut back to its first `shared` tokens (0: dropped).
    TakeOver { stream: usize, shared: usize },
    /// A copy of the kept stream `from` in the empty stream `into`, cut back to its first
    /// `shared` tokens; the kept one stays as it is.
    Copy {
        from: usize,
        into: usize,
        shared: usize,
    },
}

/// Prompt tokens that are worth a gap in the running streams: reading them once costs
/// about what a second pass over the weights on every step of a reply does.
const GAP_TOKENS: usize = 16;

/// Shared tokens worth a whole-stream copy (a copy moves every cell of the stream, used
/// or not: tens of milliseconds for a small model on a CPU).
const COPY_AT: usize = 256;

/// Tokens past the shared prefix that make a kept sequence worth keeping beside the new
/// one rather than taking over: less than that is a turn's ending the next turn rewrites.
const TAIL_WORTH_KEEPING: usize = 16;

/// Where a new sequence goes, given what each stream holds; `None` when every stream is
/// running.
pub(crate) fn place(streams: &[Held]) -> Option<Placement> {
    let neighbours = |s: usize| -> usize {
        let running = |i: Option<usize>| i.and_then(|i| streams.get(i)) == Some(&Held::Running);
        running(s.checked_sub(1)) as usize + running(Some(s + 1)) as usize
    };
    // The empty stream beside the most running ones, the lowest first.
    let empty = (0..streams.len())
        .filter(|&s| streams[s] == Held::Empty)
        .max_by_key(|&s| (neighbours(s), std::cmp::Reverse(s)));
    let kept = |s: usize| match streams[s] {
        Held::Kept {
            shared,
            tokens,
            last_used,
        } => Some((shared, tokens, last_used)),
        _ => None,
    };
    // The kept sequence that saves the most reading; among equals, the one beside the
    // most running streams, then the least recently used.
    let best = (0..streams.len())
        .filter_map(|s| kept(s).map(|k| (s, k)))
        .filter(|&(_, (shared, _, _))| shared > 0)
        .max_by_key(|&(s, (shared, _, last_used))| {
            (shared, neighbours(s), std::cmp::Reverse(last_used))
        });
    if let Some((stream, (shared, tokens, _))) = best {
        match empty {
            Some(into) if shared >= COPY_AT && tokens - shared >= TAIL_WORTH_KEEPING => {
                return Some(Placement::Copy {
                    from: stream,
                    into,
                    shared,
                })
            }
            Some(e) if shared < GAP_TOKENS && neighbours(e) > neighbours(stream) => {}
            _ => return Some(Placement::TakeOver { stream, shared }),
        }
    }
    if let Some(e) = empty {
        return Some(Placement::Empty(e));
    }
    // Every stream runs or keeps something no use to this prompt: the least recently
    // used kept one goes.
    (0..streams.len())
        .filter_map(|s| kept(s).map(|(_, _, last_used)| (s, last_used)))
        .min_by_key(|&(s, last_used)| (last_used, std::cmp::Reverse(neighbours(s))))
        .map(|(stream, _)| Placement::TakeOver { stream, shared: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Held::{Empty, Running};

    fn kept(shared: usize, tokens: usize, last_used: u64) -> Held {
        Held::Kept {
            shared,
            tokens,
            last_used,
        }
    }

    #[test]
    fn an_empty_stream_beside_the_running_ones_is_taken_and_a_gap_closed_first() {
        assert_eq!(place(&[Empty, Empty]), Some(Placement::Empty(0)));
        assert_eq!(
            place(&[Running, Empty, Empty, Running]),
            Some(Placement::Empty(1))
        );
        assert_eq!(
            place(&[Running, Empty, Running, Empty]),
            Some(Placement::Empty(1))
        );
        assert_eq!(place(&[Empty, Empty, Running]), Some(Placement::Empty(1)));
        assert_eq!(place(&[Running, Running]), None);
    }

    #[test]
    fn a_prompt_continuing_a_kept_turn_takes_it_over_wherever_it_is() {
        let streams = [Running, Empty, Empty, kept(2000, 2001, 1)];
        assert_eq!(
            place(&streams),
            Some(Placement::TakeOver {
                stream: 3,
                shared: 2000
            })
        );
    }

    #[test]
    fn a_long_shared_prefix_with_more_kept_after_it_is_copied() {
        let streams = [Running, kept(900, 1400, 1), Empty];
        assert_eq!(
            place(&streams),
            Some(Placement::Copy {
                from: 1,
                into: 2,
                shared: 900
            })
        );
        // With no empty stream it is taken over.
        let streams = [Running, kept(900, 1400, 1), Running];
        assert_eq!(
            place(&streams),
            Some(Placement::TakeOver {
                stream: 1,
                shared: 900
            })
        );
    }

    #[test]
    fn a_few_shared_tokens_do_not_open_a_gap() {
        // A shared system prompt is not worth a second pass on every step...
        let streams = [Running, Empty, Empty, kept(10, 80, 1)];
        assert_eq!(place(&streams), Some(Placement::Empty(1)));
        // ...but is taken where it opens none.
        let streams = [Running, kept(10, 80, 1), Empty];
        assert_eq!(
            place(&streams),
            Some(Placement::TakeOver {
                stream: 1,
                shared: 10
            })
        );
    }

    #[test]
    fn among_equal_prefixes_the_one_beside_the_running_streams_then_the_oldest() {
        let streams = [kept(20, 80, 5), Running, kept(20, 80, 9), kept(20, 80, 1)];
        assert_eq!(
            place(&streams),
            Some(Placement::TakeOver {
                stream: 0,
                shared: 20
            })
        );
        let streams = [kept(20, 80, 5), kept(20, 80, 1)];
        assert_eq!(
            place(&streams),
            Some(Placement::TakeOver {
                stream: 1,
                shared: 20
            })
        );
    }

    #[test]
    fn with_no_stream_empty_the_least_recently_used_kept_one_goes() {
        let streams = [kept(0, 50, 7), Running, kept(0, 50, 3)];
        assert_eq!(
            place(&streams),
            Some(Placement::TakeOver {
                stream: 2,
                shared: 0
            })
        );
    }
}
