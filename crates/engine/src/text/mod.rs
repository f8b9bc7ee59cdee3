//! Text in and out of the model: tokenizer, chat template, incremental detokenizer, and
//! keeping message text from writing control tokens.

mod added_tokens;
pub mod chat_prompt;
pub mod detokenizer;
pub mod python_json;
pub mod template;
pub mod tokenizer;
pub mod untrusted;
