//! Tiny random-weight Llama (with Llama 3 rope scaling, dense and quantized), Qwen2 and
//! Qwen3 models written by the test: their logits must agree with `mlx-lm`'s on identical
//! weights within 1e-3, and a left-padded batch must give each row what it gives alone.

mod common;

use std::collections::HashMap;
use std::path::Path;

use perch_engine::batch::BatchLayout;
use perch_engine::config::ModelConfig;
use perch_engine::transformer::Transformer;
use perch_engine::weights::Weights;
use perch_mlx::io::{save_safetensors, Safetensors};
use perch_mlx::{random, Array, Dtype};
use serde_json::{json, Value};

const HIDDEN: i32 = 64;
const LAYERS: i32 = 2;
const HEADS: i32 = 4;
const KV_HEADS: i32 = 2;
const HEAD_DIM: i32 = 16;
const FFN: i32 = 128;
const VOCAB: i32 = 128;

fn config(model_type: &str, extra: Value) -> Value {
    let mut c = json!({
        "model_type": model_type, "hidden_size": HIDDEN, "num_hidden_layers": LAYERS,
        "intermediate_size": FFN, "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM, "vocab_size": VOCAB, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 256, "tie_word_embeddings": false,
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Random weights for `config`, named as Hugging Face names them.
fn random_weights(config: &ModelConfig, seed: u64) -> HashMap<String, Array> {
    let mut key = random::key(seed).unwrap();
    let mut next = |shape: &[i32], scale: f32| {
        let (next, k) = random::split_once(&key).unwrap();
        key = next;
        random::normal(shape, Dtype::Float32, &k)
            .unwrap()
            .multiply(&Array::scalar(scale))
            .unwrap()
    };
    let mut w = HashMap::new();
    let (q, kv) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    w.insert(
        "model.embed_tokens.weight".into(),
        next(&[VOCAB, HIDDEN], 0.5),
    );
    for l in 0..LAYERS {
        let p = format!("model.layers.{l}");
        let norm = |n: &mut dyn FnMut(&[i32], f32) -> Array, dim| {
            n(&[dim], 0.1).add(&Array::scalar(1.0f32)).unwrap()
        };
        w.insert(
            format!("{p}.input_layernorm.weight"),
            norm(&mut next, HIDDEN),
        );
        w.insert(
            format!("{p}.post_attention_layernorm.weight"),
            norm(&mut next, HIDDEN),
        );
        for (name, out, inp) in [
            ("self_attn.q_proj", q, HIDDEN),
            ("self_attn.k_proj", kv, HIDDEN),
            ("self_attn.v_proj", kv, HIDDEN),
            ("self_attn.o_proj", HIDDEN, q),
            ("mlp.gate_proj", FFN, HIDDEN),
            ("mlp.up_proj", FFN, HIDDEN),
            ("mlp.down_proj", HIDDEN, FFN),
        ] {
            w.insert(format!("{p}.{name}.weight"), next(&[out, inp], 0.15));
        }
        if config.attention_bias {
            for (name, out) in [("q_proj", q), ("k_proj", kv), ("v_proj", kv)] {
                w.insert(format!("{p}.self_attn.{name}.bias"), next(&[out], 0.1));
            }
        }
        if config.architecture == perch_engine::config::Architecture::Qwen3 {
            w.insert(
                format!("{p}.self_attn.q_norm.weight"),
                norm(&mut next, HEAD_DIM),
            );
            w.insert(
                format!("{p}.self_attn.k_norm.weight"),
                norm(&mut next, HEAD_DIM),
            );
        }
    }
    w.insert(
        "model.norm.weight".into(),
        next(&[HIDDEN], 0.1).add(&Array::scalar(1.0f32)).unwrap(),
    );
    if !config.tie_word_embeddings {
        w.insert("lm_head.weight".into(), next(&[VOCAB, HIDDEN], 0.3));
    }
    w
}

/// Quantizes every matrix as `config.quantization` says (the embedding at 8 bits).
fn quantize(weights: HashMap<String, Array>, config: &ModelConfig) -> HashMap<String, Array> {
    let q = config.quantization.as_ref().unwrap();
    let mut out = HashMap::new();
    for (name, w) in weights {
        let path = name.strip_suffix(".weight").unwrap_or(&name);
        match q.for_layer(path) {
            Some(p) if w.ndim() == 2 => {
                let packed = w.quantize(p.group_size, p.bits).unwrap();
                out.insert(format!("{path}.weight"), packed.weight);
                out.insert(format!("{path}.scales"), packed.scales);
                out.insert(format!("{path}.biases"), packed.biases);
            }
            _ => {
                out.insert(name, w);
            }
        }
    }
    out
}

struct Tiny {
    dir: std::path::PathBuf,
    transformer: Transformer,
}

fn write_tiny(name: &str, config_json: Value, seed: u64) -> Tiny {
    let dir = std::env::temp_dir().join(format!("perch-tiny-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), config_json.to_string()).unwrap();
    let config = ModelConfig::from_json(&config_json.to_string()).unwrap();
    let mut tensors = random_weights(&config, seed);
    if config.quantization.is_some() {
        tensors = quantize(tensors, &config);
    }
    let file = Safetensors {
        tensors: tensors.clone(),
        metadata: HashMap::from([("format".into(), "mlx".into())]),
    };
    save_safetensors(&dir.join("model.safetensors"), &file).unwrap();
    let mut weights = Weights::new(tensors, config.quantization.clone(), Dtype::Float32);
    let transformer = Transformer::build(config, &mut weights).unwrap();
    assert!(
        weights.leftover().is_empty(),
        "unused: {:?}",
        weights.leftover()
    );
    Tiny { dir, transformer }
}

fn reference_logits(dir: &Path, sequences: &[Vec<u32>]) -> Vec<Vec<Vec<f32>>> {
    let results = common::mlx_lm_reference(&json!({"model": dir, "logits_for": sequences}));
    results
        .iter()
        .map(|r| serde_json::from_value(r["logits"].clone()).unwrap())
        .collect()
}

fn our_logits(t: &Transformer, ids: &[u32]) -> Vec<f32> {
    let mut cache = t.new_cache();
    let input = Array::from_slice(ids, &[1, ids.len() as i32]).unwrap();
    let logits = t
        .forward(&input, &mut cache, &BatchLayout::unpadded(1), true)
        .unwrap();
    logits.to_vec::<f32>().unwrap()
}

fn assert_matches_mlx_lm(name: &str, config_json: Value) {
    let tiny = write_tiny(name, config_json, 7);
    let sequences = vec![vec![1u32, 5, 9, 77, 3, 120, 64, 2, 2, 31], vec![100u32, 4]];
    let expected = reference_logits(&tiny.dir, &sequences);
    for (ids, want) in sequences.iter().zip(&expected) {
        let ours = our_logits(&tiny.transformer, ids);
        let want: Vec<f32> = want.iter().flatten().copied().collect();
        assert_eq!(ours.len(), want.len());
        let worst = ours
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-3, "{name}: largest logit difference {worst}");
        assert!(
            want.iter().any(|v| v.abs() > 0.1),
            "{name}: reference logits are degenerate"
        );
    }
    std::fs::remove_dir_all(&tiny.dir).unwrap();
}

#[test]
fn llama_with_llama3_rope_scaling_matches_mlx_lm() {
    let scaling = json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64});
    assert_matches_mlx_lm("llama", config("llama", json!({"rope_scaling": scaling})));
}

#[test]
fn quantized_llama_with_8bit_embeddings_matches_mlx_lm() {
    let quantization = json!({"group_size": 32, "bits": 4,
        "model.embed_tokens": {"group_size": 32, "bits": 8}, "lm_head": {"group_size": 64, "bits": 8}});
    assert_matches_mlx_lm(
        "llama-q4",
        config("llama", json!({"quantization": quantization})),
    );
}

#[test]
fn qwen2_with_attention_biases_matches_mlx_lm() {
    assert_matches_mlx_lm(
        "qwen2",
        config("qwen2", json!({"tie_word_embeddings": true})),
    );
}

#[test]
fn qwen3_with_qk_norms_matches_mlx_lm() {
    assert_matches_mlx_lm(
        "qwen3",
        config("qwen3", json!({"tie_word_embeddings": true})),
    );
}

#[test]
fn a_left_padded_batch_gives_each_row_what_it_gives_alone() {
    let tiny = write_tiny("batch", config("llama", json!({})), 11);
    let t = &tiny.transformer;
    let rows = vec![vec![3u32, 14, 15, 92, 65, 35], vec![89u32, 79]];
    let (ids, layout) = BatchLayout::pad(&rows, 0).unwrap();
    let mut cache = t.new_cache();
    let batched = t.forward(&ids, &mut cache, &layout, false).unwrap();
    // Then one decode step for both rows together.
    let next = Array::from_slice(&[7u32, 8], &[2, 1]).unwrap();
    let stepped = t.forward(&next, &mut cache, &layout, false).unwrap();
    let (batched, stepped) = (
        batched.to_vec::<f32>().unwrap(),
        stepped.to_vec::<f32>().unwrap(),
    );
    let vocab = VOCAB as usize;
    for (r, (row, extra)) in rows.iter().zip([7u32, 8]).enumerate() {
        let alone = our_logits(t, row);
        let last = &alone[alone.len() - vocab..];
        let worst = last
            .iter()
            .zip(&batched[r * vocab..(r + 1) * vocab])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "row {r} prefill differs by {worst}");
        let mut longer = row.clone();
        longer.push(extra);
        let alone = our_logits(t, &longer);
        let last = &alone[alone.len() - vocab..];
        let worst = last
            .iter()
            .zip(&stepped[r * vocab..(r + 1) * vocab])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "row {r} decode step differs by {worst}");
    }
    std::fs::remove_dir_all(&tiny.dir).unwrap();
}
