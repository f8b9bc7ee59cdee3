//! The model's reply read back into what the APIs return: the answer's text, its
//! reasoning, and its tool calls, for each model family's way of writing them; and, for
//! models whose template knows nothing of tools, the documented way Perch shows them tools.

pub mod parser;
pub mod syntax;
pub mod tool_prompt;

pub use parser::{ReplyParser, ReplyPart, ToolCall};
pub use syntax::{ReplySyntax, ToolSyntax};
