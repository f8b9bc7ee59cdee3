//! The prefix cache: the key/value state of recently finished sequences, kept so that a
//! new prompt that starts the same way (the next turn of a conversation, an agent's
//! growing transcript, a shared system prompt) skips reading what it shares. Entries are
//! whole token sequences; a lookup finds the one sharing the longest prefix with a prompt.
//! Least recently used entries go first when the cache must shrink, which the scheduler
//! asks for before its running sequences would run short of their planned memory.
//!
//! The cache holds whatever a backend snapshots (`S`); it counts tokens, not bytes, and
//! knows nothing of models, so its policy is tested on its own.

/// An engine whose KV cache is allocated whole (llama.cpp) saves a kept sequence to host
/// memory when its place in the cache is wanted; the saved ones take at most the cache's
/// size divided by this, which the memory planner counts beside the cache.
pub const SAVED_KV_DIVISOR: usize = 8;

/// One kept sequence.
struct Entry<S> {
    tokens: Vec<u32>,
    snapshot: S,
    last_used: u64,
}

/// Token sequences and their snapshots, least recently used evicted first.
pub struct PrefixCache<S> {
    entries: Vec<Entry<S>>,
    clock: u64,
}

/// What a lookup found: a snapshot and how many of the prompt's leading tokens it holds.
pub struct PrefixHit<'a, S> {
    /// The kept state.
    pub snapshot: &'a S,
    /// Leading prompt tokens it covers (always fewer than the prompt's, so at least one
    /// token is left to run for the first logits).
    pub tokens: usize,
}

/// An entry as a prompt finds it.
pub struct Candidate<'a, S> {
    /// The kept state.
    pub snapshot: &'a S,
    /// Leading prompt tokens it covers (fewer than the prompt's, as in `PrefixHit`).
    pub shared: usize,
    /// Tokens it holds.
    pub tokens: usize,
    /// When it was last used: higher is more recent.
    pub last_used: u64,
}

impl<S> Default for PrefixCache<S> {
    fn default() -> Self {
        PrefixCache {
            entries: Vec::new(),
            clock: 0,
        }
    }
}

impl<S> PrefixCache<S> {
    /// Tokens held over all entries.
    pub fn tokens(&self) -> usize {
        self.entries.iter().map(|e| e.tokens.len()).sum()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry sharing the longest prefix with `prompt` (marked as just used), if any
    /// shares at least one token.
    ///
    /// ```
    /// use perch_engine::prefix_cache::PrefixCache;
    /// let mut cache = PrefixCache::default();
    /// cache.insert(vec![1, 2, 3, 4], "turn one");
    /// let hit = cache.lookup(&[1, 2, 3, 9, 9]).unwrap();
    /// assert_eq!((*hit.snapshot, hit.tokens), ("turn one", 3));
    /// // A prompt the entry covers whole still leaves its last token to run.
    /// assert_eq!(cache.lookup(&[1, 2, 3]).unwrap().tokens, 2);
    /// assert!(cache.lookup(&[7]).is_none());
    /// ```
    pub fn lookup(&mut self, prompt: &[u32]) -> Option<PrefixHit<'_, S>> {
        let (at, shared) = self.best_at(prompt).map(|(i, c)| (i, c.shared))?;
        self.clock += 1;
        let entry = &mut self.entries[at];
        entry.last_used = self.clock;
        Some(PrefixHit {
            snapshot: &entry.snapshot,
            tokens: shared,
        })
    }

    /// The entry [`Self::lookup`] would find for `prompt`, without marking it as used.
    ///
    /// ```
    /// use perch_engine::prefix_cache::PrefixCache;
    /// let mut cache = PrefixCache::default();
    /// cache.insert(vec![1, 2, 3, 4], "a");
    /// let best = cache.best(&[1, 2, 9]).unwrap();
    /// assert_eq!((*best.snapshot, best.shared, best.tokens), ("a", 2, 4));
    /// assert!(cache.best(&[7]).is_none());
    /// ```
    pub fn best<'a>(&'a self, prompt: &'a [u32]) -> Option<Candidate<'a, S>> {
        self.best_at(prompt).map(|(_, c)| c)
    }

