//! The web UI in a real browser: starts the real `perch serve` (the SmolLM2 test model,
//! downloads from the hub look-alike) and runs `tests/ui/ui.test.mjs`, which drives
//! Debian's Chromium with playwright-core through the models page, the memory gauge, a
//! download and its cancel, a chat with stop and regenerate, settings and API keys, at
//! desktop width and at 400 px. Its screenshots are kept under the target folder's
//! `tmp/ui-screenshots` for people to look at.

use std::path::PathBuf;
use std::process::Command;

mod common;

use common::{curl, Server};
use perch_test_support::{gguf_repo, repo, script, test_model, HubLookalike, GGUF_REPO};

#[test]
fn the_web_ui_works_in_a_real_browser() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-e2e");
    let _ = std::fs::remove_dir_all(&scratch);
    let hub_root = scratch.join("hub");
    gguf_repo(&hub_root);
    let hub = HubLookalike::start(&hub_root);
    let home = scratch.join("home");
    let mut command = Command::new(env!("CARGO_BIN_EXE_perch"));
    command
        .args(["serve", "--port", "0", "--model"])
        .arg(test_model())
        .env("PERCH_HOME", &home)
        .env("PERCH_SECRET_STORE", "file")
        .env("HF_ENDPOINT", &hub.url);
    let server = Server::spawn(command);
    let models = curl(None, &[&format!("{}/api/perch/models", server.root())]).json();
    let model = models["models"][0]["name"].as_str().unwrap().to_owned();
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    let tests = script("ui-test-env", &[]);
    let status = Command::new("node")
        .arg(repo().join("tests/ui/ui.test.mjs"))
        .current_dir(&tests)
        .env("PERCH_URL", server.root())
        .env("MODEL", &model)
        .env("PULL_NAME", format!("hf.co/{GGUF_REPO}:Q4_1"))
        .env("HUB_URL", &hub.url)
        .env("SCREENSHOTS", &screenshots)
        .status()
        .expect("run node");
    eprintln!("ui_e2e: screenshots in {}", screenshots.display());
    assert!(status.success(), "the browser tests failed (output above)");
    assert!(server.stop().success());
}
