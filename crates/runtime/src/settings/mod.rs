//! The node's settings: what a person changes while Perch runs (where it listens, the
//! keep-alive, the context, how many models stay resident, the browser allowlist, how
//! long logs are kept). They live in a TOML file in the platform's config directory
//! ([`values`] says what each means and which values are valid); [`live`] keeps them in
//! force while the node runs, applying changes from the admin API and hand edits of the
//! file alike, and refusing invalid ones.

pub mod live;
pub mod values;

pub use live::LiveSettings;
pub use values::{Listen, Settings, SettingsError};

use std::path::PathBuf;

/// The settings file: `$PERCH_HOME/settings.toml` when `PERCH_HOME` is set, else
/// `~/Library/Application Support/Perch/settings.toml` on macOS and
/// `$XDG_CONFIG_HOME/perch/settings.toml` (`~/.config/perch/…`) elsewhere.
pub fn default_path() -> PathBuf {
    if let Some(home) = std::env::var_os("PERCH_HOME") {
        return PathBuf::from(home).join("settings.toml");
    }
    let user = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()));
    let dir = if cfg!(target_os = "macos") {
        user.join("Library/Application Support/Perch")
    } else {
        match std::env::var_os("XDG_CONFIG_HOME") {
            Some(d) => PathBuf::from(d).join("perch"),
            None => user.join(".config/perch"),
        }
    };
    dir.join("settings.toml")
}
