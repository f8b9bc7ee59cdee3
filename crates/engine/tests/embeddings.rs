//! Embeddings against an independent computation: SmolLM2, imported to MLX format, embeds
//! inputs of different lengths in one request (so Perch batches and left-pads them), and
//! each vector must match the same pooling computed by the reference script over mlx-lm's
//! own hidden states, one unpadded input at a time: last-token and mean pooling,
//! normalised or not, cut to fewer dimensions.

mod common;

use common::{mlx_lm_reference as reference, test_model};
use perch_engine::embed::{EmbedRequest, EmbeddingRecipe, Pooling};
use perch_engine::{Engine, EngineError, MlxEngine, ModelEngine};
use perch_test_support::ScratchDir;
use serde_json::json;

const TEXTS: [&str; 4] = [
    "The cat sat on the mat.",
    "Rust is a language empowering everyone to build reliable and efficient software, \
     and its ownership model guarantees memory safety without a garbage collector.",
    "Bonjour",
    "用一句话介绍一下你自己。Embeddings map text to vectors whose distances mean something.",
];

fn imported_smollm2() -> ScratchDir {
    let dir = ScratchDir::new("smollm2-embed");
    perch_engine::import::import_gguf(&test_model(), dir.path()).expect("import");
    dir
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Embeds `TEXTS` with `engine` and with the reference, and compares them pairwise.
fn check(
    engine: &ModelEngine,
    dir: &ScratchDir,
    pooling: &str,
    normalize: bool,
    dimensions: Option<usize>,
) {
    let inputs: Vec<Vec<u32>> = TEXTS
        .iter()
        .map(|t| engine.tokenize(t, true).unwrap())
        .collect();
    let lengths: Vec<usize> = inputs.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().max() > lengths.iter().min(),
        "inputs differ in length: {lengths:?}"
    );
    let want = reference(&json!({
        "model": dir.path(), "embed_for": inputs, "pooling": pooling,
        "normalize": normalize, "dimensions": dimensions,
    }));
    let got = engine
        .embed(EmbedRequest {
            inputs: inputs.clone(),
            dimensions,
        })
        .unwrap()
        .blocking_result()
        .unwrap();
    assert_eq!(got.prompt_tokens, lengths.iter().sum::<usize>());
    let width = dimensions.unwrap_or(engine.info().config.hidden_size as usize);
    for (i, (ours, theirs)) in got.vectors.iter().zip(&want).enumerate() {
        let theirs: Vec<f32> = serde_json::from_value(theirs["embedding"].clone()).unwrap();
        assert_eq!(ours.len(), width);
        assert_eq!(theirs.len(), width);
        let worst = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0.0f32, f32::max);
        let similarity = cosine(ours, &theirs);
        assert!(
            similarity > 0.9999 && worst < 2e-3,
            "{pooling} pooling, input {i} ({} tokens): cosine {similarity}, worst difference {worst}",
            lengths[i]
        );
        if normalize {
            let norm = ours
                .iter()
                .map(|x| f64::from(*x).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
    }
}

#[test]
fn last_token_pooling_matches_mlx_lm_hidden_states() {
    let dir = imported_smollm2();
    let engine = MlxEngine::load(dir.path()).unwrap();
    assert_eq!(
        engine.info().embedding,
        Ok(EmbeddingRecipe {
            pooling: Pooling::LastToken,
            normalize: true
        })
    );
    check(&engine, &dir, "last", true, None);
    check(&engine, &dir, "last", true, Some(64));
}

#[test]
fn mean_pooling_from_a_sentence_transformers_card_matches_mlx_lm() {
    let dir = imported_smollm2();
    std::fs::write(
        dir.path().join("modules.json"),
        r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
            {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
    std::fs::write(
        dir.path().join("1_Pooling/config.json"),
        r#"{"pooling_mode_mean_tokens": true}"#,
    )
    .unwrap();
    let engine = MlxEngine::load(dir.path()).unwrap();
    check(&engine, &dir, "mean", false, None);
}

#[test]
fn bad_inputs_are_refused_before_they_queue() {
    let engine = MlxEngine::load(&test_model()).unwrap();
    let vocab = engine.info().config.vocab_size as u32;
    let hidden = engine.info().config.hidden_size as usize;
    let refused = |inputs: Vec<Vec<u32>>, dimensions| match engine
        .embed(EmbedRequest { inputs, dimensions })
    {
        Err(EngineError::InvalidRequest(why)) => why,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted"),
    };
    assert!(refused(vec![], None).contains("nothing to embed"));
    assert!(refused(vec![vec![1], vec![]], None).contains("input 1 is empty"));
    assert!(refused(vec![vec![vocab]], None).contains("beyond this model's vocabulary"));
    assert!(refused(vec![vec![1]], Some(0)).contains("between 1 and"));
    assert!(refused(vec![vec![1]], Some(hidden + 1)).contains("between 1 and"));
}
