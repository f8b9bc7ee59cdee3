//! The model commands: `pull`, `add`, `ls`, `rm`, `ps`, `show`, `load`, `unload`,
//! `verify`. Each goes through the running node's HTTP API where that is what keeps
//! every face in agreement (pull, rm, ps, load, unload), and acts on the store directly
//! otherwise (or when no node runs).

mod changes;
mod listing;
pub mod pull;

use perch_runtime::{dirs, hf_cache, ModelStore};

pub use changes::{add, load, rm, unload, verify, AddArgs, LoadArgs, NameArg};
pub use listing::{ls, ps, show};
pub use pull::{pull, PullArgs};

/// The settings file's values (the defaults where it is missing or unreadable).
pub fn settings_file() -> perch_runtime::settings::Settings {
    perch_runtime::settings::LiveSettings::open(&perch_runtime::dirs::settings_file(), |_| {})
        .map(|live| live.current())
        .unwrap_or_default()
}

/// The store at `PERCH_HOME` (or the platform's data directory), with the Hugging Face
/// cache beside it.
pub fn store() -> ModelStore {
    ModelStore::new(dirs::data(), hf_cache::from_env())
}

/// Runs `work` on a Tokio runtime of its own.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Runtime::new()?.block_on(work)
}

/// `1234567` → `1.2 MB`.
fn size(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else {
        format!("{:.0} MB", bytes as f64 / 1e6)
    }
}
