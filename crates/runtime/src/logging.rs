//! Logging for every face of the node (`perch serve`, the menu-bar app): human-readable
//! lines on stderr, filtered by `PERCH_LOG` (default `info`), without colours when
//! stderr is not a terminal.

/// Installs the global subscriber. Call once, first thing.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PERCH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
