//! MLX keeps freed buffers in a process-wide cache for reuse, which left alone grows toward
//! the allocator's memory limit: under requests of varied length a server's resident
//! memory climbs long after the work is done. Perch bounds it; the bound is memory the
//! node holds on top of the models' weights and key/value caches, so the memory planner
//! counts it.

/// The cache bound `perch serve` uses unless told otherwise: room to reuse one step's
/// buffers of a mid-sized model without reallocating, small beside any model's weights.
pub const DEFAULT_LIMIT: usize = 256 << 20;

/// Bounds MLX's buffer cache to `limit` bytes (0 turns it off), process-wide; returns the
/// previous bound.
///
/// ```
/// perch_engine::buffer_cache::bound(64 << 20);
/// assert!(perch_mlx::memory::cache() <= 64 << 20);
/// ```
pub fn bound(limit: usize) -> usize {
    let previous = perch_mlx::memory::set_cache_limit(limit);
    if perch_mlx::memory::cache() > limit {
        perch_mlx::memory::clear_cache();
    }
    previous
}
