//! Weight files: safetensors round trips and the real SmolLM2 GGUF.

mod common;

use std::path::PathBuf;

use common::{arr, assert_close, floats, test_model};
use perch_mlx::io::{self, Gguf, MetadataValue, Safetensors};
use perch_mlx::{Array, Dtype, Error};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perch-mlx-io-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn safetensors_round_trip_with_metadata() {
    let dir = scratch("roundtrip");
    let path = dir.join("model.safetensors");
    let mut file = Safetensors::default();
    file.tensors
        .insert("a.weight".into(), arr(&[1.0, -2.0, 3.5, 4.0], &[2, 2]));
    file.tensors.insert(
        "b.ids".into(),
        Array::from_slice(&[7i32, 8, 9], &[3]).unwrap(),
    );
    file.tensors.insert(
        "c.half".into(),
        arr(&[0.5, 1.5], &[2]).astype(Dtype::Bfloat16).unwrap(),
    );
    file.metadata.insert("format".into(), "mlx".into());
    io::save_safetensors(&path, &file).unwrap();

    let back = io::load_safetensors(&path).unwrap();
    assert_eq!(back.tensors.len(), 3);
    assert_eq!(back.tensors["a.weight"].shape(), vec![2, 2]);
    assert_eq!(floats(&back.tensors["a.weight"]), vec![1.0, -2.0, 3.5, 4.0]);
    assert_eq!(
        back.tensors["b.ids"].to_vec::<i32>().unwrap(),
        vec![7, 8, 9]
    );
    assert_eq!(back.tensors["c.half"].dtype(), Dtype::Bfloat16);
    assert_eq!(back.metadata.get("format").map(String::as_str), Some("mlx"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_and_corrupt_files_are_errors() {
    let dir = scratch("missing");
    let err = io::load_safetensors(&dir.join("nope.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(Gguf::open(&dir.join("nope.gguf")).is_err());
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    assert!(io::load_safetensors(&junk)
        .and_then(|f| f.tensors.values().try_for_each(|t| t.eval()))
        .is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn smollm2_gguf_tensors_and_metadata() {
    let gguf = Gguf::open(&test_model()).unwrap();
    let names = gguf.tensor_names();
    assert_eq!(
        names.len(),
        694,
        "tensor entries (quantized weights count with scales and biases)"
    );
    assert_eq!(
        gguf.metadata_string("general.architecture")
            .unwrap()
            .as_deref(),
        Some("llama")
    );
    assert_eq!(gguf.metadata_int("llama.block_count").unwrap(), Some(30));
    assert_eq!(
        gguf.metadata_int("llama.embedding_length").unwrap(),
        Some(576)
    );
    let eps = gguf
        .metadata_float("llama.attention.layer_norm_rms_epsilon")
        .unwrap()
        .unwrap();
    assert!((eps - 1e-5).abs() < 1e-9, "{eps}");
    let template = gguf
        .metadata_string("tokenizer.chat_template")
        .unwrap()
        .unwrap();
    assert!(
        template.starts_with("{% for message in messages %}"),
        "{template}"
    );
    let tokens = gguf
        .metadata_strings("tokenizer.ggml.tokens")
        .unwrap()
        .unwrap();
    assert_eq!(tokens.len(), 49152);
    assert!(
        matches!(gguf.metadata("tokenizer.ggml.merges").unwrap(), Some(MetadataValue::Strings(m)) if !m.is_empty())
    );
    match gguf.metadata("tokenizer.ggml.token_type").unwrap() {
        Some(MetadataValue::Array(types)) => assert_eq!(types.size(), 49152),
        other => panic!("token types: {other:?}"),
    }
    assert!(gguf.metadata("no.such.key").unwrap().is_none());
    assert!(
        gguf.metadata_int("general.architecture").is_err(),
        "a string is not an int"
    );
    assert!(matches!(
        gguf.tensor("no.such.tensor"),
        Err(Error::MissingTensor(_))
    ));
}

#[test]
fn smollm2_quantized_weights_multiply_like_their_dequantized_form() {
    let gguf = Gguf::open(&test_model()).unwrap();
    let weight = gguf.tensor("blk.0.attn_q.weight").unwrap();
    let scales = gguf.tensor("blk.0.attn_q.scales").unwrap();
    let biases = gguf.tensor("blk.0.attn_q.biases").unwrap();
    assert_eq!(weight.dtype(), Dtype::Uint32);
    // Q4_1: 4 bits in groups of 32; 576 columns pack into 576 * 4 / 32 words.
    assert_eq!(weight.shape(), vec![576, 72]);
    assert_eq!(scales.shape(), vec![576, 18]);
    let q = perch_mlx::Quantized {
        weight,
        scales,
        biases,
        group_size: 32,
        bits: 4,
    };
    let x = perch_mlx::random::normal(
        &[2, 576],
        Dtype::Float32,
        &perch_mlx::random::key(0).unwrap(),
    )
    .unwrap();
    let fused = q
        .matmul(&x.astype(q.scales.dtype()).unwrap(), true)
        .unwrap()
        .astype(Dtype::Float32)
        .unwrap();
    let dense = q.dequantize().unwrap().astype(Dtype::Float32).unwrap();
    let reference = x.matmul(&dense.transpose(&[]).unwrap()).unwrap();
    let fused = floats(&fused);
    let reference = floats(&reference);
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert_close(&fused, &reference, 0.02 * scale);
}
