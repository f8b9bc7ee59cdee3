//! Where the running node listens, recorded in `PERCH_HOME/node.json` by `perch serve`
//! and read by the CLI's model commands, which then go through the node's HTTP API (so
//! the terminal, the web UI and the menu bar always agree). The record is removed when
//! the node stops; a stale one (a killed node) is noticed by the caller when nothing
//! answers at the address.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const FILE_NAME: &str = "node.json";

/// A recorded address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// Base URL (`http://127.0.0.1:8435`).
    pub url: String,
    /// The node's process id.
    pub pid: u32,
}

/// Removes the record when dropped.
pub struct Recorded {
    path: PathBuf,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Records that this process serves at `url`.
pub fn record(home: &Path, url: &str) -> std::io::Result<Recorded> {
    std::fs::create_dir_all(home)?;
    let path = home.join(FILE_NAME);
    let address = NodeAddress {
        url: url.to_owned(),
        pid: std::process::id(),
    };
    std::fs::write(
        &path,
        serde_json::to_string(&address).expect("an address serializes"),
    )?;
    Ok(Recorded { path })
}

/// The address recorded in `home`, if any.
pub fn read(home: &Path) -> Option<NodeAddress> {
    let text = std::fs::read_to_string(home.join(FILE_NAME)).ok()?;
    serde_json::from_str(&text).ok()
}
