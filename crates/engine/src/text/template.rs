//! Chat templates: the Jinja template a model ships, rendered with minijinja plus Python
//! string/list methods (`pycompat`), and the helpers real templates call
//! (`raise_exception`, `strftime_now`, and Hugging Face's `tojson`). A template from a model file is code from the
//! internet: each render is bounded in instructions ([`FUEL`]) and in output
//! ([`MAX_OUTPUT`]). minijinja has no bound on the memory of intermediate values, so a
//! hostile template can still build a huge string in a few instructions (doubling one in
//! a loop); that is the one hole left, and only a model file the user chose can open it.

use minijinja::value::Kwargs;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::Serialize;

use super::python_json::{self, DumpOptions};

use crate::{EngineError, Result};

/// One chat message. `content` is plain text; other fields some templates read (tool
/// calls, names) ride in `extra`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct ChatMessage {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text.
    pub content: String,
    /// Further fields passed to the template as they are.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ChatMessage {
    /// A message with just a role and text.
    pub fn new(role: &str, content: &str) -> Self {
        ChatMessage {
            role: role.to_owned(),
            content: content.to_owned(),
            extra: Default::default(),
        }
    }
}

/// Instructions one render may run: far beyond what a real template needs for a long
/// conversation with many tools, and a fraction of a second of work.
pub const FUEL: u64 = 20_000_000;

/// Most bytes of prompt text one render may produce.
pub const MAX_OUTPUT: usize = 64 << 20;

/// A compiled chat template.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: std::sync::Arc<str>,
}

/// What a template is rendered with besides the messages.
#[derive(Clone, Debug, Default)]
pub struct TemplateContext<'a> {
    /// Append the assistant turn's opening so the model answers.
    pub add_generation_prompt: bool,
    /// The BOS token's text.
    pub bos_token: Option<&'a str>,
    /// The EOS token's text.
    pub eos_token: Option<&'a str>,
    /// Tool definitions (OpenAI's `tools` array), for templates that support them.
    pub tools: Option<&'a serde_json::Value>,
    /// Further variables (`enable_thinking`…); the ones above win over these.
    pub kwargs: Option<&'a serde_json::Map<String, serde_json::Value>>,
}

impl ChatTemplate {
    /// Compiles `source`.
    pub fn new(source: &str) -> Result<ChatTemplate> {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        // As Hugging Face's environment: a block tag's own line break and indentation are
        // not output.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function("strftime_now", |format: String| -> Result<Value, Error> {
            Ok(Value::from(format_now(&format)))
        });
        env.add_filter("tojson", tojson);
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| EngineError::Template(describe(&e)))?;
        Ok(ChatTemplate {
            env,
            source: source.into(),
        })
    }

    /// The template's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages` into the prompt text.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        context: &TemplateContext<'_>,
    ) -> Result<String> {
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| EngineError::Template(describe(&e)))?;
        let mut out = BoundedOutput::default();
        let rendered = template.render_captured_to(
            minijinja::context! {
                messages => messages,
                add_generation_prompt => context.add_generation_prompt,
                bos_token => context.bos_token.unwrap_or(""),
                eos_token => context.eos_token.unwrap_or(""),
                tools => context.tools.map(Value::from_serialize),
                ..Value::from_serialize(context.kwargs)
            },
            &mut out,
        );
        match rendered {
            Ok(_) => String::from_utf8(out.bytes)
                .map_err(|_| EngineError::Template("the template produced invalid UTF-8".into())),
            Err(_) if out.overflowed => Err(EngineError::Template(format!(
                "the chat template produced more than {} MiB of text",
                MAX_OUTPUT >> 20
            ))),
            Err(e) => Err(EngineError::Template(describe(&e))),
        }
    }
}

/// Hugging Face's `tojson` filter: Python's `json.dumps` (see [`python_json`]), with its
/// `ensure_ascii`, `indent`, `separators` and `sort_keys` arguments.
fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let invalid = |m: String| Error::new(ErrorKind::InvalidOperation, m);
    let indent = match kwargs.get::<Option<Value>>("indent")? {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match (v.as_usize(), v.as_str()) {
            (Some(n), _) => Some(" ".repeat(n)),
            (_, Some(s)) => Some(s.to_owned()),
            _ => {
                return Err(invalid(format!(
                    "tojson: indent must be a number or a string, got {v}"
                )))
            }
        },
    };
    let separators = match kwargs.get::<Option<Vec<String>>>("separators")? {
        None => None,
        Some(pair) => match <[String; 2]>::try_from(pair) {
            Ok([item, key]) => Some((item, key)),
            Err(_) => return Err(invalid("tojson: separators must be a pair".into())),
        },
    };
    let options = DumpOptions {
        ensure_ascii: kwargs.get::<Option<bool>>("ensure_ascii")?.unwrap_or(false),
        indent,
        separators,
        sort_keys: kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value).map_err(|e| invalid(format!("tojson: {e}")))?;
    Ok(Value::from_safe_string(python_json::dumps(&json, &options)))
}

