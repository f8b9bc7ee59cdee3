//! Reads a reply as it streams and splits it into answer text, reasoning and tool calls,
//! so no markup reaches the answer. Text goes out as soon as it cannot be the start of a
//! marker; reasoning as it comes; a tool call once it is whole (Hermes: at
//! `</tool_call>`; Mistral and Llama, which have no closing marker: at the end). A call
//! that does not parse (broken JSON, no name) is given back as the text it was, never
//! dropped and never an error.

use serde_json::Value;

use super::syntax::{ReplySyntax, ToolSyntax};

/// One call the model made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCall {
    /// A fresh id (`call_…`; nine letters and digits for Mistral, whose templates ask for
    /// exactly that).
    pub id: String,
    /// The function's name.
    pub name: String,
    /// Its arguments, as JSON text of an object.
    pub arguments: String,
}

/// A piece of the reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyPart {
    /// Answer text.
    Text(String),
    /// Reasoning text (inside `<think>…</think>`).
    Reasoning(String),
    /// A whole tool call.
    ToolCall(ToolCall),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Text,
    Reasoning,
    /// Inside `<tool_call>`, waiting for `</tool_call>`.
    Call,
    /// Calls with no closing marker: everything to the end, read then.
    Trailing,
}

const THINK: &str = "<think>";
const END_THINK: &str = "</think>";
const CALL: &str = "<tool_call>";
const END_CALL: &str = "</tool_call>";
const MISTRAL_CALLS: &str = "[TOOL_CALLS]";
const PYTHON_TAG: &str = "<|python_tag|>";

/// The parser of one reply.
#[derive(Clone)]
pub struct ReplyParser {
    syntax: ReplySyntax,
    tools: bool,
    state: State,
    /// Text not yet given out.
    buffer: String,
    /// The marker that opened a `Trailing` part, given back with it if it does not parse.
    opened_by: &'static str,
    /// Whitespace held back at the end of answer text, in case a tool call follows.
    held: String,
    /// The whitespace before the call being read, given back if the call does not parse.
    before_call: String,
    /// Whether answer text (not whitespace) has been given out.
    answered: bool,
    /// Strip whitespace at the start of the next text or reasoning.
    trim_start: bool,
    calls: usize,
}

impl ReplyParser {
    /// A parser for a reply written in `syntax`, reading tool calls when `tools` were
    /// offered, starting inside reasoning when the prompt ended by opening it.
    pub fn new(syntax: ReplySyntax, tools: bool, starts_in_reasoning: bool) -> ReplyParser {
        ReplyParser {
            syntax,
            tools,
            state: if starts_in_reasoning {
                State::Reasoning
            } else {
                State::Text
            },
            buffer: String::new(),
            opened_by: "",
            held: String::new(),
            before_call: String::new(),
            answered: false,
            trim_start: starts_in_reasoning,
            calls: 0,
        }
    }

    /// Whether any tool call has been given out.
    pub fn made_calls(&self) -> bool {
        self.calls > 0
    }

    /// Reads `text`, the reply's next piece, and returns what can be given out.
    pub fn push(&mut self, text: &str) -> Vec<ReplyPart> {
        self.buffer.push_str(text);
        let mut out = Vec::new();
        while self.step(&mut out) {}
        out
    }

    /// The reply has ended: gives out everything still held.
    pub fn finish(&mut self) -> Vec<ReplyPart> {
        let mut out = Vec::new();
        while self.step(&mut out) {}
        let rest = std::mem::take(&mut self.buffer);
        match self.state {
            // After calls, what is left is the whitespace around them.
            State::Text => {
                let last = self.calls == 0;
                self.text(&mut out, &rest, last)
            }
            State::Reasoning => self.reasoning(&mut out, rest.trim_end()),
            // Cut off before its closing marker (by the end-of-turn token or the token
            // limit): a call if what is there parses.
            State::Call => self.calls_or_text(&mut out, CALL, &rest, |s| {
                parse_json_calls(without_partial(s.trim_end(), END_CALL))
            }),
            State::Trailing => {
                let opened_by = self.opened_by;
                let syntax = self.syntax.tools;
                self.calls_or_text(&mut out, opened_by, &rest, |s| match syntax {
                    ToolSyntax::Mistral => parse_mistral_calls(s),
                    _ => parse_json_calls(s),
                })
            }
        }
        if self.calls == 0 && !self.held.is_empty() {
            out.push(ReplyPart::Text(std::mem::take(&mut self.held)));
        }
        self.state = State::Text;
        out
    }

