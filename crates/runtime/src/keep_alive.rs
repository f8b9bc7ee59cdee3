//! How long a model stays loaded after its last request, as Ollama takes it: a number
//! of seconds or a duration string (`"5m"`, `"1h30m"`, `"90s"`); negative means forever,
//! zero means unload as soon as the response is done.

use std::time::{Duration, Instant};

/// A keep-alive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    /// Stay loaded until unloaded or evicted.
    Forever,
    /// Stay loaded this long after the last request.
    For(Duration),
}

impl Default for KeepAlive {
    /// Five minutes, as Ollama.
    fn default() -> Self {
        KeepAlive::For(Duration::from_secs(300))
    }
}

impl KeepAlive {
    /// Parses a JSON keep-alive: a number of seconds or a duration string.
    ///
    /// ```
    /// use perch_runtime::KeepAlive;
    /// use std::time::Duration;
    /// assert_eq!(KeepAlive::from_json(&serde_json::json!("1h30m")).unwrap(),
    ///            KeepAlive::For(Duration::from_secs(5400)));
    /// assert_eq!(KeepAlive::from_json(&serde_json::json!(-1)).unwrap(), KeepAlive::Forever);
    /// assert!(KeepAlive::from_json(&serde_json::json!("soon")).is_err());
    /// ```
    pub fn from_json(value: &serde_json::Value) -> Result<KeepAlive, String> {
        match value {
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(KeepAlive::from_seconds)
                .ok_or_else(|| format!("keep_alive {n} is not a number of seconds")),
            serde_json::Value::String(s) => KeepAlive::parse(s),
            other => Err(format!(
                "keep_alive must be seconds or a duration like \"5m\", got {other}"
            )),
        }
    }

    /// A request's `keep_alive` field, if it has one.
    pub fn from_field(value: Option<&serde_json::Value>) -> Result<Option<KeepAlive>, String> {
        value.map(KeepAlive::from_json).transpose()
    }

    /// Parses `"5m"`, `"1h30m"`, `"-1"`, `"300"`.
    pub fn parse(text: &str) -> Result<KeepAlive, String> {
        let text = text.trim();
        if let Ok(seconds) = text.parse::<f64>() {
            return Ok(KeepAlive::from_seconds(seconds));
        }
        let bad = || format!("keep_alive {text:?} is not a duration like \"5m\" or \"1h30m\"");
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut total = 0.0;
        let mut number = String::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let unit = match (c, chars.peek()) {
                ('m', Some('s')) => {
                    chars.next();
                    0.001
                }
                ('h', _) => 3600.0,
                ('m', _) => 60.0,
                ('s', _) => 1.0,
                _ => return Err(bad()),
            };
            let value: f64 = number.parse().map_err(|_| bad())?;
            total += value * unit;
            number.clear();
        }
        if !number.is_empty() || body.is_empty() {
            return Err(bad());
        }
        Ok(KeepAlive::from_seconds(if negative {
            -total
        } else {
            total
        }))
    }

    fn from_seconds(seconds: f64) -> KeepAlive {
        if seconds < 0.0 || !seconds.is_finite() {
            KeepAlive::Forever
        } else {
            KeepAlive::For(Duration::from_secs_f64(seconds.min(1e9)))
        }
    }

    /// When a model idle since `now` expires; `None` for never.
    pub fn deadline(self, now: Instant) -> Option<Instant> {
        match self {
            KeepAlive::Forever => None,
            KeepAlive::For(d) => Some(now + d),
        }
    }
}
