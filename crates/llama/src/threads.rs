//! How many threads llama.cpp computes with: `PERCH_LLAMA_THREADS` when set, else every
//! core the process may use (llama.cpp's own CPU kernels scale with cores; more threads
//! than cores only make them wait for each other).

/// Threads for llama.cpp's CPU work.
///
/// ```
/// assert!(perch_llama::threads() >= 1);
/// ```
pub fn threads() -> usize {
    std::env::var("PERCH_LLAMA_THREADS")
        .ok()
        .and_then(|n| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}
