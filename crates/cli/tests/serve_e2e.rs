//! Starts the real `perch serve` on loopback with the SmolLM2 test model (one server
//! without a key, one with) and runs the end-to-end suite in `tests/e2e/` against them
//! with the official `openai` Python client. Also checks the refusals and shutdown that
//! need the process itself.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use common::Server;
use perch_test_support::{repo, script, test_model, ScratchDir};
use std::process::Command;

impl Server {
    fn start(extra: &[&str], home: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_perch"));
        command
            .args([
                "serve",
                "--port",
                "0",
                "--max-body-bytes",
                "65536",
                "--model",
            ])
            .arg(test_model())
            .args(extra)
            .env("PERCH_HOME", home)
            .env("HF_ENDPOINT", "http://127.0.0.1:9");
        Server::spawn(command)
    }

    /// The exit status, if the process ends within `limit`.
    fn exit_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// Starts a streaming completion whose 8,000-token prompt takes minutes to read on
    /// this CPU, and waits for its response headers; returns the open connection.
    fn start_long_stream(&self) -> TcpStream {
        let prompt: Vec<String> = (0..8_000).map(|i| (100 + i % 20_000).to_string()).collect();
        self.start_stream(&format!("[{}]", prompt.join(",")), 1)
    }

    /// Starts a streaming completion of `prompt` (JSON) over a raw connection and waits
    /// for its response headers; returns the open connection.
    fn start_stream(&self, prompt: &str, max_tokens: usize) -> TcpStream {
        let body = format!(
            r#"{{"model":"{}","prompt":{prompt},"max_tokens":{max_tokens},"temperature":0,"stream":true}}"#,
            self.model_name(),
        );
        let address = self
            .base_url
            .trim_start_matches("http://")
            .trim_end_matches("/v1");
        let mut socket = TcpStream::connect(address).unwrap();
        write!(
            socket,
            "POST /v1/completions HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut head = [0u8; 12];
        socket.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        socket
    }

    /// The name `perch serve --model PATH` gives the model: its file name without
    /// `.gguf`.
    fn model_name(&self) -> String {
        test_model()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

#[test]
fn openai_client_suite_against_the_real_server() {
    let home_dir = ScratchDir::new("e2e");
    let home = home_dir.path();
    let tokenizer_dir = home.join("smollm2-mlx");
    let import = Command::new(env!("CARGO_BIN_EXE_perch"))
        .arg("import")
        .arg(test_model())
        .arg(&tokenizer_dir)
        .output()
        .unwrap();
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );

    // On MLX: the suites check greedy answers against mlx-lm's on the same weights
    // (llama.cpp's rounding breaks this prompt's first-token near-tie the other way;
    // crates/llama/tests/against_mlx.rs compares the engines, engines_e2e.rs serves both,
    // and Schemathesis below fuzzes the default, llama.cpp).
    let plain = Server::start(&["--engine", "mlx"], home);
    let keyed = Server::start(&["--engine", "mlx", "--api-key", "sekret-key"], home);
    let model = plain.model_name();
    let status = Command::new(script("python-env", &[]))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo().join("tests/e2e/test_openai.py"))
        .arg(repo().join("tests/e2e/test_anthropic.py"))
        .arg(repo().join("tests/e2e/test_embeddings.py"))
        .env("PERCH_BASE_URL", &plain.base_url)
        .env("PERCH_KEYED_URL", &keyed.base_url)
        .env("PERCH_API_KEY", "sekret-key")
        .env("PERCH_MODEL", &model)
        .env("PERCH_TOKENIZER_DIR", &tokenizer_dir)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the end-to-end suite failed (pytest output above)"
    );
    assert!(
        plain.stop().success(),
        "SIGTERM ends perch serve with status 0"
    );
    assert!(keyed.stop().success());
}