/// The render's output, refusing to grow past [`MAX_OUTPUT`].
#[derive(Default)]
struct BoundedOutput {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for BoundedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT {
            self.overflowed = true;
            return Err(std::io::Error::other("the template's output is too long"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn describe(e: &Error) -> String {
    match e.detail() {
        Some(detail) if e.kind() == ErrorKind::InvalidOperation => detail.to_owned(),
        _ => e.to_string(),
    }
}

/// The current UTC time through a subset of `strftime` (what chat templates use for
/// "Today's date": %d %m %Y %y %B %b %A %a %H %M %S %j %%).
fn format_now(format: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = secs.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
    let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let (h, m, s) = (
        secs.rem_euclid(86_400) / 3600,
        secs.rem_euclid(3600) / 60,
        secs.rem_euclid(60),
    );
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let month_name = MONTHS[(month - 1) as usize];
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year % 100)),
            Some('B') => out.push_str(month_name),
            Some('b') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('H') => out.push_str(&format!("{h:02}")),
            Some('M') => out.push_str(&format!("{m:02}")),
            Some('S') => out.push_str(&format!("{s:02}")),
            Some('j') => out.push_str(&format!("{day_of_year:03}")),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &[ChatMessage]) -> Result<String> {
        let context = TemplateContext {
            add_generation_prompt: true,
            bos_token: Some("<s>"),
            ..Default::default()
        };
        ChatTemplate::new(source)?.render(messages, &context)
    }

    #[test]
    fn renders_roles_tokens_and_generation_prompt() {
        let source = "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m['content'] | trim }}\n{% endfor %}\
                      {% if add_generation_prompt %}[assistant]{% endif %}";
        let out = render(
            source,
            &[
                ChatMessage::new("user", " hi "),
                ChatMessage::new("assistant", "yo"),
            ],
        )
        .unwrap();
        assert_eq!(out, "<s>[user] hi\n[assistant] yo\n[assistant]");
    }

    #[test]
    fn python_methods_loop_controls_and_tools() {
        let source = "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}\
                      {{ m.content.strip().upper() }}{% if loop.index >= 3 %}{% break %}{% endif %}{% endfor %}\
                      {% if tools %}|{{ tools | length }} tool {{ tools[0].function.name }}{% endif %}";
        let messages = [
            ChatMessage::new("system", "ignored"),
            ChatMessage::new("user", " a "),
            ChatMessage::new("user", "b"),
            ChatMessage::new("user", "never"),
        ];
        let tools = serde_json::json!([{"type": "function", "function": {"name": "get_weather"}}]);
        let context = TemplateContext {
            tools: Some(&tools),
            ..Default::default()
        };
        let out = ChatTemplate::new(source)
            .unwrap()
            .render(&messages, &context)
            .unwrap();
        assert_eq!(out, "AB|1 tool get_weather");
    }

    #[test]
    fn raise_exception_becomes_a_clear_error() {
        let source = "{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}";
        let err = render(source, &[ChatMessage::new("assistant", "x")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("Conversations must start with a user message"),
            "{err}"
        );
        assert!(matches!(
            ChatTemplate::new("{% for %}"),
            Err(EngineError::Template(_))
        ));
    }

    #[test]
    fn a_template_that_never_ends_runs_out_of_fuel() {
        // 10^10 iterations: only the fuel bound ends this.
        let source =
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
        let err = render(source, &[]).unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }

    #[test]
    fn a_template_that_writes_without_end_is_cut_off() {
        // 100,000 copies of a 1 KiB message: 100 MiB, past the output bound.
        let source = "{% for a in range(100000) %}{{ messages[0].content }}{% endfor %}";
        let err = render(source, &[ChatMessage::new("user", &"x".repeat(1024))]).unwrap_err();
        assert!(err.to_string().contains("more than 64 MiB"), "{err}");
    }

    #[test]
    fn strftime_now_formats_today() {
        let out = render("{{ strftime_now('%Y-%m-%d %% %b') }}", &[]).unwrap();
        let (y, m, d) = civil_from_days(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64
                / 86_400,
        );
        assert!(out.starts_with(&format!("{y}-{m:02}-{d:02} % ")), "{out}");
    }

    #[test]
    fn calendar_round_trips() {
        for days in [-1, 0, 59, 365, 10_957, 20_000, 20_781] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
    }
}
