//! Text in and out of the model: tokenizer, chat template, incremental detokenizer.

pub mod detokenizer;
pub mod template;
pub mod tokenizer;
