//! The real `perch serve` with its settings file: a change through the admin API is in
//! force at once and written to the file (flags given at start are not); a hand edit of
//! the file applies while it runs (a model loaded afterwards gets the new context); a
//! broken edit is refused, said so in the log file, and the last good settings stay.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{curl, Server};
use perch_test_support::test_model;
use serde_json::Value;

fn home() -> PathBuf {
    let home = std::env::temp_dir().join(format!("perch-settings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    std::fs::create_dir_all(&home).unwrap();
    home
}

fn start(home: &Path) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_perch"));
    command
        .args(["serve", "--port", "0", "--keep-alive", "2m", "--model"])
        .arg(test_model())
        .env("PERCH_HOME", home)
        .env("HF_ENDPOINT", "http://127.0.0.1:9");
    Server::spawn(command)
}

fn settings(server: &Server) -> Value {
    curl(None, &[&format!("{}/api/perch/settings", server.root())]).json()
}

fn send(server: &Server, method: &str, path: &str, body: &str) -> common::Answer {
    curl(
        None,
        &[
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            &format!("{}{path}", server.root()),
        ],
    )
}

fn put(server: &Server, body: &str) -> common::Answer {
    send(server, "PUT", "/api/perch/settings", body)
}

fn post(server: &Server, path: &str, body: &str) -> common::Answer {
    send(server, "POST", path, body)
}

/// Polls `settings` until `done` holds (a hand edit applies within moments).
fn settings_once(server: &Server, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let now = settings(server);
        if done(&now) || start.elapsed() > Duration::from_secs(15) {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn settings_change_live_from_the_api_and_from_the_file_and_bad_edits_are_refused() {
    let home = home();
    let server = start(&home);
    let file = home.join("settings.toml");
    let model = curl(None, &[&format!("{}/api/perch/models", server.root())]).json()["models"][0]
        ["name"]
        .as_str()
        .unwrap()
        .to_owned();

    // The flag is in force but not written anywhere.
    let now = settings(&server);
    assert_eq!(now["keep_alive"], "2m");
    assert_eq!(now["settings_file"], file.display().to_string());
    assert!(!file.exists(), "nothing is written before a change");

    // Through the API: in force at once, and in the file.
    let answer = put(
        &server,
        r#"{"max_loaded_models": 2, "context_length": 4096}"#,
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["max_loaded_models"], 2);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("max_loaded_models = 2"), "{text}");
    assert!(
        text.contains("keep_alive = \"5m\""),
        "the flag is not written: {text}"
    );

    // A bad value through the API changes nothing.
    let answer = put(&server, r#"{"context_length": 12}"#);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(
        answer.json()["error"]["param"],
        "context_length",
        "{}",
        answer.body
    );
    let answer = put(&server, r#"{"colour": "blue"}"#);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // A hand edit applies while it runs: a model loaded afterwards gets the new context.
    std::fs::write(
        &file,
        text.replace("context_length = 4096", "context_length = 2048"),
    )
    .unwrap();
    let now = settings_once(&server, |s| s["context_length"] == 2048);
    assert_eq!(now["context_length"], 2048, "{now}");
    assert_eq!(
        now["keep_alive"], "2m",
        "an edit leaves the settings it does not touch"
    );
    let named = format!(r#"{{"model": "{model}"}}"#);
    let unload = post(&server, "/api/perch/unload", &named);
    assert_eq!(unload.status, 200, "{}", unload.body);
    let load = post(&server, "/api/perch/load", &named);
    assert_eq!(load.status, 200, "{}", load.body);
    assert_eq!(load.json()["context_length"], 2048);

    // A broken edit is refused with a reason in the log file; the last good settings stay.
    std::fs::write(&file, "context_length = \"long\"\n").unwrap();
    let logs = home.join("logs");
    let start = Instant::now();
    let refused = loop {
        let text: String = std::fs::read_dir(&logs)
            .unwrap()
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap_or_default())
            .collect();
        if text.contains("refused the edited settings file") || start.elapsed().as_secs() > 15 {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        refused.contains("refused the edited settings file") && refused.contains("settings.toml"),
        "the log says why: {refused}"
    );
    let now = settings(&server);
    assert_eq!(now["context_length"], 2048);
    assert_eq!(now["max_loaded_models"], 2);
    assert_eq!(now["log_dir"], logs.display().to_string());

    // Fixing the file applies again.
    std::fs::write(&file, "context_length = 1024\nmax_loaded_models = 2\n").unwrap();
    let now = settings_once(&server, |s| s["context_length"] == 1024);
    assert_eq!(now["context_length"], 1024, "{now}");
    assert!(server.stop().success());
    let _ = std::fs::remove_dir_all(&home);
}
