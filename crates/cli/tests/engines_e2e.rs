//! Which engine runs a model, end to end through the real `perch serve`: the GGUF test
//! model runs on llama.cpp unless asked otherwise, `--engine mlx` and the `gguf_engine`
//! setting move it to MLX (for the next load; a loaded model keeps its engine), the API
//! says which engine each model is on, both engines answer the same chat and llama.cpp
//! embeds inputs of any length, and an engine that cannot read a model is refused by name.

mod common;

use common::{curl, Server};
use perch_test_support::{test_model, ScratchDir};
use serde_json::{json, Value};
use std::process::Command;

fn serve(extra: &[&str], home: &std::path::Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_perch"));
    command
        .args(["serve", "--port", "0", "--model"])
        .arg(test_model())
        .args(extra)
        .env("PERCH_HOME", home)
        .env("HF_ENDPOINT", "http://127.0.0.1:9");
    Server::spawn(command)
}

fn model_name() -> String {
    test_model()
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn call(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", server.root());
    let mut args = vec!["-X", method, url.as_str()];
    let text = body.map(|b| b.to_string());
    if let Some(text) = &text {
        args.extend(["-H", "content-type: application/json", "-d", text]);
    }
    let answer = curl(None, &args);
    (answer.status, answer.json())
}

/// The engine `/api/perch/models` and `/api/show` give the test model (they must agree).
fn engine_listed(server: &Server) -> String {
    let (status, list) = call(server, "GET", "/api/perch/models", None);
    assert_eq!(status, 200);
    let entry = list["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == model_name())
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    let (status, shown) = call(
        server,
        "POST",
        "/api/show",
        Some(json!({"model": model_name()})),
    );
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["engine"], entry["engine"], "{shown} vs {entry}");
    entry["engine"].as_str().unwrap().to_owned()
}

/// A greedy answer to a fixed question.
fn answer(server: &Server) -> String {
    let (status, reply) = call(
        server,
        "POST",
        "/v1/chat/completions",
        Some(json!({
            "model": model_name(),
            "temperature": 0,
            "max_tokens": 12,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
        })),
    );
    assert_eq!(status, 200, "{reply}");
    reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn gguf_runs_on_llama_cpp_and_moves_to_mlx_when_asked() {
    let home = ScratchDir::new("engines");
    let server = serve(&[], home.path());
    assert_eq!(engine_listed(&server), "llama.cpp");
    // Which words win a near tie differs between the engines (their numbers differ in
    // rounding: crates/llama/tests/against_mlx.rs); each must answer.
    let on_llama = answer(&server);
    assert!(!on_llama.trim().is_empty(), "{on_llama:?}");

    // An unknown engine is refused by name, and nothing changes.
    // Embeddings on llama.cpp: a longer input after short ones gets a context that
    // holds it (a context sized for the first request once made llama.cpp abort).
    let long = "river stone lantern ".repeat(300);
    for inputs in [
        json!(["a"]),
        json!(["a", "longer text here"]),
        json!([long, "b"]),
    ] {
        let (status, embedded) = call(
            &server,
            "POST",
            "/v1/embeddings",
            Some(json!({"model": model_name(), "input": inputs})),
        );
        assert_eq!(status, 200, "{embedded}");
        let width = embedded["data"][0]["embedding"].as_array().unwrap().len();
        assert_eq!(width, 576, "SmolLM2-135M's hidden size");
    }

    let (status, refused) = call(
        &server,
        "PUT",
        "/api/perch/settings",
        Some(json!({"gguf_engine": "vulkan"})),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(refused.to_string().contains("gguf_engine"), "{refused}");

    // The setting moves the next load; the loaded model stays where it is until then.
    let (status, saved) = call(
        &server,
        "PUT",
        "/api/perch/settings",
        Some(json!({"gguf_engine": "mlx"})),
    );
    assert_eq!(status, 200, "{saved}");
    assert_eq!(engine_listed(&server), "llama.cpp");
    let (status, _) = call(
        &server,
        "POST",
        "/api/perch/unload",
        Some(json!({"model": model_name()})),
    );
    assert_eq!(status, 200);
    let (status, loaded) = call(
        &server,
        "POST",
        "/api/perch/load",
        Some(json!({"model": model_name()})),
    );
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["engine"], "mlx", "{loaded}");
    assert_eq!(engine_listed(&server), "mlx");
    let on_mlx = answer(&server);
    assert!(!on_mlx.trim().is_empty(), "{on_mlx:?}");
    server.stop();
}

#[test]
fn the_engine_flag_chooses_for_gguf_and_an_mlx_folder_refuses_llama_cpp() {
    let home = ScratchDir::new("engine-flag");
    let server = serve(&["--engine", "mlx"], home.path());
    assert_eq!(engine_listed(&server), "mlx");
    server.stop();

    // `perch run` on an MLX folder with --engine llama.cpp: a clear refusal.
    let folder = home.path().join("smollm2-mlx");
    let import = Command::new(env!("CARGO_BIN_EXE_perch"))
        .arg("import")
        .arg(test_model())
        .arg(&folder)
        .output()
        .unwrap();
    assert!(import.status.success(), "{import:?}");
    let run = Command::new(env!("CARGO_BIN_EXE_perch"))
        .args(["run", "--engine", "llama.cpp"])
        .arg(&folder)
        .env("PERCH_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("llama.cpp reads GGUF files only"),
        "{stderr}"
    );
}