    /// The entry sharing the longest prefix with `prompt` (among equals, the most
    /// recently used), if any shares a token, with its index.
    fn best_at<'a>(&'a self, prompt: &'a [u32]) -> Option<(usize, Candidate<'a, S>)> {
        self.candidates(prompt)
            .enumerate()
            .filter(|(_, c)| c.shared > 0)
            .max_by_key(|(_, c)| (c.shared, c.last_used))
    }

    /// Every entry as `prompt` finds it, for a backend that weighs more than the longest
    /// shared prefix in choosing one (nothing is marked as used: see `touch`).
    ///
    /// ```
    /// use perch_engine::prefix_cache::PrefixCache;
    /// let mut cache = PrefixCache::default();
    /// cache.insert(vec![1, 2, 3, 4], "a");
    /// cache.insert(vec![5, 6], "b");
    /// let found: Vec<_> = cache.candidates(&[1, 2, 9]).map(|c| (*c.snapshot, c.shared, c.tokens)).collect();
    /// assert_eq!(found, [("a", 2, 4), ("b", 0, 2)]);
    /// ```
    pub fn candidates<'a>(&'a self, prompt: &'a [u32]) -> impl Iterator<Item = Candidate<'a, S>> {
        let usable = prompt.len().saturating_sub(1);
        self.entries.iter().map(move |e| Candidate {
            snapshot: &e.snapshot,
            shared: common_prefix(&e.tokens, prompt).min(usable),
            tokens: e.tokens.len(),
            last_used: e.last_used,
        })
    }

    /// Marks the entry whose snapshot `is` picks out as just used.
    pub fn touch(&mut self, is: impl Fn(&S) -> bool) {
        self.mark_used(is);
    }

    /// Gives the entry whose snapshot `is` picks out the snapshot `to` instead (its state
    /// moved), marking it as just used.
    ///
    /// ```
    /// use perch_engine::prefix_cache::PrefixCache;
    /// let mut cache = PrefixCache::default();
    /// cache.insert(vec![1, 2], 7);
    /// cache.rekey(|s| *s == 7, 8);
    /// assert_eq!(*cache.lookup(&[1, 2, 3]).unwrap().snapshot, 8);
    /// ```
    pub fn rekey(&mut self, is: impl Fn(&S) -> bool, to: S) {
        if let Some(entry) = self.mark_used(is) {
            entry.snapshot = to;
        }
    }

    /// The entry whose snapshot `is` picks out, marked as just used.
    fn mark_used(&mut self, is: impl Fn(&S) -> bool) -> Option<&mut Entry<S>> {
        self.clock += 1;
        let entry = self.entries.iter_mut().find(|e| is(&e.snapshot))?;
        entry.last_used = self.clock;
        Some(entry)
    }

    /// Whether an entry holds all of `tokens` (keeping them would add nothing).
    ///
    /// ```
    /// use perch_engine::prefix_cache::PrefixCache;
    /// let mut cache = PrefixCache::default();
    /// cache.insert(vec![1, 2, 3], 'a');
    /// assert!(cache.covers(&[1, 2]) && !cache.covers(&[1, 2, 3, 4]));
    /// ```
    pub fn covers(&self, tokens: &[u32]) -> bool {
        self.entries.iter().any(|e| e.tokens.starts_with(tokens))
    }

    /// Keeps `snapshot`, the state after `tokens`. An entry that is a prefix of `tokens`
    /// goes (the new one covers it); if an entry already covers `tokens`, that one is
    /// kept instead and marked as just used. Returns the snapshots no longer kept, for a
    /// backend whose snapshots hold something to give back.
    pub fn insert(&mut self, tokens: Vec<u32>, snapshot: S) -> Vec<S> {
        if tokens.is_empty() {
            return vec![snapshot];
        }
        self.clock += 1;
        if let Some(covering) = self
            .entries
            .iter_mut()
            .find(|e| e.tokens.starts_with(&tokens))
        {
            covering.last_used = self.clock;
            return vec![snapshot];
        }
        let (covered, kept): (Vec<_>, Vec<_>) = self
            .entries
            .drain(..)
            .partition(|e| tokens.starts_with(&e.tokens));
        self.entries = kept;
        self.entries.push(Entry {
            tokens,
            snapshot,
            last_used: self.clock,
        });
        covered.into_iter().map(|e| e.snapshot).collect()
    }

    /// Drops the least recently used entry; its snapshot.
    fn evict_oldest(&mut self) -> Option<S> {
        let oldest = self
            .entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.last_used)
            .map(|(i, _)| i)?;
        Some(self.entries.swap_remove(oldest).snapshot)
    }

    /// Takes the entry whose snapshot `is` picks out of the cache (its new owner extends
    /// it in place); its tokens and snapshot.
    ///
    /// ```
    /// use perch_engine::prefix_cache::PrefixCache;
    /// let mut cache = PrefixCache::default();
    /// cache.insert(vec![1, 2], 7);
    /// assert_eq!(cache.take(|s| *s == 7), Some((vec![1, 2], 7)));
    /// assert!(cache.is_empty());
    /// ```
    pub fn take(&mut self, is: impl Fn(&S) -> bool) -> Option<(Vec<u32>, S)> {
        let at = self.entries.iter().position(|e| is(&e.snapshot))?;
        let entry = self.entries.swap_remove(at);
        Some((entry.tokens, entry.snapshot))
    }

    /// Drops least recently used entries until at most `limit` tokens are held; their
    /// snapshots.
    pub fn shrink_to(&mut self, limit: usize) -> Vec<S> {
        let mut dropped = Vec::new();
        while self.tokens() > limit {
            match self.evict_oldest() {
                Some(snapshot) => dropped.push(snapshot),
                None => break,
            }
        }
        dropped
    }
}

