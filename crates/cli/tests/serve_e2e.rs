//! Starts the real `perch serve` on loopback with the SmolLM2 test model (one server
//! without a key, one with) and runs the end-to-end suite in `tests/e2e/` against them
//! with the official `openai` Python client. Also checks the refusals and shutdown that
//! need the process itself.

use std::io::{BufRead, BufReader};
use std::path::Path;

use perch_test_support::{repo, script, test_model};
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    base_url: String,
}

impl Server {
    fn start(extra: &[&str], home: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_perch"))
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
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start perch serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = lines
            .next()
            .expect("perch serve prints its address")
            .unwrap();
        let base_url = line.rsplit(' ').next().unwrap().to_owned();
        assert!(base_url.starts_with("http://127.0.0.1:"), "{line}");
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, base_url }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[test]
fn openai_client_suite_against_the_real_server() {
    let home = std::env::temp_dir().join(format!("perch-e2e-{}", std::process::id()));
    let tokenizer_dir = home.join("smollm2-mlx");
    let _ = std::fs::remove_dir_all(&home);
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

    let plain = Server::start(&[], &home);
    let keyed = Server::start(&["--api-key", "sekret-key"], &home);
    let model = test_model()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let status = Command::new(script("python-env", &[]))
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(repo().join("tests/e2e"))
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
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn refuses_a_non_loopback_address_without_a_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_perch"))
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .env_remove("PERCH_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without an API key") && stderr.contains("--api-key"),
        "{stderr}"
    );
}
