//! The Debian package, installed into a scratch root: the app inside it finds libmlx in
//! the package (not in the build machine's wheel cache), and starts and serves with none
//! of Perch's variables set — only what any desktop program gets (HOME, DISPLAY, the
//! session bus).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

mod common;

use common::{free_port, spawn, until, Desktop};

#[test]
fn the_deb_installs_and_the_app_inside_serves_with_no_perch_variables() {
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deb-e2e");
    let _ = std::fs::remove_dir_all(&scratch);
    let script = perch_test_support::repo().join("scripts/package-deb");
    let built = Command::new("bash")
        .arg(script)
        .args(["--binary", env!("CARGO_BIN_EXE_perch-app")])
        .arg(scratch.join("out"))
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let deb = String::from_utf8(built.stdout).unwrap().trim().to_owned();

    let root = scratch.join("root");
    let unpacked = Command::new("dpkg")
        .args(["-x", &deb])
        .arg(&root)
        .status()
        .unwrap();
    assert!(unpacked.success());
    let app = root.join("usr/bin/perch-app");
    // ldd takes $ORIGIN from the path it is given; the kernel, from the real file.
    let ldd = Command::new("ldd")
        .arg(root.join("usr/lib/perch/perch-app"))
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&ldd.stdout).into_owned();
    let libmlx = links
        .lines()
        .find(|l| l.contains("libmlx.so"))
        .unwrap_or_default();
    assert!(
        libmlx.contains(root.join("usr/lib/perch/mlx/lib").to_str().unwrap()),
        "libmlx comes from the package: {links}"
    );
    assert!(!links.contains("not found"), "{links}");

    // A fresh user: settings in the platform's config folder under their HOME.
    let home = scratch.join("home");
    let config = home.join(".config/perch");
    std::fs::create_dir_all(&config).unwrap();
    let port = free_port();
    std::fs::write(config.join("settings.toml"), format!("port = {port}\n")).unwrap();
    let desktop = Desktop::start();
    let mut command = Command::new(&app);
    command
        .env_clear()
        .env("HOME", &home)
        .env("PATH", "/usr/bin:/bin");
    desktop.env(&mut command);
    let _app = spawn(&mut command);
    until(
        "the installed app to serve",
        Duration::from_secs(60),
        || {
            reqwest::blocking::get(format!("http://127.0.0.1:{port}/health"))
                .is_ok_and(|r| r.status().is_success())
        },
    );
    assert!(
        home.join(".local/share/perch").exists(),
        "its data folder is the user's"
    );
}
