//! Stop strings matched on the generated text, never leaked into the output: text that
//! could still turn out to be the start of a stop string is held back until it is clear.

/// Tracks generated text against a set of stop strings.
pub struct StopMatcher {
    stops: Vec<String>,
    text: String,
    emitted: usize,
    matched: Option<String>,
}

/// What to do with newly generated text.
#[derive(Debug, PartialEq, Eq)]
pub enum StopCheck {
    /// Emit this text (possibly empty) and go on.
    Continue(String),
    /// A stop string was found: emit this text (what came before it) and finish.
    Stopped(String),
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        let stops = stops.iter().filter(|s| !s.is_empty()).cloned().collect();
        StopMatcher {
            stops,
            text: String::new(),
            emitted: 0,
            matched: None,
        }
    }

    /// Adds `delta` and says what may be emitted.
    pub fn push(&mut self, delta: &str) -> StopCheck {
        self.text.push_str(delta);
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        // A match not found before could only end in the new text, so it starts at most
        // `longest - 1` bytes before it.
        let mut window = self.emitted.saturating_sub(longest.saturating_sub(1));
        while !self.text.is_char_boundary(window) {
            window -= 1;
        }
        let found = self
            .stops
            .iter()
            .filter_map(|s| {
                self.text[window..]
                    .find(s.as_str())
                    .map(|at| (window + at, s))
            })
            .min_by_key(|(at, _)| *at);
        if let Some((at, stop)) = found {
            self.matched = Some(stop.clone());
            let out = self.text[self.emitted.min(at)..at].to_owned();
            self.emitted = self.text.len();
            return StopCheck::Stopped(out);
        }
        let held = self.held_back();
        let end = self.text.len() - held;
        let out = self.text[self.emitted..end].to_owned();
        self.emitted = end;
        StopCheck::Continue(out)
    }

    /// The stop string that was found, once one was.
    pub fn matched(&self) -> Option<&str> {
        self.matched.as_deref()
    }

    /// Text held back at the end of generation (it did not become a stop string).
    pub fn finish(&mut self) -> String {
        let out = self.text[self.emitted..].to_owned();
        self.emitted = self.text.len();
        out
    }

    /// Length of the longest suffix of the unemitted text that starts some stop string.
    fn held_back(&self) -> usize {
        let pending = &self.text[self.emitted..];
        self.stops
            .iter()
            .flat_map(|s| {
                (1..s.len())
                    .rev()
                    .filter(|&k| s.is_char_boundary(k))
                    .map(move |k| &s[..k])
            })
            .filter(|prefix| pending.ends_with(prefix))
            .map(str::len)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut m = StopMatcher::new(&stops);
        let mut out = String::new();
        for p in pieces {
            match m.push(p) {
                StopCheck::Continue(t) => out.push_str(&t),
                StopCheck::Stopped(t) => {
                    out.push_str(&t);
                    return (out, true);
                }
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn stop_inside_one_piece() {
        assert_eq!(run(&["END"], &["abc END def"]), ("abc ".into(), true));
    }

    #[test]
    fn stop_spanning_pieces_never_leaks() {
        let mut m = StopMatcher::new(&["</stop>".to_string()]);
        assert_eq!(m.push("hello </"), StopCheck::Continue("hello ".into()));
        assert_eq!(m.push("st"), StopCheck::Continue(String::new()));
        assert_eq!(m.push("op> tail"), StopCheck::Stopped(String::new()));
    }

    #[test]
    fn false_start_is_released() {
        assert_eq!(
            run(&["STOP"], &["a ST", "AR b"]),
            ("a STAR b".into(), false)
        );
        assert_eq!(run(&["STOP"], &["end ST"]), ("end ST".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins_and_unicode_is_safe() {
        assert_eq!(run(&["b", "a"], &["xxab"]), ("xx".into(), true));
        assert_eq!(run(&["é!"], &["caf", "é", "!"]), ("caf".into(), true));
        assert_eq!(run(&["🙂"], &["hi 🙂 there"]), ("hi ".into(), true));
    }
}
