//! The memory planner: what a model needs (weights, KV cache for the planned context and
//! number of sequences served at once, prefill workspace, MLX's buffer cache), what this
//! machine can give (physical memory minus an OS reserve, capped by Metal's recommended
//! working set), and the verdict — fits, tight, or won't fit and short by how much, with
//! what would make it fit.
//!
//! A model is planned for as many sequences at once as the settings ask (`parallel`), or
//! fewer when that many would not fit in the whole budget, but never fewer than one: the
//! KV term is a pool its running sequences and its prefix cache share. llama.cpp allocates
//! that pool whole and saves kept sequences it must give up to host memory beside it: the
//! saved term is the most those take.
//!
//! The workspace term follows what a forward pass keeps alive: one prefill chunk of
//! activations, its attention scores against the whole context, and a row of logits. The
//! `plan` benchmark (`perch bench --plan`) compares the whole estimate with MLX's measured
//! peak on a real load.

use std::fmt::Write as _;

use perch_engine::prefix_cache::SAVED_KV_DIVISOR;

/// Tokens in the largest prefill chunk (the engine's pacer never exceeds it).
pub const PREFILL_CHUNK: u64 = perch_engine::prefill_pacer::PrefillPacer::MAX as u64;

/// What a model costs, independent of how long a context it is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes of weights once loaded.
    pub weights_bytes: u64,
    /// Bytes of key/value cache per token.
    pub kv_bytes_per_token: u64,
    /// Bytes of activations per token of a prefill chunk.
    pub activation_bytes_per_token: u64,
    /// Query heads.
    pub attention_heads: u64,
    /// Vocabulary size.
    pub vocab_size: u64,
    /// The longest context the model supports.
    pub context_length: u64,
    /// Whether the engine saves kept sequences to host memory beside its KV cache
    /// (llama.cpp, up to the cache's size over [`SAVED_KV_DIVISOR`]).
    pub saves_sequences: bool,
}

impl From<&perch_engine::inspect::ModelFacts> for Footprint {
    fn from(f: &perch_engine::inspect::ModelFacts) -> Self {
        Footprint {
            weights_bytes: f.weights_bytes,
            kv_bytes_per_token: f.kv_bytes_per_token,
            activation_bytes_per_token: f.activation_bytes_per_token,
            attention_heads: f.attention_heads,
            vocab_size: f.vocab_size,
            context_length: f.context_length,
            saves_sequences: f.engine.saves_kept_sequences(),
        }
    }
}

/// What loading a model with a given context needs, term by term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Need {
    /// The context planned for, in tokens, per sequence.
    pub context: u64,
    /// Sequences served at once.
    pub sequences: u64,
    /// Weights.
    pub weights: u64,
    /// Key/value cache for a full context per sequence.
    pub kv: u64,
    /// Host memory for kept sequences saved out of the KV cache (llama.cpp).
    pub saved: u64,
    /// Prefill workspace: a chunk of activations, its attention scores, logits.
    pub workspace: u64,
    /// Freed buffers MLX keeps for reuse.
    pub buffer_cache: u64,
}

impl Need {
    /// What the KV term covers, for people: "8192 tokens", or "4 sequences of 8192 tokens".
    pub fn kv_extent(&self) -> String {
        match self.sequences {
            1 => format!("{} tokens", self.context),
            n => format!("{n} sequences of {} tokens", self.context),
        }
    }

    /// All of it.
    pub fn total(&self) -> u64 {
        self.resident() + self.buffer_cache
    }

    /// What the model itself holds: all but MLX's buffer cache, which is one limit for
    /// the whole process and so is counted once, with the model being planned.
    pub fn resident(&self) -> u64 {
        self.weights + self.kv + self.saved + self.workspace
    }
}

/// What this machine can give to models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Budget {
    /// Physical memory.
    pub total: u64,
    /// Kept for the operating system and other programs.
    pub os_reserve: u64,
    /// Metal's recommended working set, where MLX reports one.
    pub working_set: Option<u64>,
}

impl Budget {
    /// Bytes models may use in all.
    pub fn usable(&self) -> u64 {
        let after_reserve = self.total.saturating_sub(self.os_reserve);
        self.working_set
            .map_or(after_reserve, |w| w.min(after_reserve))
    }
}

