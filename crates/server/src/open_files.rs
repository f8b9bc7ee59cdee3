//! Connections are files: the soft open-file limit (256 for a macOS app, 1024 on many
//! Linux sessions) is raised to the hard one, and the connection cap kept below it.

/// Raises the soft open-file limit to the hard one and caps `wanted` connections below
/// it, keeping room for model files, logs and the listener.
pub fn connection_cap(wanted: usize) -> usize {
    const RESERVED: u64 = 64;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => {
            let cap = usize::try_from(files.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
            if wanted > cap {
                tracing::warn!(
                    files,
                    max_connections = cap,
                    "the open-file limit allows fewer connections than asked for"
                );
            }
            wanted.min(cap).max(1)
        }
        Err(e) => {
            tracing::warn!("could not raise the open-file limit: {e}");
            wanted
        }
    }
}