    /// Handles what the buffer allows in the current state; true if it should run again.
    fn step(&mut self, out: &mut Vec<ReplyPart>) -> bool {
        match self.state {
            State::Text => self.step_text(out),
            State::Reasoning => {
                if let Some(at) = self.buffer.find(END_THINK) {
                    let reasoning = self.buffer[..at].trim_end().to_owned();
                    self.reasoning(out, &reasoning);
                    self.buffer.drain(..at + END_THINK.len());
                    self.state = State::Text;
                    self.trim_start = true;
                    return true;
                }
                // Keep back whitespace (it may end the reasoning) and a partial marker.
                let keep = held_back_with_space(&self.buffer, &[END_THINK]);
                let ready: String = self.buffer.drain(..self.buffer.len() - keep).collect();
                self.reasoning(out, &ready);
                false
            }
            State::Call => {
                let Some(at) = self.buffer.find(END_CALL) else {
                    return false;
                };
                let raw: String = self.buffer.drain(..at + END_CALL.len()).collect();
                let body = &raw[..at];
                let parsed = parse_json_calls(body);
                match parsed {
                    Some(calls) => self.give_calls(out, calls),
                    None => self.not_a_call(out, &format!("{CALL}{raw}"), false),
                }
                self.state = State::Text;
                true
            }
            State::Trailing => false,
        }
    }

    fn step_text(&mut self, out: &mut Vec<ReplyPart>) -> bool {
        if self.trim_start {
            let trimmed = self.buffer.trim_start().len();
            self.buffer.drain(..self.buffer.len() - trimmed);
            if self.buffer.is_empty() {
                return false;
            }
            self.trim_start = false;
        }
        let openers = self.openers();
        let first = openers
            .iter()
            .filter_map(|&m| self.buffer.find(m).map(|at| (at, m)))
            .min();
        if let Some((at, marker)) = first {
            let before: String = self.buffer.drain(..at + marker.len()).collect();
            let before = &before[..at];
            match marker {
                THINK => {
                    self.text(out, before, false);
                    self.state = State::Reasoning;
                    self.trim_start = true;
                }
                CALL => {
                    self.text_before_call(out, before);
                    self.state = State::Call;
                }
                _ => {
                    self.text_before_call(out, before);
                    self.state = State::Trailing;
                    self.opened_by = marker;
                }
            }
            return true;
        }
        // Llama writes a call as a bare JSON object, so a reply that starts with one is
        // held to the end.
        if self.tools
            && self.syntax.tools == ToolSyntax::Llama3Json
            && !self.answered
            && self.calls == 0
        {
            match self.buffer.trim_start().chars().next() {
                None => return false,
                Some('{' | '[') => {
                    let trimmed = self.buffer.trim_start().to_owned();
                    self.buffer = trimmed;
                    self.state = State::Trailing;
                    self.opened_by = "";
                    return false;
                }
                Some(_) => {}
            }
        }
        if openers.is_empty() {
            // No marker can follow to take the whitespace before it: a newline goes out
            // as it is written, not with the next word.
            let ready = std::mem::take(&mut self.buffer);
            self.text(out, &ready, true);
            return false;
        }
        let keep = held_back_with_space(&self.buffer, &openers);
        let ready: String = self.buffer.drain(..self.buffer.len() - keep).collect();
        self.text(out, &ready, false);
        false
    }

