//! A download's progress on the terminal: an indicatif bar with bytes, rate and time
//! left, fed by any source of (stage, completed, total) readings — a local download's
//! progress or a node's NDJSON pull lines.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar for pulling `name`.
pub struct PullBar {
    bar: ProgressBar,
}

impl PullBar {
    /// Starts the bar (a spinner until the size is known).
    pub fn new(name: &str) -> PullBar {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_message(format!("pulling {name}"));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        PullBar { bar }
    }

    /// Shows `completed` of `total` bytes, and what is happening.
    pub fn update(&self, status: &str, completed: u64, total: u64) {
        if total > 0 {
            self.bar.set_length(total);
            self.bar.set_position(completed);
        }
        self.bar.set_message(status.to_owned());
    }

    /// Ends the bar with a last line.
    pub fn finish(&self, message: &str) {
        self.bar.finish_with_message(message.to_owned());
    }

    /// Ends the bar, leaving the line as it was.
    pub fn abandon(&self, message: &str) {
        self.bar.abandon_with_message(message.to_owned());
    }
}
