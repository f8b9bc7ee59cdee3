//! Which llama.cpp stream a new sequence runs in. The KV cache has one stream of cells per
//! sequence id (as llama-server has one per slot), each attended only by its own sequence;
//! a stream is empty, running, or keeps a finished sequence for the prefix cache.
//!
//! llama.cpp gives each run of consecutive stream ids its own pass over the weights, so a
//! gap between running streams costs every running sequence a second pass on every step
//! until it closes: a new sequence runs beside the most running streams it can. A kept
//! sequence is worth what it saves the prompts to come, so a new prompt does not take one
//! over while a stream is empty, unless it continues that sequence (what the kept one
//! holds past their shared prefix is a turn's ending the new prompt rewrites). A prompt
//! that shares enough with a kept sequence gets a copy of its cells where it runs, when
//! that beats reading the shared tokens again and the kept one is worth keeping or is out
//! of the way. With no stream empty, the prompt takes over the best placed kept sequence:
//! among those, the one that saves it the most, or else the least recently used.

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
    /// A copy of the kept stream `from` in the stream `into` (empty, or keeping a sequence
    /// the copy replaces); the new sequence runs in the copy, cut back to its first
    /// `shared` tokens, and the kept one stays as it is — or, with `moves`, the kept
    /// sequence moves to the empty `into` and the new one runs in `from` (the one of the
    /// two beside more running streams).
    Copy {
        from: usize,
        into: usize,
        shared: usize,
        moves: bool,
    },
}

impl Placement {
    /// The stream the placement fills: the empty one, the one taken over, or the copy's
    /// destination.
    pub fn stream(&self) -> usize {
        match *self {
            Placement::Empty(stream) | Placement::TakeOver { stream, .. } => stream,
            Placement::Copy { into, .. } => into,
        }
    }

    /// Leading prompt tokens the new sequence finds in its stream.
    pub fn shared(&self) -> usize {
        match *self {
            Placement::Empty(_) => 0,
            Placement::TakeOver { shared, .. } | Placement::Copy { shared, .. } => shared,
        }
    }
}

/// The fewest shared tokens worth copying a kept sequence of `tokens` cells (out of its
/// stream, or out of host memory) rather than reading them again. A copy moves only the
/// cells in use, at memory speed, where reading a token again runs the whole model:
/// estimated from bandwidth and prefill speed, a cell moves in about a thousandth of the
/// time a token reads (the test model on a 2-core CPU: 23 KB a cell, about 2 µs each way,
/// against 3.3 ms a token; an 8B model: 131 KB, about 13 µs, against tens of
/// milliseconds). One token per 512 cells, and never fewer than 4, keeps a copy clear of
/// costing more than it saves.
pub(crate) fn copy_at(tokens: usize) -> usize {
    (tokens / 512).max(4)
}

/// Tokens past the shared prefix that make a kept sequence worth keeping beside the new
/// one: fewer are a turn's ending the next turn rewrites.
pub(crate) const TAIL_WORTH_KEEPING: usize = 16;