#[test]
fn shutdown_cancels_what_outlives_the_grace_period_and_exits_0() {
    let home_dir = ScratchDir::new("shutdown");
    let home = home_dir.path();
    let mut server = Server::start(&["--shutdown-grace", "1"], home);
    let mut stream = server.start_long_stream();
    server.signal("TERM");
    let status = server
        .exit_within(Duration::from_secs(60))
        .expect("perch serve exits soon after the grace period, not after the prompt");
    assert!(status.success(), "{status:?}");
    // The client's stream ended with the server instead of hanging.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut rest = Vec::new();
    let ended = match stream.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(ended, "the abandoned stream was left open");
}

#[test]
fn shutdown_lets_a_stream_in_flight_finish() {
    let home_dir = ScratchDir::new("drain");
    let home = home_dir.path();
    let mut server = Server::start(&["--shutdown-grace", "120"], home);
    let mut socket = server.start_stream(r#""The capital of France is""#, 12);
    server.signal("TERM");
    let mut rest = String::new();
    socket.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("data: [DONE]"), "{rest}");
    assert!(rest.contains(r#""finish_reason":"length""#), "{rest}");
    let status = server
        .exit_within(Duration::from_secs(60))
        .expect("perch serve exits once the stream is done");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_second_signal_quits_at_once() {
    let home_dir = ScratchDir::new("quit");
    let home = home_dir.path();
    let mut server = Server::start(&["--shutdown-grace", "600"], home);
    let _stream = server.start_long_stream();
    server.signal("INT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the first signal waits for the request in flight"
    );
    server.signal("INT");
    let status = server
        .exit_within(Duration::from_secs(20))
        .expect("a second signal quits without waiting for the grace period");
    assert_eq!(status.code(), Some(130), "128 + SIGINT");
}

#[test]
fn refuses_limits_that_would_refuse_everything() {
    for (flag, value) in [
        ("--max-queue", "0"),
        ("--max-connections", "0"),
        ("--header-timeout", "0"),
        ("--max-prompt-tokens", "0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_perch"))
            .args(["serve", "--port", "0", flag, value])
            .env("PERCH_HOME", std::env::temp_dir().join("perch-refusals"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{stderr}");
    }
}

#[test]
fn refuses_a_blank_api_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_perch"))
        .args(["serve", "--port", "0", "--api-key", "   "])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("API key is blank"), "{stderr}");
}

/// Schemathesis generates requests from `/openapi.json` (valid ones and broken ones) and
/// checks every answer against the document: no server errors, statuses, content types,
/// headers and bodies as documented, invalid data refused. Not checked: that every
/// schema-valid request is accepted, since a prompt's length in tokens, the model's
/// context and its vocabulary bound requests in ways a JSON schema cannot state. Prompts
/// and answers are kept short so the run takes about a minute on a small CPU; pulls go
/// to a hub address where nothing listens, so they fail at once.
#[test]
fn schemathesis_finds_no_server_error_and_no_departure_from_the_document() {
    let home_dir = ScratchDir::new("schemathesis");
    let home = home_dir.path();
    let server = Server::start(
        &["--max-prompt-tokens", "64", "--max-output-tokens", "4"],
        home,
    );
    let schema = server.base_url.replace("/v1", "/openapi.json");
    let status = Command::new(script("python-env", &[]))
        .args(["-m", "schemathesis.cli", "run", &schema])
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        // Not fuzzed: deleting the model under test; the memory stream, which never
        // ends; and changing the settings, which would move the server under test onto
        // other addresses or ports (tests/settings_e2e.rs and tailscale_e2e.rs drive it).
        .args(["--exclude-operation-id", "ollamaDelete"])
        .args(["--exclude-operation-id", "perchMemoryStream"])
        .args(["--exclude-operation-id", "perchUpdateSettings"])
        .args(["--max-examples", "50", "--seed", "7"])
        .args(["--generation-database", "none", "--request-timeout", "120"])
        .current_dir(home)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "Schemathesis found problems (report above)"
    );
}