/// A model already resident, as the planner sees it.
#[derive(Clone, Debug)]
pub struct Resident {
    /// Its name.
    pub name: String,
    /// Bytes planned for it ([`Need::resident`]).
    pub bytes: u64,
    /// Whether it could be unloaded now (no request in flight).
    pub idle: bool,
}

/// Fits, tight or won't fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Fits with room to spare.
    Fits,
    /// Fits, leaving less than a tenth of the budget.
    Tight,
    /// Does not fit.
    WontFit,
}

/// The planner's answer for one model.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    /// Fits, tight or won't fit.
    pub fit: Fit,
    /// What it needs.
    pub need: Need,
    /// What is free for it now (the budget less the resident models).
    pub available: u64,
    /// Bytes short (0 when it fits).
    pub shortfall: u64,
    /// What would make it fit, for people.
    pub advice: Vec<String>,
}

impl Verdict {
    /// One sentence: the verdict, the shortfall and the advice.
    pub fn explain(&self, name: &str) -> String {
        let mut text = match self.fit {
            Fit::Fits => format!("{name} fits: it needs {}", gb(self.need.total())),
            Fit::Tight => format!(
                "{name} fits, tightly: it needs {} of the {} free",
                gb(self.need.total()),
                gb(self.available)
            ),
            Fit::WontFit => format!(
                "{name} does not fit in memory: it needs {} ({} weights, {} KV cache for {}{}, \
                 {} workspace and buffer cache) and {} is free, short by {}",
                gb(self.need.total()),
                gb(self.need.weights),
                gb(self.need.kv),
                self.need.kv_extent(),
                match self.need.saved {
                    0 => String::new(),
                    saved => format!(" and {} for saved sequences", gb(saved)),
                },
                gb(self.need.workspace + self.need.buffer_cache),
                gb(self.available),
                gb(self.shortfall)
            ),
        };
        for advice in &self.advice {
            let _ = write!(text, "; {advice}");
        }
        text
    }
}

/// Gigabytes, for messages.
pub fn gb(bytes: u64) -> String {
    format!("{:.2} GB", bytes as f64 / 1e9)
}

/// Plans models against a budget.
#[derive(Clone, Debug)]
pub struct MemoryPlanner {
    budget: Budget,
    buffer_cache: u64,
    context: u64,
    sequences: u64,
}

impl MemoryPlanner {
    /// A planner for `budget`, counting `buffer_cache` bytes per model for MLX's cache and
    /// planning each model for one sequence of `context` tokens (or its own maximum, if
    /// shorter).
    pub fn new(budget: Budget, buffer_cache: u64, context: u64) -> Self {
        MemoryPlanner {
            budget,
            buffer_cache,
            context,
            sequences: 1,
        }
    }

    /// The same planner, planning each model for up to `sequences` at once.
    pub fn with_sequences(mut self, sequences: u64) -> Self {
        self.set_sequences(sequences);
        self
    }

    /// Plans models loaded from now on for up to `sequences` at once.
    pub fn set_sequences(&mut self, sequences: u64) {
        self.sequences = sequences.max(1);
    }

    /// The budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// Plans models loaded from now on for `context` tokens.
    pub fn set_context(&mut self, context: u64) {
        self.context = context;
    }

    /// The context a model with `footprint` is planned (and served) with.
    pub fn context_for(&self, footprint: &Footprint) -> u64 {
        self.context.min(footprint.context_length).max(1)
    }

