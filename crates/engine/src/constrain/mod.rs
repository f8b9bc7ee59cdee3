//! Constrained decoding: what the output must be (any JSON object, JSON that a schema
//! accepts, tool calls in the model's own syntax) compiled by `llguidance` (the library
//! llama.cpp and vLLM use) into a matcher over the model's vocabulary. At every step the
//! matcher masks the tokens that cannot continue a valid output, the sampler adds the mask
//! to the logits, and the chosen token advances the matcher; once the output is complete
//! only end-of-sequence is allowed. So the output always parses, even from a small model.

mod grammar;
mod matcher;
mod vocabulary;

pub use grammar::{Grammar, ToolSpec};
pub(crate) use matcher::ActiveConstraint;
pub use matcher::Constraint;
pub use vocabulary::Vocabulary;
