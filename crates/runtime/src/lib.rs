//! Perch's runtime: the long-lived node. [`Node`] is the composition root: it owns the
//! model [`store`] (folders with manifests, plus the Hugging Face cache, read-only), the
//! [`catalog`] of models known by alias, the memory [`planner`], the model [`manager`]
//! (load on demand, keep-alive, eviction), the [`download`]s from the Hugging Face hub
//! and the memory [`gauge`], the live [`settings`], the [`api_keys`] kept in the OS
//! keychain ([`secrets`]) and where the server may listen ([`network`]). The server
//! reaches models only through it; `perch serve` and the menu-bar app each build one.

pub mod api_keys;
pub mod catalog;
pub mod dirs;
pub mod download;
pub mod gauge;
pub mod hashing;
pub mod hf_cache;
pub mod hub;
pub mod keep_alive;
pub mod logging;
pub mod manager;
pub mod manifest;
pub mod names;
pub mod network;
pub mod node;
pub mod node_address;
pub mod planner;
pub mod process;
mod pypi_source;
pub mod secrets;
pub mod settings;
pub mod store;
pub mod whole_file;

pub use download::{Download, DownloadError, Downloads, Progress, Stage};
pub use keep_alive::KeepAlive;
pub use manager::{LoadedModel, ManagerError, ModelLease, ModelManager, Unloaded};
pub use node::{Node, NodeSettings};
pub use store::{LocalModel, ModelStore, StoreError};
