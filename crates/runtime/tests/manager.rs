//! The model manager on the real test model: one load for many concurrent requests,
//! eviction of idle models only (never one with a stream in flight), refusal with the
//! shortfall when nothing can go, keep-alive 0, and unloading deferred until a stream
//! ends.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use perch_engine::generate::{Event, GenerateRequest};
use perch_engine::inspect::inspect;
use perch_runtime::manager::{ManagerSettings, ModelManager};
use perch_runtime::planner::{Budget, Footprint, MemoryPlanner};
use perch_runtime::{KeepAlive, ManagerError, ModelStore, Unloaded};

const CONTEXT: u64 = 512;

/// A store holding the test model twice, as `a` and `b`.
fn store() -> ModelStore {
    let home = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "manager-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&home);
    let store = ModelStore::new(home, None);
    let model = perch_test_support::test_model();
    store.add(&model, Some("a")).unwrap();
    store.copy("a", "b").unwrap();
    store
}

/// A manager whose budget holds `models` copies of the test model.
fn manager(store: ModelStore, models: f64) -> ModelManager {
    manager_keeping(store, models, KeepAlive::Forever)
}

/// The same, with `keep_alive` as the node's default.
fn manager_keeping(store: ModelStore, models: f64, keep_alive: KeepAlive) -> ModelManager {
    let facts = inspect(&perch_test_support::test_model()).unwrap();
    let probe = MemoryPlanner::new(
        Budget {
            total: u64::MAX / 2,
            os_reserve: 0,
            working_set: None,
        },
        0,
        CONTEXT,
    );
    let one = probe.need(&Footprint::from(&facts)).total();
    let budget = Budget {
        total: (one as f64 * models) as u64,
        os_reserve: 0,
        working_set: None,
    };
    ModelManager::new(
        store,
        MemoryPlanner::new(budget, 0, CONTEXT),
        ManagerSettings {
            keep_alive,
            max_loaded: 4,
            load_timeout: Duration::from_secs(120),
            gguf_engine: perch_engine::EngineKind::LlamaCpp,
        },
    )
}

fn long_request() -> GenerateRequest {
    GenerateRequest {
        prompt: vec![1, 2, 3, 4],
        max_tokens: 400,
        ignore_eos: true,
        ..GenerateRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_share_one_load() {
    let manager = manager(store(), 3.0);
    let leases = futures_util::future::join_all((0..6).map(|_| manager.acquire("a", None))).await;
    let first = leases[0].as_ref().unwrap().model().clone();
    for lease in &leases {
        assert!(Arc::ptr_eq(lease.as_ref().unwrap().model(), &first));
    }
    assert_eq!(first.in_flight(), 6);
    assert_eq!(manager.loaded().len(), 1);
    drop(leases);
    assert_eq!(first.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn eviction_never_takes_a_model_with_a_stream_in_flight() {
    let manager = manager(store(), 1.5);
    let a = manager.acquire("a", None).await.unwrap();
    let mut stream = a.model().engine.generate(long_request()).unwrap();
    // The stream is running: its first tokens arrive.
    assert!(matches!(stream.recv().await, Some(Ok(Event::Chunk { .. }))));

    let refused = manager
        .acquire("b", None)
        .await
        .err()
        .expect("b cannot fit");
    let ManagerError::InsufficientMemory(message) = refused else {
        panic!("expected a memory refusal, got {refused:?}")
    };
    assert!(message.contains("short by"), "{message}");
    assert_eq!(manager.loaded().len(), 1, "a stays loaded");

    // The stream was not cut: it runs to its end.
    let mut chunks = 0;
    let mut finished = None;
    while let Some(event) = stream.recv().await {
        match event.unwrap() {
            Event::Chunk { .. } => chunks += 1,
            Event::Done(f) => finished = Some(f),
        }
    }
    let finished = finished.expect("the stream finished");
    assert!(chunks > 0 && finished.completion_tokens > 1, "{finished:?}");
    drop(stream);
    drop(a);

    // Now a is idle: loading b evicts it.
    let b = manager.acquire("b", None).await.unwrap();
    let names: Vec<String> = manager.loaded().iter().map(|m| m.name.clone()).collect();
    assert_eq!(names, ["b"]);
    drop(b);
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_zero_unloads_after_the_response_and_unload_waits_for_streams() {
    let manager = manager(store(), 3.0);
    let lease = manager
        .acquire("a", Some(KeepAlive::For(Duration::ZERO)))
        .await
        .unwrap();
    assert_eq!(manager.loaded().len(), 1);
    drop(lease);
    assert!(manager.loaded().is_empty(), "keep_alive 0 unloads at once");

    let lease = manager.acquire("b", None).await.unwrap();
    assert_eq!(manager.unload("b"), Unloaded::AfterRequests(1));
    assert_eq!(manager.loaded().len(), 1, "still serving its request");
    drop(lease);
    assert!(manager.loaded().is_empty());
    assert_eq!(manager.unload("b"), Unloaded::NotLoaded);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_hostile_names_are_refused() {
    let manager = manager(store(), 3.0);
    assert!(matches!(
        manager.acquire("nope:1b", None).await,
        Err(ManagerError::NotFound(_))
    ));
    assert!(matches!(
        manager.acquire("../../etc/passwd", None).await,
        Err(ManagerError::BadName(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_load_sets_the_standing_keep_alive_and_a_request_its_own() {
    let manager = manager_keeping(store(), 3.0, KeepAlive::For(Duration::ZERO));
    drop(manager.acquire("a", None).await.unwrap());
    assert!(
        manager.loaded().is_empty(),
        "the default here unloads at once"
    );

    manager.load("a", Some(KeepAlive::Forever)).await.unwrap();
    drop(manager.acquire("a", None).await.unwrap());
    let loaded = manager.loaded();
    assert_eq!(loaded.len(), 1, "kept, as the load asked");
    assert_eq!(loaded[0].expires_at(), None);

    drop(
        manager
            .acquire("a", Some(KeepAlive::For(Duration::ZERO)))
            .await
            .unwrap(),
    );
    assert!(manager.loaded().is_empty(), "this request asked for 0");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_outlasting_the_idle_deadline_does_not_unload_its_model() {
    let manager = manager_keeping(store(), 3.0, KeepAlive::For(Duration::from_secs(1)));
    drop(manager.acquire("a", None).await.unwrap());
    // Idle now, due to go in a second; a request arrives and runs past that.
    let lease = manager.acquire("a", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(manager.loaded().len(), 1, "busy models never expire");
    drop(lease);
    assert_eq!(manager.loaded().len(), 1, "its keep-alive starts now");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(manager.loaded().is_empty(), "and ends a second later");
}

#[tokio::test(flavor = "multi_thread")]
async fn making_room_unloads_only_as_many_idle_models_as_needed() {
    let store = store();
    store.copy("a", "c").unwrap();
    let manager = manager(store, 2.5);
    drop(manager.acquire("a", None).await.unwrap());
    drop(manager.acquire("b", None).await.unwrap());
    // Past the grace a just-loaded model has, so both can be evicted; a is the older.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    drop(manager.acquire("b", None).await.unwrap());
    drop(manager.acquire("c", None).await.unwrap());
    let names: Vec<String> = manager.loaded().iter().map(|m| m.name.clone()).collect();
    assert_eq!(names, ["b", "c"], "only the least recently used went");
}
