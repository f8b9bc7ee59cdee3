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