    /// The markers that open something in answer text.
    fn openers(&self) -> Vec<&'static str> {
        let mut openers = Vec::new();
        if self.syntax.reasons {
            openers.push(THINK);
        }
        if self.tools {
            openers.push(match self.syntax.tools {
                ToolSyntax::Hermes => CALL,
                ToolSyntax::Mistral => MISTRAL_CALLS,
                ToolSyntax::Llama3Json => PYTHON_TAG,
            });
        }
        openers
    }

    /// Gives out answer text, holding back trailing whitespace (unless `last`) in case a
    /// tool call follows it.
    fn text(&mut self, out: &mut Vec<ReplyPart>, text: &str, last: bool) {
        let body = if last { text } else { text.trim_end() };
        if !body.is_empty() {
            let mut piece = std::mem::take(&mut self.held);
            piece.push_str(body);
            self.answered = true;
            out.push(ReplyPart::Text(piece));
        }
        self.held.push_str(&text[body.len()..]);
    }

    /// Text before a call: given out, the whitespace between them kept aside.
    fn text_before_call(&mut self, out: &mut Vec<ReplyPart>, text: &str) {
        self.text(out, text, false);
        self.before_call = std::mem::take(&mut self.held);
    }

    /// Markup that did not parse as a call, given back as text with the whitespace before it.
    fn not_a_call(&mut self, out: &mut Vec<ReplyPart>, markup: &str, last: bool) {
        self.held = std::mem::take(&mut self.before_call);
        self.text(out, markup, last);
    }

    fn reasoning(&mut self, out: &mut Vec<ReplyPart>, text: &str) {
        let text = if self.trim_start {
            text.trim_start()
        } else {
            text
        };
        if !text.is_empty() {
            self.trim_start = false;
            out.push(ReplyPart::Reasoning(text.to_owned()));
        }
    }

    fn calls_or_text(
        &mut self,
        out: &mut Vec<ReplyPart>,
        marker: &str,
        raw: &str,
        parse: impl Fn(&str) -> Option<Vec<(String, String)>>,
    ) {
        match parse(raw) {
            Some(calls) => self.give_calls(out, calls),
            None => self.not_a_call(out, &format!("{marker}{raw}"), true),
        }
    }

    fn give_calls(&mut self, out: &mut Vec<ReplyPart>, calls: Vec<(String, String)>) {
        self.before_call.clear();
        for (name, arguments) in calls {
            self.calls += 1;
            out.push(ReplyPart::ToolCall(ToolCall {
                id: new_call_id(self.syntax.tools),
                name,
                arguments,
            }));
        }
    }
}

/// How many bytes at the end of `text` to hold back: what could be the start of one of
/// `markers`, and the whitespace before it (which a marker may end or follow).
fn held_back_with_space(text: &str, markers: &[&str]) -> usize {
    let partial = markers
        .iter()
        .flat_map(|m| (1..m.len()).rev().map(move |n| &m[..n]))
        .filter(|prefix| text.ends_with(prefix))
        .map(str::len)
        .max()
        .unwrap_or(0);
    let before = &text[..text.len() - partial];
    partial + before.len() - before.trim_end().len()
}

/// `text` without an unfinished `marker` at its end.
fn without_partial<'a>(text: &'a str, marker: &str) -> &'a str {
    (1..marker.len())
        .rev()
        .find(|&n| text.ends_with(&marker[..n]))
        .map_or(text, |n| &text[..text.len() - n])
}

/// Calls written as JSON: one object, a list, or several separated by whitespace, commas
/// or semicolons. `None` unless every value is a call.
fn parse_json_calls(text: &str) -> Option<Vec<(String, String)>> {
    let mut calls = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';' || c == ',');
        if rest.is_empty() {
            break;
        }
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        let value = values.next()?.ok()?;
        rest = &rest[values.byte_offset()..];
        match value {
            Value::Array(items) => {
                for item in items {
                    calls.push(call_of(&item)?);
                }
            }
            item => calls.push(call_of(&item)?),
        }
    }
    (!calls.is_empty()).then_some(calls)
}

