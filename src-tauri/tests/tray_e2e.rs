//! The tray menu, for real: under Xvfb with a private D-Bus, `trayer` hosts the app's
//! tray icon and `xdotool` works the menu as a person would: the menu opens on a click,
//! the test model's check item loads the model (checked through the API), and Quit ends
//! the app with status 0. Only the processes this test started are stopped, by PID.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{free_port, home_with_test_model, screenshots, spawn, until, Desktop};
use serde_json::Value;

/// Runs xdotool with `args` on `desktop`; its output.
fn xdotool(desktop: &Desktop, args: &[&str]) -> String {
    let mut command = Command::new("xdotool");
    command.args(args);
    desktop.env(&mut command);
    let out = command.output().expect("run xdotool");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the tray icon is: the right end of trayer's bar (its icons pack from the right).
fn tray_icon(desktop: &Desktop) -> (i64, i64) {
    let start = Instant::now();
    loop {
        for window in xdotool(desktop, &["search", "--class", "trayer"]).lines() {
            let geometry = xdotool(desktop, &["getwindowgeometry", "--shell", window]);
            let field = |name: &str| -> i64 {
                geometry
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}=")))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            if field("WIDTH") == 200 && field("HEIGHT") == 32 {
                return (field("X") + 200 - 18, field("Y") + 16);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "trayer's bar appears"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Takes a picture of the whole screen.
fn screenshot(desktop: &Desktop, path: &std::path::Path) {
    let mut xwd = Command::new("sh");
    xwd.arg("-c").arg(format!(
        "xwd -root -silent | /usr/bin/convert xwd:- {}",
        path.display()
    ));
    desktop.env(&mut xwd);
    let _ = xwd.status();
}

/// Clicks the tray icon at `at`, lets the menu open, and takes a picture of it.
fn open_menu(desktop: &Desktop, at: (i64, i64), picture: &std::path::Path) {
    let (x, y) = (at.0.to_string(), at.1.to_string());
    xdotool(desktop, &["mousemove", &x, &y, "click", "1"]);
    std::thread::sleep(Duration::from_millis(800));
    screenshot(desktop, picture);
}

fn loaded(api: &str) -> bool {
    reqwest::blocking::get(format!("{api}/api/perch/models"))
        .and_then(|r| r.json::<Value>())
        .is_ok_and(|m| m["models"][0]["loaded"] == true)
}

#[test]
fn the_tray_menu_loads_a_model_and_quits() {
    let port = free_port();
    let home = home_with_test_model("tray-e2e", port);
    let api = format!("http://127.0.0.1:{port}");
    let shots = screenshots("tray-screenshots");
    let desktop = Desktop::start();

    let mut trayer = Command::new("trayer");
    trayer.args([
        "--edge",
        "top",
        "--align",
        "right",
        "--widthtype",
        "pixel",
        "--width",
        "200",
        "--heighttype",
        "pixel",
        "--height",
        "32",
        "--transparent",
        "false",
    ]);
    desktop.env(&mut trayer);
    let _trayer = spawn(&mut trayer);

    let mut app = Command::new(env!("CARGO_BIN_EXE_perch-app"));
    // HOME too: "Always on" writes the user's autostart folder.
    app.env("PERCH_HOME", &home)
        .env("HOME", &home)
        .env("PERCH_SECRET_STORE", "file")
        .env("HF_ENDPOINT", "http://127.0.0.1:9");
    desktop.env(&mut app);
    let mut app = spawn(&mut app);
    until("the app to serve", Duration::from_secs(60), || {
        reqwest::blocking::get(format!("{api}/health")).is_ok()
    });
    assert!(!loaded(&api));
    let (x, y) = tray_icon(&desktop);
    // The menu lists the model once the first reading is in.
    std::thread::sleep(Duration::from_secs(2));

    // Open the menu; the first item that can be chosen is the model's check item.
    open_menu(&desktop, (x, y), &shots.join("menu.png"));
    xdotool(&desktop, &["key", "Down", "Return"]);
    until("the model to load", Duration::from_secs(60), || {
        loaded(&api)
    });
    std::thread::sleep(Duration::from_secs(2));
    open_menu(&desktop, (x, y), &shots.join("menu-loaded.png"));

    // Quit is the last item.
    xdotool(&desktop, &["key", "Up", "Return"]);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = app.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "Quit ends the app"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    eprintln!("tray_e2e: screenshots in {}", shots.display());
}

#[test]
fn the_app_says_so_when_the_port_is_taken() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let home = home_with_test_model("port-taken", port);
    let desktop = Desktop::start();
    let mut app = Command::new(env!("CARGO_BIN_EXE_perch-app"));
    app.env("PERCH_HOME", &home)
        .env("PERCH_SECRET_STORE", "file");
    desktop.env(&mut app);
    let out = app
        .stdout(std::process::Stdio::null())
        .output()
        .expect("run the app");
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!("port {port} is already in use")) && said.contains("perch serve"),
        "{said}"
    );
}

#[test]
fn a_second_launch_opens_the_first_ones_models_window() {
    let port = free_port();
    let home = home_with_test_model("second-launch", port);
    let desktop = Desktop::start();
    let launch = || {
        let mut app = Command::new(env!("CARGO_BIN_EXE_perch-app"));
        app.env("PERCH_HOME", &home)
            .env("HOME", &home)
            .env("PERCH_SECRET_STORE", "file");
        desktop.env(&mut app);
        app
    };
    let _first = spawn(&mut launch());
    let api = format!("http://127.0.0.1:{port}");
    until("the first app to serve", Duration::from_secs(60), || {
        reqwest::blocking::get(format!("{api}/health")).is_ok()
    });
    let models_window = || {
        !xdotool(&desktop, &["search", "--name", "Models$"])
            .trim()
            .is_empty()
    };
    assert!(!models_window(), "no window at start");
    let second = launch().output().expect("run a second app");
    assert!(
        second.status.success(),
        "the second launch hands over and ends: {second:?}"
    );
    until(
        "the first app's Models window",
        Duration::from_secs(20),
        models_window,
    );
}