/// How many leading tokens `a` and `b` share.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_shared_prefix_wins_and_ties_go_to_the_most_recent() {
        let mut cache = PrefixCache::default();
        cache.insert(vec![1, 2, 3], 'a');
        cache.insert(vec![1, 2, 4, 5], 'b');
        cache.insert(vec![1, 2, 3, 6], 'c');
        // 'a' is a prefix of 'c', so 'c' replaced it.
        assert_eq!(cache.len(), 2);
        let hit = cache.lookup(&[1, 2, 4, 5, 7]).unwrap();
        assert_eq!((*hit.snapshot, hit.tokens), ('b', 4));
        // Both share two tokens with [1, 2, 9]: the one used last wins.
        assert_eq!(*cache.lookup(&[1, 2, 9]).unwrap().snapshot, 'b');
        assert_eq!(*cache.lookup(&[1, 2, 3, 0]).unwrap().snapshot, 'c');
        assert_eq!(*cache.lookup(&[1, 2, 9]).unwrap().snapshot, 'c');
    }

    #[test]
    fn a_sequence_already_covered_is_not_kept_twice() {
        let mut cache = PrefixCache::default();
        cache.insert(vec![1, 2, 3, 4], 'a');
        assert_eq!(
            cache.insert(vec![1, 2], 'b'),
            ['b'],
            "given back: 'a' covers it"
        );
        assert_eq!((cache.len(), cache.tokens()), (1, 4));
        assert_eq!(cache.insert(Vec::new(), 'c'), ['c']);
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.insert(vec![1, 2, 3, 4, 5], 'd'),
            ['a'],
            "'d' covers 'a'"
        );
    }

    #[test]
    fn shrinking_drops_the_least_recently_used_first() {
        let mut cache = PrefixCache::default();
        cache.insert(vec![1; 10], 'a');
        cache.insert(vec![2; 10], 'b');
        cache.insert(vec![3; 10], 'c');
        cache.lookup(&[1, 1, 1]);
        // 'b' was used least recently.
        assert_eq!(cache.shrink_to(25), ['b']);
        assert_eq!(cache.tokens(), 20);
        assert!(cache.lookup(&[2, 2]).is_none());
        cache.shrink_to(0);
        assert!(cache.is_empty());
    }
}