/// Mistral's calls after `[TOOL_CALLS]`: JSON (v3), or `name[ARGS]{…}` each behind its own
/// `[TOOL_CALLS]` (v11 and later, with an optional `[CALL_ID]id`).
fn parse_mistral_calls(text: &str) -> Option<Vec<(String, String)>> {
    let mut calls = Vec::new();
    for part in text.split("[TOOL_CALLS]") {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if part.starts_with('[') || part.starts_with('{') {
            calls.extend(parse_json_calls(part)?);
            continue;
        }
        let (head, arguments) = part.split_once("[ARGS]")?;
        let name = head.split("[CALL_ID]").next()?.trim();
        let arguments: Value = serde_json::from_str(arguments.trim()).ok()?;
        if name.is_empty() || !arguments.is_object() {
            return None;
        }
        calls.push((name.to_owned(), arguments.to_string()));
    }
    (!calls.is_empty()).then_some(calls)
}

/// `{"name": …, "arguments" | "parameters": {…}}` (arguments may be JSON text) as a name
/// and the arguments' JSON text.
fn call_of(value: &Value) -> Option<(String, String)> {
    let name = value.get("name")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let arguments = match value.get("arguments").or_else(|| value.get("parameters")) {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(Value::String(text)) => serde_json::from_str(text).ok()?,
        Some(other) => other.clone(),
    };
    arguments
        .is_object()
        .then(|| (name.to_owned(), arguments.to_string()))
}