    /// What `footprint` needs at its planned context, for as many sequences as are
    /// asked for and fit in the whole budget (at least one).
    ///
    /// ```
    /// use perch_runtime::planner::{Budget, Footprint, MemoryPlanner};
    /// let gb = 1_000_000_000;
    /// let model = Footprint {
    ///     weights_bytes: 4 * gb, kv_bytes_per_token: 100_000, activation_bytes_per_token: 0,
    ///     attention_heads: 32, vocab_size: 32_000, context_length: 10_000,
    ///     saves_sequences: false,
    /// };
    /// let budget = |total| Budget { total, os_reserve: 0, working_set: None };
    /// let planner = |total| MemoryPlanner::new(budget(total), 0, 10_000).with_sequences(4);
    /// // Each sequence's 10,000 tokens take 1 GB of KV cache.
    /// assert_eq!(planner(16 * gb).need(&model).sequences, 4);
    /// assert_eq!(planner(7 * gb).need(&model).sequences, 2);
    /// assert_eq!(planner(2 * gb).need(&model).sequences, 1);
    /// // On llama.cpp, saved sequences may take an eighth of the KV cache beside it.
    /// let saving = Footprint { saves_sequences: true, ..model };
    /// let need = planner(16 * gb).need(&saving);
    /// assert_eq!((need.kv, need.saved), (4 * gb, gb / 2));
    /// ```
    pub fn need(&self, footprint: &Footprint) -> Need {
        let context = self.context_for(footprint);
        let usable = self.budget.usable();
        (1..=self.sequences)
            .rev()
            .map(|sequences| self.need_at(footprint, context, sequences))
            .find(|need| need.total() <= usable)
            .unwrap_or_else(|| self.need_at(footprint, context, 1))
    }

    fn need_at(&self, f: &Footprint, context: u64, sequences: u64) -> Need {
        let element = perch_engine::inspect::compute_element_bytes();
        let chunk = PREFILL_CHUNK.min(context);
        let kv = f.kv_bytes_per_token * context * sequences;
        Need {
            context,
            sequences,
            weights: f.weights_bytes,
            kv,
            saved: match f.saves_sequences {
                true => kv / SAVED_KV_DIVISOR as u64,
                false => 0,
            },
            workspace: chunk * f.activation_bytes_per_token
                + f.attention_heads * chunk * context * element
                + 2 * f.vocab_size * 4,
            buffer_cache: self.buffer_cache,
        }
    }

    /// The verdict for `footprint` beside the `resident` models: it fits with as many
    /// sequences as [`Self::need`] plans, or with fewer when only fewer fit beside them
    /// (the verdict's need says how many); else it is short of room even for one.
    pub fn verdict(&self, footprint: &Footprint, resident: &[Resident]) -> Verdict {
        let usable = self.budget.usable();
        let used: u64 = resident.iter().map(|r| r.bytes).sum();
        let available = usable.saturating_sub(used);
        let full = self.need(footprint);
        let need = (1..=full.sequences)
            .rev()
            .map(|sequences| self.need_at(footprint, full.context, sequences))
            .find(|need| need.total() <= available)
            .unwrap_or_else(|| self.need_at(footprint, full.context, 1));
        let total = need.total();
        if total <= available {
            let spare = available - total;
            let fit = if spare < usable / 10 {
                Fit::Tight
            } else {
                Fit::Fits
            };
            return Verdict {
                fit,
                need,
                available,
                shortfall: 0,
                advice: Vec::new(),
            };
        }
        let shortfall = total - available;
        let mut advice = Vec::new();
        if total <= usable {
            let mut idle: Vec<&Resident> = resident.iter().filter(|r| r.idle).collect();
            idle.sort_by_key(|r| std::cmp::Reverse(r.bytes));
            let mut freed = 0;
            let mut names = Vec::new();
            for r in idle {
                if freed >= shortfall {
                    break;
                }
                freed += r.bytes;
                names.push(r.name.as_str());
            }
            if freed >= shortfall {
                advice.push(format!("unloading {} would make room", names.join(" and ")));
            }
        }
        if let Some(context) = self.longest_context_within(footprint, available) {
            advice.push(format!("a context of {context} tokens would fit"));
        } else if self.need_at(footprint, 512.min(need.context), 1).total() > usable {
            advice.push(format!(
                "this machine gives models {} in all (physical memory less the OS reserve); \
                 a smaller or more quantized model would fit",
                gb(usable)
            ));
        }
        Verdict {
            fit: Fit::WontFit,
            need,
            available,
            shortfall,
            advice,
        }
    }

    /// The longest context (a multiple of 256, at least 512, below the planned one) with
    /// which the model fits in `available`, if any.
    fn longest_context_within(&self, f: &Footprint, available: u64) -> Option<u64> {
        let planned = self.context_for(f);
        let fits = |c: u64| self.need_at(f, c, 1).total() <= available;
        if planned <= 512 || !fits(512) {
            return None;
        }
        let (mut lo, mut hi) = (512, planned);
        while hi - lo > 256 {
            let mid = (lo + hi) / 2;
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo / 256 * 256)
    }
}
