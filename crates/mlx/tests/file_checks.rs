//! The Rust checks that run before MLX's loaders: the real SmolLM2 GGUF passes, and
//! truncated, inflated or scrambled files are refused with a message, never a crash.

use perch_mlx::io::{self, check_gguf, check_safetensors, Gguf};
use perch_mlx::{Array, Error};
use perch_test_support::test_model;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("perch-checks-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn malformed(result: perch_mlx::Result<impl std::fmt::Debug>) -> String {
    match result {
        Err(e @ Error::MalformedFile { .. }) => e.to_string(),
        other => panic!("expected a malformed-file error, got {other:?}"),
    }
}

#[test]
fn the_real_gguf_passes_and_its_truncation_does_not() {
    let bytes = std::fs::read(test_model()).unwrap();
    let summary = check_gguf(&bytes[..], bytes.len() as u64).unwrap();
    // 30 layers of 9 tensors, the embedding and the final norm (the head is tied).
    assert_eq!((summary.version, summary.tensors), (3, 272));

    let dir = scratch("gguf");
    let cut = dir.join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let message = malformed(Gguf::open(&cut).map(|_| ()));
    assert!(message.contains("truncated"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inflated_counts_and_lengths_are_refused_before_allocating() {
    let bytes = std::fs::read(test_model()).unwrap();
    let len = bytes.len() as u64;
    let with = |at: usize, value: u64| {
        let mut b = bytes[..4096].to_vec();
        b[at..at + 8].copy_from_slice(&value.to_le_bytes());
        b
    };
    // Tensor count, metadata count, then the first key's length.
    for (at, value, expected) in [
        (8, u64::MAX / 2, "claims"),
        (16, 1 << 40, "claims"),
        (24, 1 << 60, "a string of"),
    ] {
        let header = with(at, value);
        let message = malformed(check_gguf(&header[..], len));
        assert!(message.contains(expected), "{message}");
    }
    let mut wrong_magic = bytes[..64].to_vec();
    wrong_magic[0] = b'X';
    assert!(malformed(check_gguf(&wrong_magic[..], len)).contains("GGUF"));
}

#[test]
fn scrambled_gguf_headers_never_panic() {
    let bytes = std::fs::read(test_model()).unwrap();
    let header = &bytes[..1 << 20];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let mut b = header.to_vec();
        for _ in 0..1 + next() % 8 {
            let at = (next() % 4096) as usize;
            b[at] = next() as u8;
        }
        // Either verdict is fine; a panic, a hang or a huge allocation is not.
        let _ = check_gguf(&b[..], bytes.len() as u64);
    }
}

fn safetensors_file(header: &str, data: usize) -> Vec<u8> {
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header.as_bytes());
    file.extend(vec![0u8; data]);
    file
}

#[test]
fn safetensors_written_by_mlx_pass_and_inconsistent_headers_do_not() {
    let dir = scratch("safetensors");
    let path = dir.join("w.safetensors");
    let mut file = io::Safetensors::default();
    file.tensors.insert(
        "w".into(),
        Array::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap(),
    );
    file.tensors
        .insert("ids".into(), Array::from_slice(&[7i32, 8], &[2]).unwrap());
    io::save_safetensors(&path, &file).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        check_safetensors(&bytes[..], bytes.len() as u64)
            .unwrap()
            .len(),
        2
    );

    let cases = [
        (
            r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            12,
            "needs 12 bytes",
        ),
        (
            r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            4,
            "truncated",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
            6,
            "overlap",
        ),
        (
            r#"{"w":{"dtype":"Q9","shape":[1],"data_offsets":[0,1]}}"#,
            1,
            "unknown dtype",
        ),
        (r#"{"__metadata__":{"n":1}}"#, 0, "map of strings"),
        (r#"[1,2]"#, 0, "not a JSON object"),
        (
            r#"{"w":{"dtype":"U8","shape":[3000000000,0],"data_offsets":[0,0]}}"#,
            0,
            "beyond what MLX can hold",
        ),
    ];
    for (header, data, expected) in cases {
        let file = safetensors_file(header, data);
        let message = malformed(check_safetensors(&file[..], file.len() as u64));
        assert!(message.contains(expected), "{header}: {message}");
    }
    let mut huge = safetensors_file("{}", 0);
    huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(malformed(check_safetensors(&huge[..], huge.len() as u64)).contains("claims"));

    let bad = dir.join("bad.safetensors");
    std::fs::write(&bad, safetensors_file(cases[1].0, 4)).unwrap();
    malformed(io::load_safetensors(&bad).map(|_| ()));
    std::fs::remove_dir_all(dir).unwrap();
}
