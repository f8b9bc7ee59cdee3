//! MLX's buffer cache stays within its bound under requests of varied length (in a test
//! binary of its own: the cache is process-wide).

mod common;

use common::{run, test_model};
use perch_engine::generate::GenerateRequest;
use perch_engine::{buffer_cache, MlxEngine};

#[test]
fn the_buffer_cache_stays_within_its_bound_under_varied_requests() {
    const BOUND: usize = 4 << 20;
    let engine = MlxEngine::load(&test_model()).expect("SmolLM2 loads");
    let request = |tokens: u32, max_tokens: usize| GenerateRequest {
        prompt: (0..tokens).map(|i| 100 + i * 7 % 20_000).collect(),
        max_tokens,
        ignore_eos: true,
        ..Default::default()
    };
    // Unbounded, the same work leaves more than the bound cached: the check can fail.
    // (Each check follows a one-token request: the worker runs requests in order, so the
    // one before has freed all its buffers by then.)
    run(&engine, request(80, 4));
    run(&engine, request(1, 1));
    let unbounded = perch_mlx::memory::cache();
    assert!(
        unbounded > BOUND,
        "only {unbounded} bytes cached without a bound"
    );

    buffer_cache::bound(BOUND);
    for (tokens, max_tokens) in [(5, 8), (80, 4), (40, 16), (90, 2), (3, 30)] {
        run(&engine, request(tokens, max_tokens));
        run(&engine, request(1, 1));
        let cached = perch_mlx::memory::cache();
        assert!(
            cached <= BOUND,
            "{cached} bytes cached after a {tokens}-token prompt"
        );
    }
}
