//! Ending the process at once, for the second Ctrl-C of `perch serve` and the app's Quit.

/// Ends the process with `status` at once. `std::process::exit` would first run the C
/// and C++ exit handlers, and MLX's static destructors can wait there for a computation in
/// flight (a long prefill chunk) — seconds on a busy machine, which is not "at once".
pub fn quit_now(status: i32) -> ! {
    #[cfg(unix)]
    // SAFETY: `_exit` takes a plain integer and never returns; skipping exit handlers
    // is the point (output was written with unbuffered or line-flushed writes).
    unsafe {
        libc::_exit(status)
    }
    #[cfg(not(unix))]
    std::process::exit(status)
}
