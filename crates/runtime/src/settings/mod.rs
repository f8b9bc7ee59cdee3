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
