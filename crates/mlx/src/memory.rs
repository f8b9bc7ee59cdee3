//! MLX's allocator: memory in use, the peak, the buffer cache, and their limits. Sizes are
//! bytes.

use crate::ffi::bridge as ffi;

/// Bytes held by live arrays (not counting the cache).
pub fn active() -> usize {
    ffi::active_memory()
}

/// The most bytes held at once since start or the last [`reset_peak`].
pub fn peak() -> usize {
    ffi::peak_memory()
}

/// Starts measuring [`peak`] afresh.
pub fn reset_peak() {
    ffi::reset_peak_memory()
}

/// Bytes held in freed buffers kept for reuse.
pub fn cache() -> usize {
    ffi::cache_memory()
}

/// Sets the allocator's memory limit and returns the previous one.
pub fn set_memory_limit(limit: usize) -> usize {
    ffi::set_memory_limit(limit)
}

/// The allocator's memory limit.
pub fn memory_limit() -> usize {
    ffi::memory_limit()
}

/// Sets how many bytes the buffer cache may keep (0 disables it); returns the previous
/// limit.
pub fn set_cache_limit(limit: usize) -> usize {
    ffi::set_cache_limit(limit)
}

/// Returns the cached buffers to the system.
pub fn clear_cache() {
    ffi::clear_cache()
}
