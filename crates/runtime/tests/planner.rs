//! The memory planner: header-only estimates against what a real load takes, the
//! catalog's shapes against a real file's header, and verdicts for a table of model
//! sizes and machine sizes.

use perch_engine::inspect::{inspect, inspect_on};
use perch_engine::{Engine, EngineKind, MlxEngine, Serving};
use perch_runtime::catalog;
use perch_runtime::planner::{Budget, Fit, Footprint, MemoryPlanner, Resident};

const GB: u64 = 1_000_000_000;

#[test]
fn header_estimates_match_what_loading_takes() {
    let path = perch_test_support::test_model();
    let facts = inspect_on(&path, EngineKind::Mlx).unwrap();
    let engine = MlxEngine::load(&path).unwrap();
    let info = engine.info();
    assert_eq!(facts.weights_bytes, info.weights_bytes as u64);
    assert_eq!(facts.kv_bytes_per_token, info.kv_bytes_per_token as u64);
    assert_eq!(
        facts.context_length,
        info.config.max_position_embeddings as u64
    );
    assert_eq!(facts.architecture, "llama");
    assert_eq!(facts.quantization.as_deref(), Some("Q4_1"));
}

#[test]
fn header_estimates_match_what_llama_cpp_takes() {
    let path = perch_test_support::test_model();
    let facts = inspect(&path).unwrap();
    assert_eq!(facts.engine, EngineKind::LlamaCpp, "GGUF runs on llama.cpp");
    let engine = perch_llama::load(&path, Serving::new(1, 512)).unwrap();
    let info = engine.info();
    // llama.cpp's own count of its tensors' bytes, and its float16 keys and values.
    assert_eq!(facts.weights_bytes, info.weights_bytes as u64);
    assert_eq!(facts.kv_bytes_per_token, info.kv_bytes_per_token as u64);
    let mlx = inspect_on(&path, EngineKind::Mlx).unwrap();
    assert!(
        facts.weights_bytes < mlx.weights_bytes
            && facts.kv_bytes_per_token <= mlx.kv_bytes_per_token
    );
}

#[test]
fn the_catalog_sizes_smollm2_as_its_file_does_on_each_engine() {
    let entry = catalog::find("smollm2:135m").unwrap();
    assert!(entry.is_gguf());
    assert_eq!(
        entry.engine_with(EngineKind::LlamaCpp),
        EngineKind::LlamaCpp
    );
    assert_eq!(entry.engine_with(EngineKind::Mlx), EngineKind::Mlx);
    let element = perch_engine::inspect::compute_element_bytes();
    for engine in [EngineKind::Mlx, EngineKind::LlamaCpp] {
        let facts = inspect_on(&perch_test_support::test_model(), engine).unwrap();
        let from_shape = entry.shape.footprint(engine, element, entry.context_length);
        let from_file = Footprint::from(&facts);
        let ratio = from_shape.weights_bytes as f64 / from_file.weights_bytes as f64;
        assert!(
            (0.97..1.03).contains(&ratio),
            "{engine}: shape {from_shape:?} file {from_file:?}"
        );
        assert_eq!(
            from_shape.kv_bytes_per_token, from_file.kv_bytes_per_token,
            "{engine}"
        );
        let params = entry.shape.parameters() as f64 / facts.parameters as f64;
        assert!((0.99..1.01).contains(&params), "{params}");
    }
    let mlx_dir = catalog::find("smollm2:360m").unwrap();
    assert!(!mlx_dir.is_gguf());
    assert_eq!(mlx_dir.engine_with(EngineKind::LlamaCpp), EngineKind::Mlx);
}

#[test]
fn every_catalog_entry_parses_with_a_hub_source_first() {
    let entries = catalog::entries();
    assert!(entries.len() >= 15);
    for e in entries {
        assert!(
            matches!(e.sources.first(), Some(catalog::Source::Hub { .. })),
            "{}",
            e.alias
        );
        assert!(e.shape.parameters() > 100_000_000, "{}", e.alias);
    }
    assert!(catalog::find(catalog::DEFAULT_MODEL).is_some());
}

fn planner(total_gb: u64) -> MemoryPlanner {
    let budget = Budget {
        total: total_gb * GB,
        os_reserve: 4 * GB,
        working_set: None,
    };
    MemoryPlanner::new(budget, 256 << 20, 8192)
}

#[test]
fn verdicts_for_model_sizes_and_machine_sizes() {
    let element = 2; // as on a Mac's GPU
    let table = [
        // (alias, machine GB, expected)
        ("qwen3:0.6b", 8, Fit::Fits),
        ("llama3.2:3b", 8, Fit::Fits),
        ("qwen3:8b", 8, Fit::WontFit),
        ("qwen3:8b", 16, Fit::Fits),
        ("qwen3:14b", 16, Fit::Fits),
        ("qwen3:32b", 16, Fit::WontFit),
        ("qwen3:32b", 24, Fit::WontFit),
        ("qwen3:32b", 32, Fit::Fits),
        ("qwen2.5-coder:32b", 64, Fit::Fits),
        ("qwen3:14b", 14, Fit::WontFit),
        ("llama3.1:8b", 11, Fit::Tight),
        ("mistral:7b", 10, Fit::WontFit),
    ];
    for (alias, machine, expected) in table {
        let entry = catalog::find(alias).unwrap();
        let footprint = entry
            .shape
            .footprint(EngineKind::Mlx, element, entry.context_length);
        let verdict = planner(machine).verdict(&footprint, &[]);
        assert_eq!(
            verdict.fit, expected,
            "{alias} on {machine} GB: {verdict:?}"
        );
        match verdict.fit {
            Fit::WontFit => {
                assert_eq!(verdict.shortfall, verdict.need.total() - verdict.available);
                let text = verdict.explain(alias);
                assert!(text.contains("short by"), "{text}");
            }
            _ => assert_eq!(verdict.shortfall, 0),
        }
    }
}

#[test]
fn advice_names_idle_models_to_unload_and_a_context_that_fits() {
    let entry = catalog::find("qwen3:8b").unwrap();
    let footprint = entry
        .shape
        .footprint(EngineKind::Mlx, 2, entry.context_length);
    let planner = planner(16);
    let need = planner.need(&footprint).total();
    let usable = planner.budget().usable();
    let resident = [
        Resident {
            name: "busy".into(),
            bytes: (usable - need) / 2,
            idle: false,
        },
        Resident {
            name: "idle-one".into(),
            bytes: usable - need,
            idle: true,
        },
    ];
    let verdict = planner.verdict(&footprint, &resident);
    assert_eq!(verdict.fit, Fit::WontFit);
    let text = verdict.explain("qwen3:8b");
    assert!(
        text.contains("unloading idle-one would make room"),
        "{text}"
    );
    assert!(!text.contains("unloading busy"), "{text}");

    // Weights alone nearly fill the room left: only a shorter context fits.
    let tight = [Resident {
        name: "busy".into(),
        bytes: usable - need + need / 8,
        idle: false,
    }];
    let verdict = planner.verdict(&footprint, &tight);
    let text = verdict.explain("qwen3:8b");
    assert!(text.contains("a context of"), "{text}");
    let context: u64 = text
        .split("a context of ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((512..8192).contains(&context), "{text}");
}
