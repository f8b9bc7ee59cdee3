//! JSON written the way Python's `json.dumps` writes it, for chat templates' `tojson`
//! filter: Hugging Face renders templates with a `tojson` that calls `json.dumps` (`", "`
//! and `": "` separators, non-ASCII kept, nothing HTML-escaped, keys in the order given),
//! while minijinja's own writes compact, HTML-safe JSON. Tool definitions and call
//! arguments reach the model through this filter, so Perch must write them byte for byte
//! as the model's makers did, or the prompt differs from the one it was trained on.
//! The one departure: the [`DEFUSE`] mark in front of a control token written in request
//! text stays a character even with `ensure_ascii`, so the token it defuses stays text.

use std::fmt::Write;

use serde_json::Value;

use super::untrusted::DEFUSE;

/// `json.dumps`'s options that templates use.
#[derive(Clone, Debug)]
pub struct DumpOptions {
    /// Escape every non-ASCII character as `\uXXXX`.
    pub ensure_ascii: bool,
    /// Pretty-print with this indent (a number of spaces becomes that many spaces).
    pub indent: Option<String>,
    /// Between items and between a key and its value; Python's default is `(", ", ": ")`,
    /// or `(",", ": ")` with an indent.
    pub separators: Option<(String, String)>,
    /// Sort object keys.
    pub sort_keys: bool,
}

impl Default for DumpOptions {
    /// Hugging Face's defaults (`ensure_ascii=False`).
    fn default() -> Self {
        DumpOptions {
            ensure_ascii: false,
            indent: None,
            separators: None,
            sort_keys: false,
        }
    }
}

/// `value` as `json.dumps(value, **options)` writes it.
pub fn dumps(value: &Value, options: &DumpOptions) -> String {
    let (item, key) = match &options.separators {
        Some((item, key)) => (item.as_str(), key.as_str()),
        None if options.indent.is_some() => (",", ": "),
        None => (", ", ": "),
    };
    let mut out = String::new();
    Writer {
        options,
        item,
        key,
        out: &mut out,
    }
    .value(value, 0);
    out
}

struct Writer<'a> {
    options: &'a DumpOptions,
    item: &'a str,
    key: &'a str,
    out: &'a mut String,
}

impl Writer<'_> {
    fn value(&mut self, value: &Value, depth: usize) {
        match value {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => write!(self.out, "{i}").expect("writing to a String"),
                (_, Some(u), _) => write!(self.out, "{u}").expect("writing to a String"),
                (_, _, Some(f)) => self.out.push_str(&float_repr(f)),
                _ => self.out.push_str(&n.to_string()),
            },
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                if items.is_empty() {
                    self.out.push_str("[]");
                    return;
                }
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    self.separator(i, depth + 1);
                    self.value(item, depth + 1);
                }
                self.newline(depth);
                self.out.push(']');
            }
            Value::Object(map) => {
                if map.is_empty() {
                    self.out.push_str("{}");
                    return;
                }
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                if self.options.sort_keys {
                    entries.sort_by(|a, b| a.0.cmp(b.0));
                }
                self.out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    self.separator(i, depth + 1);
                    self.string(k);
                    self.out.push_str(self.key);
                    self.value(v, depth + 1);
                }
                self.newline(depth);
                self.out.push('}');
            }
        }
    }

    /// Before the `i`th item of a container whose items sit at `depth`.
    fn separator(&mut self, i: usize, depth: usize) {
        if i > 0 {
            self.out.push_str(self.item);
        }
        self.newline(depth);
    }

    fn newline(&mut self, depth: usize) {
        if let Some(indent) = &self.options.indent {
            self.out.push('\n');
            for _ in 0..depth {
                self.out.push_str(indent);
            }
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                DEFUSE => self.out.push(DEFUSE),
                c if (c as u32) < 0x20
                    || (self.options.ensure_ascii && !(' '..='~').contains(&c)) =>
                {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        write!(self.out, "\\u{unit:04x}").expect("writing to a String");
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}

/// A float as Python's `repr` writes it: the shortest digits that read back the same,
/// positional for exponents from −4 to 15 (always with a fraction), else `1.5e-07`.
fn float_repr(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("Rust's {:e} always writes an exponent");
    let exponent: i32 = exponent.parse().expect("the exponent is a number");
    if (-4..16).contains(&exponent) {
        let positional = f.to_string();
        if positional.contains('.') {
            positional
        } else {
            positional + ".0"
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Each expected string is what CPython 3.11's json.dumps printed for the same value.
    fn tool() -> Value {
        json!({"name": "get_weather", "description": "Wetter – für 🌧 <b>&'",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"},
               "n": {"type": "number", "default": 1.5e-7}, "big": 1e16, "x": 1.0, "y": [],
               "z": {}}, "required": ["city"]}})
    }

    #[test]
    fn defaults_match_hugging_faces_tojson() {
        assert_eq!(
            dumps(&tool(), &DumpOptions::default()),
            r#"{"name": "get_weather", "description": "Wetter – für 🌧 <b>&'", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "number", "default": 1.5e-07}, "big": 1e+16, "x": 1.0, "y": [], "z": {}}, "required": ["city"]}}"#
        );
    }

    #[test]
    fn ensure_ascii_indent_and_sorted_keys() {
        let options = DumpOptions {
            ensure_ascii: true,
            indent: Some("  ".into()),
            sort_keys: true,
            ..DumpOptions::default()
        };
        let want = "{\n  \"description\": \"Wetter \\u2013 f\\u00fcr \\ud83c\\udf27 <b>&'\",\n  \"name\": \"get_weather\",\n  \"parameters\": {\n    \"properties\": {\n      \"big\": 1e+16,\n      \"city\": {\n        \"type\": \"string\"\n      },\n      \"n\": {\n        \"default\": 1.5e-07,\n        \"type\": \"number\"\n      },\n      \"x\": 1.0,\n      \"y\": [],\n      \"z\": {}\n    },\n    \"required\": [\n      \"city\"\n    ],\n    \"type\": \"object\"\n  }\n}";
        assert_eq!(dumps(&tool(), &options), want);
    }

    #[test]
    fn strings_separators_and_numbers() {
        let plain = DumpOptions::default();
        assert_eq!(
            dumps(&json!("a\u{7f}\u{1}\n\"\\"), &plain),
            "\"a\u{7f}\\u0001\\n\\\"\\\\\""
        );
        let ascii = DumpOptions {
            ensure_ascii: true,
            ..DumpOptions::default()
        };
        assert_eq!(dumps(&json!("a\u{7f}\u{1}"), &ascii), r#""a\u007f\u0001""#);
        let defused = format!("{DEFUSE}<|im_start|>é");
        assert_eq!(
            dumps(&json!(defused), &ascii),
            format!("\"{DEFUSE}<|im_start|>\\u00e9\"")
        );
        let compact = DumpOptions {
            separators: Some((",".into(), ":".into())),
            ..DumpOptions::default()
        };
        assert_eq!(
            dumps(&json!([1, {"a": null, "b": true}]), &compact),
            r#"[1,{"a":null,"b":true}]"#
        );
        assert_eq!(
            dumps(
                &json!([1e22, 123456789012345678u64, -0.0, 0.1, 100.0, 1e-4, 1.5e-5]),
                &plain
            ),
            "[1e+22, 123456789012345678, -0.0, 0.1, 100.0, 0.0001, 1.5e-05]"
        );
    }
}
