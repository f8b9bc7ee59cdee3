//! The real `perch serve` as a child process, for the CLI's end-to-end tests: started
//! on a free loopback port (its address read from the line it prints), stopped with
//! SIGTERM, killed if a test panics.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `perch serve`.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
}

impl Server {
    /// Runs `command` (a `perch serve` invocation) and waits for its address.
    pub fn spawn(mut command: Command) -> Server {
        let mut child = command
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

    /// The node's root URL (without `/v1`).
    pub fn root(&self) -> String {
        self.base_url.trim_end_matches("/v1").to_owned()
    }

    /// Sends signal `name` (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// An HTTP answer as curl saw it: the status (0 when no connection was made, with
/// curl's exit code in `curl_exit`) and the body.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub curl_exit: i32,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Runs curl with `args` (inside the network namespace `netns`, if given).
pub fn curl(netns: Option<&str>, args: &[&str]) -> Answer {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "curl"]);
            c
        }
        None => Command::new("curl"),
    };
    let out = command
        .args(["-sS", "--max-time", "30", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    Answer {
        status: status.trim().parse().unwrap_or(0),
        body: body.to_owned(),
        curl_exit: out.status.code().unwrap_or(-1),
    }
}