/// A new call id.
fn new_call_id(syntax: ToolSyntax) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let length = if syntax == ToolSyntax::Mistral { 9 } else { 24 };
    let mut bytes = vec![0u8; length];
    getrandom::fill(&mut bytes).expect("the operating system's random source answers");
    let id: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    match syntax {
        ToolSyntax::Mistral => id,
        _ => format!("call_{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax(tools: ToolSyntax, reasons: bool) -> ReplySyntax {
        ReplySyntax {
            tools,
            template_takes_tools: true,
            reasons,
        }
    }

    #[test]
    fn whitespace_goes_out_at_once_when_no_marker_can_follow() {
        let plain = || ReplyParser::new(syntax(ToolSyntax::Hermes, false), false, false);
        let mut parser = plain();
        assert_eq!(parser.push("Once."), [ReplyPart::Text("Once.".into())]);
        assert_eq!(parser.push("\n"), [ReplyPart::Text("\n".into())]);
        assert_eq!(parser.push(" "), [ReplyPart::Text(" ".into())]);
        assert_eq!(parser.finish(), []);
        // Where a tool call may follow, the whitespace before it waits for what comes.
        let mut parser = ReplyParser::new(syntax(ToolSyntax::Hermes, false), true, false);
        assert_eq!(parser.push("Once.\n"), [ReplyPart::Text("Once.".into())]);
        assert_eq!(parser.push("Then"), [ReplyPart::Text("\nThen".into())]);
    }

    /// Feeds `reply` in pieces of `size` bytes (on character boundaries) and gathers
    /// the parts, joining neighbouring text and reasoning.
    fn parse(syntax: ReplySyntax, reply: &str, size: usize) -> Vec<ReplyPart> {
        let mut parser = ReplyParser::new(syntax, true, false);
        let mut parts = Vec::new();
        let mut piece = String::new();
        for c in reply.chars() {
            piece.push(c);
            if piece.len() >= size {
                parts.extend(parser.push(&std::mem::take(&mut piece)));
            }
        }
        parts.extend(parser.push(&piece));
        parts.extend(parser.finish());
        let mut joined: Vec<ReplyPart> = Vec::new();
        for part in parts {
            match (joined.last_mut(), part) {
                (Some(ReplyPart::Text(a)), ReplyPart::Text(b)) => a.push_str(&b),
                (Some(ReplyPart::Reasoning(a)), ReplyPart::Reasoning(b)) => a.push_str(&b),
                (_, part) => joined.push(part),
            }
        }
        joined
    }

    /// The same parts whatever the stream's pieces (ids aside: they are fresh each time).
    fn parse_all_ways(syntax: ReplySyntax, reply: &str) -> Vec<ReplyPart> {
        let without_ids = |parts: &[ReplyPart]| -> Vec<ReplyPart> {
            parts
                .iter()
                .map(|p| match p {
                    ReplyPart::ToolCall(c) => ReplyPart::ToolCall(ToolCall {
                        id: String::new(),
                        ..c.clone()
                    }),
                    other => other.clone(),
                })
                .collect()
        };
        let whole = parse(syntax, reply, usize::MAX);
        for size in [1, 2, 3, 5, 7, 11] {
            assert_eq!(
                without_ids(&parse(syntax, reply, size)),
                without_ids(&whole),
                "pieces of {size}"
            );
        }
        whole
    }

    fn calls(parts: &[ReplyPart]) -> Vec<(String, Value)> {
        parts
            .iter()
            .filter_map(|p| match p {
                ReplyPart::ToolCall(c) => {
                    Some((c.name.clone(), serde_json::from_str(&c.arguments).unwrap()))
                }
                _ => None,
            })
            .collect()
    }

    fn text(parts: &[ReplyPart]) -> String {
        parts
            .iter()
            .filter_map(|p| match p {
                ReplyPart::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn hermes_calls_as_qwen_writes_them() {
        // Qwen2.5's template asks for exactly this: a block per call, newlines inside.
        let reply = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"Europe/Paris\"}}\n</tool_call>";
        let parts = parse_all_ways(syntax(ToolSyntax::Hermes, false), reply);
        assert_eq!(text(&parts), "Let me check.");
        assert_eq!(
            calls(&parts),
            vec![
                (
                    "get_weather".to_owned(),
                    serde_json::json!({"city": "Paris", "unit": "celsius"})
                ),
                (
                    "get_time".to_owned(),
                    serde_json::json!({"tz": "Europe/Paris"})
                ),
            ]
        );
        let ReplyPart::ToolCall(call) = &parts[1] else {
            panic!("{parts:?}")
        };
        assert!(call.id.starts_with("call_") && call.id.len() == 29);
    }

    #[test]
    fn qwen3_reasoning_then_a_call() {
        let reply = "<think>\nThe user wants the weather.\nI should call the tool.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}\n</tool_call>";
        let parts = parse_all_ways(syntax(ToolSyntax::Hermes, true), reply);
        assert_eq!(
            parts[0],
            ReplyPart::Reasoning("The user wants the weather.\nI should call the tool.".into())
        );
        assert_eq!(text(&parts), "");
        assert_eq!(
            calls(&parts),
            vec![(
                "get_weather".to_owned(),
                serde_json::json!({"city": "Paris"})
            )]
        );
    }

    #[test]
    fn reasoning_when_the_prompt_opened_it_and_no_markup_leaks() {
        // DeepSeek-R1's template ends the prompt with "<think>\n".
        let mut parser = ReplyParser::new(syntax(ToolSyntax::Hermes, true), false, true);
        let mut parts = parser.push("Two plus two.\n</thi");
        parts.extend(parser.push("nk>\n\nIt is 4. A <tool_call> here is text."));
        parts.extend(parser.finish());
        assert_eq!(
            parts,
            vec![
                ReplyPart::Reasoning("Two plus two.".into()),
                ReplyPart::Text("It is 4. A <tool_call> here is text.".into()),
            ]
        );
    }

    #[test]
    fn llama3_json_calls() {
        let s = syntax(ToolSyntax::Llama3Json, false);
        // Llama 3.1's template asks for {"name": …, "parameters": …} and nothing else.
        let reply = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}";
        let parts = parse_all_ways(s, reply);
        assert_eq!(
            calls(&parts),
            vec![(
                "get_weather".to_owned(),
                serde_json::json!({"city": "Paris"})
            )]
        );
        assert_eq!(text(&parts), "");
        // Built-in tools come after <|python_tag|>; several calls joined by ";".
        let reply = "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}";
        assert_eq!(calls(&parse_all_ways(s, reply)).len(), 2);
        // A JSON answer that is no call stays the answer.
        let reply = "{\"answer\": 42}";
        assert_eq!(text(&parse_all_ways(s, reply)), reply);
        // Prose is streamed as it comes.
        let mut parser = ReplyParser::new(s, true, false);
        assert_eq!(
            parser.push("Paris is"),
            vec![ReplyPart::Text("Paris is".into())]
        );
    }

    #[test]
    fn mistral_calls_old_and_new() {
        let s = syntax(ToolSyntax::Mistral, false);
        // v3 (Mistral 7B v0.3): a JSON list after [TOOL_CALLS].
        let reply = "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]";
        let parts = parse_all_ways(s, reply);
        assert_eq!(calls(&parts).len(), 2);
        let ReplyPart::ToolCall(call) = &parts[0] else {
            panic!("{parts:?}")
        };
        assert_eq!(
            call.id.len(),
            9,
            "Mistral's templates ask for 9-character ids"
        );
        // v11 and later (Mistral Small 3.2): name[ARGS]{…}, each behind [TOOL_CALLS].
        let reply = "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[CALL_ID]a1b2c3d4e[ARGS]{}";
        assert_eq!(
            calls(&parse_all_ways(s, reply)),
            vec![
                (
                    "get_weather".to_owned(),
                    serde_json::json!({"city": "Paris"})
                ),
                ("get_time".to_owned(), serde_json::json!({})),
            ]
        );
    }

    #[test]
    fn malformed_calls_come_back_as_text() {
        let hermes = syntax(ToolSyntax::Hermes, false);
        for reply in [
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }\n</tool_call>",
            "<tool_call>\n{\"arguments\": {}}\n</tool_call>",
            "<tool_call>\n{\"name\": \"f\", \"arguments\": [1, 2]}\n</tool_call>",
            "Sure. <tool_call>{\"name\": \"f\", \"argu",
        ] {
            let parts = parse_all_ways(hermes, reply);
            assert_eq!(parts, vec![ReplyPart::Text(reply.into())], "{reply}");
        }
        let mistral = syntax(ToolSyntax::Mistral, false);
        for reply in [
            "[TOOL_CALLS] not json",
            "[TOOL_CALLS]get_weather[ARGS]{\"city\": ",
            "[TOOL_CALLS]get_weather[ARGS][1, 2]",
            "[TOOL_CALLS][ARGS]{}",
        ] {
            assert_eq!(text(&parse_all_ways(mistral, reply)), reply, "{reply}");
        }
        let llama = syntax(ToolSyntax::Llama3Json, false);
        for reply in [
            "{\"name\": \"get_weather\", \"parameters\": {\"city\": ",
            "{\"name\": \"get_weather\", \"parameters\": \"Paris\"}",
            "<|python_tag|>{\"name\": 7, \"parameters\": {}}",
        ] {
            assert_eq!(text(&parse_all_ways(llama, reply)), reply, "{reply}");
        }
    }

    #[test]
    fn an_unclosed_hermes_call_that_parses_is_a_call() {
        // Small models often end with their end-of-turn token before </tool_call>, or run
        // out of tokens in the middle of it.
        for reply in [
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n",
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_ca",
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>\n\n",
        ] {
            let parts = parse_all_ways(syntax(ToolSyntax::Hermes, false), reply);
            assert_eq!(parts.len(), 1, "one call and nothing else: {parts:?}");
            assert_eq!(
                calls(&parts),
                vec![("f".to_owned(), serde_json::json!({"a": 1}))]
            );
        }
    }

    #[test]
    fn without_tools_markup_is_text_and_text_is_untouched() {
        let mut parser = ReplyParser::new(syntax(ToolSyntax::Hermes, false), false, false);
        let reply = "  <tool_call>{\"name\": \"f\"}</tool_call>\n";
        let mut parts = parser.push(reply);
        parts.extend(parser.finish());
        let joined: String = parts
            .iter()
            .map(|p| match p {
                ReplyPart::Text(t) => t.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(joined, reply);
    }
}