/// Where a new sequence goes, given what each stream holds and the fewest shared tokens
/// worth copying a kept sequence of so many tokens (`copy_at`); `None` when every stream
/// is running.
pub(crate) fn place(streams: &[Held], copy_at: impl Fn(usize) -> usize) -> Option<Placement> {
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
        } => Some((s, shared, tokens, last_used)),
        _ => None,
    };
    // The kept sequence that saves the most reading; among equals, the one beside the
    // most running streams, then the least recently used.
    let best = (0..streams.len())
        .filter_map(kept)
        .filter(|&(_, shared, _, _)| shared > 0)
        .max_by_key(|&(s, shared, _, last_used)| {
            (shared, neighbours(s), std::cmp::Reverse(last_used))
        });
    if let Some(into) = empty {
        let Some((from, shared, tokens, _)) = best else {
            return Some(Placement::Empty(into));
        };
        let continues = tokens - shared < TAIL_WORTH_KEEPING;
        return Some(match continues {
            // A continued turn runs where it is kept, unless a copy runs it beside more
            // running streams.
            true if shared >= copy_at(tokens) && neighbours(into) > neighbours(from) => {
                Placement::Copy {
                    from,
                    into,
                    shared,
                    moves: false,
                }
            }
            true => Placement::TakeOver {
                stream: from,
                shared,
            },
            false if shared >= copy_at(tokens) => Placement::Copy {
                from,
                into,
                shared,
                moves: neighbours(from) > neighbours(into),
            },
            false => Placement::Empty(into),
        });
    }
    // No stream is empty: the kept sequence beside the most running streams goes (among
    // equals, the one sharing the most with the prompt, then the least recently used),
    // replaced by a copy of one sharing more elsewhere when the copy is worth it.
    let (stream, reused, _, _) =
        (0..streams.len())
            .filter_map(kept)
            .max_by_key(|&(s, shared, _, last_used)| {
                (neighbours(s), shared, std::cmp::Reverse(last_used))
            })?;
    Some(match best {
        Some((from, shared, tokens, _)) if shared >= reused + copy_at(tokens) => Placement::Copy {
            from,
            into: stream,
            shared,
            moves: false,
        },
        _ => Placement::TakeOver {
            stream,
            shared: reused,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Held::{Empty, Running};

    fn take_over(stream: usize, shared: usize) -> Option<Placement> {
        Some(Placement::TakeOver { stream, shared })
    }

    fn kept(shared: usize, tokens: usize, last_used: u64) -> Held {
        Held::Kept {
            shared,
            tokens,
            last_used,
        }
    }

    #[test]
    fn an_empty_stream_beside_the_running_ones_is_taken_and_a_gap_closed_first() {
        assert_eq!(place(&[Empty, Empty], |_| 256), Some(Placement::Empty(0)));
        assert_eq!(
            place(&[Running, Empty, Empty, Running], |_| 256),
            Some(Placement::Empty(1))
        );
        assert_eq!(
            place(&[Running, Empty, Running, Empty], |_| 256),
            Some(Placement::Empty(1))
        );
        assert_eq!(
            place(&[Empty, Empty, Running], |_| 256),
            Some(Placement::Empty(1))
        );
        assert_eq!(place(&[Running, Running], |_| 256), None);
    }

    #[test]
    fn a_prompt_continuing_a_kept_turn_takes_it_over_or_a_copy_beside_the_running_ones() {
        let streams = [Empty, Empty, kept(2000, 2001, 1)];
        assert_eq!(place(&streams, |_| 256), take_over(2, 2000));
        let streams = [Running, kept(2000, 2001, 1), Empty];
        assert_eq!(place(&streams, |_| 256), take_over(1, 2000));
        // Taken over where it is kept, it would split the running streams' pass in two.
        let streams = [Running, Empty, Empty, kept(2000, 2001, 1)];
        assert_eq!(
            place(&streams, |_| 256),
            Some(Placement::Copy {
                from: 3,
                into: 1,
                shared: 2000,
                moves: false
            })
        );
        // A short turn is read again rather than copied.
        let streams = [Running, Empty, kept(20, 21, 1)];
        assert_eq!(place(&streams, |_| 256), take_over(2, 20));
    }

    #[test]
    fn a_long_shared_prefix_with_more_kept_after_it_is_copied() {
        // The new sequence runs in the copy unless the kept stream is the one beside the
        // running streams: then the kept sequence moves.
        let streams = [Running, Empty, kept(900, 1400, 1)];
        assert_eq!(
            place(&streams, |_| 256),
            Some(Placement::Copy {
                from: 2,
                into: 1,
                shared: 900,
                moves: false
            })
        );
        let streams = [Running, kept(900, 1400, 1), Empty];
        assert_eq!(
            place(&streams, |_| 256),
            Some(Placement::Copy {
                from: 1,
                into: 2,
                shared: 900,
                moves: true
            })
        );
        // With no empty stream it is taken over.
        let streams = [Running, kept(900, 1400, 1), Running];
        assert_eq!(place(&streams, |_| 256), take_over(1, 900));
    }

    #[test]
    fn a_prompt_going_elsewhere_leaves_a_kept_turn_whole_while_a_stream_is_empty() {
        // A shared system prompt is not worth another conversation's history...
        let streams = [Running, kept(30, 80, 1), Empty];
        assert_eq!(place(&streams, |_| 256), Some(Placement::Empty(2)));
        // ...but is worth copying a short sequence's cells (`copy_at`: 4 tokens for 80).
        assert_eq!(
            place(&streams, copy_at),
            Some(Placement::Copy {
                from: 1,
                into: 2,
                shared: 30,
                moves: true
            })
        );
        // ...until no stream is empty.
        let streams = [Running, kept(30, 80, 1), Running];
        assert_eq!(place(&streams, |_| 256), take_over(1, 30));
    }

    #[test]
    fn among_equal_prefixes_the_one_beside_the_running_streams_then_the_oldest() {
        let streams = [kept(20, 80, 5), Running, kept(20, 80, 9), kept(20, 80, 1)];
        assert_eq!(place(&streams, |_| 256), take_over(0, 20));
        let streams = [kept(20, 80, 5), kept(20, 80, 1)];
        assert_eq!(place(&streams, |_| 256), take_over(1, 20));
    }

    #[test]
    fn with_no_stream_empty_the_kept_one_beside_the_running_ones_goes() {
        // A few more shared tokens elsewhere are not worth a gap between the streams...
        let streams = [
            kept(38, 102, 1),
            kept(31, 102, 2),
            Running,
            Running,
            kept(31, 102, 3),
        ];
        assert_eq!(place(&streams, |_| 16), take_over(1, 31));
        // ...but worth copying a short sequence's cells beside them.
        assert_eq!(
            place(&streams, copy_at),
            Some(Placement::Copy {
                from: 0,
                into: 1,
                shared: 38,
                moves: false
            })
        );
        // A long shared prefix elsewhere is copied into it.
        let streams = [kept(900, 1400, 1), kept(0, 50, 2), Running];
        assert_eq!(
            place(&streams, |_| 16),
            Some(Placement::Copy {
                from: 0,
                into: 1,
                shared: 900,
                moves: false
            })
        );
    }

    #[test]
    fn with_no_stream_empty_the_least_recently_used_kept_one_goes() {
        let streams = [kept(0, 50, 7), Running, kept(0, 50, 3)];
        assert_eq!(place(&streams, |_| 256), take_over(2, 0));
    }
}
