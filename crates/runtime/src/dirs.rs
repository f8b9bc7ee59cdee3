//! Where Perch keeps things on this machine, by platform: its data (models, secrets'
//! file), its settings file and its logs. `PERCH_HOME` puts all three in one folder (for
//! a second node, or a test's).

use std::path::PathBuf;

/// `PERCH_HOME`, if set.
fn perch_home() -> Option<PathBuf> {
    std::env::var_os("PERCH_HOME").map(PathBuf::from)
}

/// The user's home folder.
fn user_home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
}

/// `$VAR/perch`, or `~/FALLBACK/perch` when `VAR` is not set (the XDG rule).
fn xdg(var: &str, fallback: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(dir) => PathBuf::from(dir).join("perch"),
        None => user_home().join(fallback).join("perch"),
    }
}

/// The data folder: `PERCH_HOME`, or [`data_for_user`].
pub fn data() -> PathBuf {
    perch_home().unwrap_or_else(data_for_user)
}

/// The user's data folder: `~/Library/Application Support/Perch` on macOS,
/// `$XDG_DATA_HOME/perch` (`~/.local/share/perch`) elsewhere.
pub fn data_for_user() -> PathBuf {
    if cfg!(target_os = "macos") {
        user_home().join("Library/Application Support/Perch")
    } else {
        xdg("XDG_DATA_HOME", ".local/share")
    }
}

/// The settings file: `$PERCH_HOME/settings.toml`, else
/// `~/Library/Application Support/Perch/settings.toml` on macOS and
/// `$XDG_CONFIG_HOME/perch/settings.toml` (`~/.config/perch/…`) elsewhere.
pub fn settings_file() -> PathBuf {
    let dir = perch_home().unwrap_or_else(|| {
        if cfg!(target_os = "macos") {
            data_for_user()
        } else {
            xdg("XDG_CONFIG_HOME", ".config")
        }
    });
    dir.join("settings.toml")
}

/// The log folder: `$PERCH_HOME/logs`, else `~/Library/Logs/Perch` on macOS and
/// `$XDG_STATE_HOME/perch/logs` (`~/.local/state/perch/logs`) elsewhere.
pub fn logs() -> PathBuf {
    match perch_home() {
        Some(home) => home.join("logs"),
        None if cfg!(target_os = "macos") => user_home().join("Library/Logs/Perch"),
        None => xdg("XDG_STATE_HOME", ".local/state").join("logs"),
    }
}
