//! What the app's end-to-end tests share: a private desktop (Xvfb and a session D-Bus),
//! child processes that die with the test, free ports, a data folder holding the test
//! model, and waiting for a condition.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn spawn(command: &mut Command) -> Running {
    Running(
        command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}")),
    )
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The display and the session bus the app and its driver share.
pub struct Desktop {
    display: String,
    bus: String,
    _xvfb: Running,
    _dbus: Running,
}

impl Desktop {
    pub fn start() -> Desktop {
        // One display per desktop: tests of one file run side by side.
        static DESKTOPS: AtomicU32 = AtomicU32::new(0);
        let n = DESKTOPS.fetch_add(1, Ordering::Relaxed);
        let display = format!(":{}", 100 + (std::process::id() % 200) * 8 + n);
        let xvfb = spawn(Command::new("Xvfb").args([&display, "-screen", "0", "1280x900x24"]));
        let mut dbus = Command::new("dbus-daemon")
            .args(["--session", "--print-address", "--nofork"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start a private dbus-daemon");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(dbus.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        Desktop {
            display,
            bus: line.trim().to_owned(),
            _xvfb: xvfb,
            _dbus: Running(dbus),
        }
    }

    pub fn env(&self, command: &mut Command) {
        command
            .env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus)
            .env("NO_AT_BRIDGE", "1");
    }
}

pub fn until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A data folder for the app under the test's scratch folder `name`, holding the test
/// model, with the app set to listen on `port`.
pub fn home_with_test_model(name: &str, port: u16) -> PathBuf {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&scratch);
    let home = scratch.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("settings.toml"), format!("port = {port}\n")).unwrap();
    perch_runtime::ModelStore::new(home.clone(), None)
        .add(&perch_test_support::test_model(), None)
        .expect("the test model enters the store");
    home
}

/// Where a test keeps its screenshots.
pub fn screenshots(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
