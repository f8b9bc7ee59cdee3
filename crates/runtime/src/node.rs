//! The node: the composition root that `perch serve` (and the menu-bar app) build once
//! and hand to the server. It owns the settings (fixed and live), the API keys, the
//! store, the planner, the model manager, the downloads and the memory gauge, and keeps
//! the manager in step with the live settings.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api_keys::ApiKeys;
use crate::download::Downloads;
use crate::gauge::Gauge;
use crate::hub::HubSettings;
use crate::manager::{ManagerSettings, ModelManager};
use crate::planner::{Budget, MemoryPlanner};
use crate::secrets::{SecretError, Secrets};
use crate::settings::LiveSettings;
use crate::store::ModelStore;

/// How the node is set up, for as long as it runs (what may change while it runs is in
/// [`LiveSettings`]).
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// Perch's data directory.
    pub home: PathBuf,
    /// The Hugging Face cache to list models from, if any.
    pub hf_cache: Option<PathBuf>,
    /// Memory kept for the operating system: 4 GB on macOS, 2 GB elsewhere by default.
    pub os_reserve: u64,
    /// Bytes of freed buffers MLX may keep for reuse.
    pub buffer_cache: u64,
    /// Longest a request waits for its model to load.
    pub load_timeout: Duration,
    /// Where the log files are, when there are any.
    pub log_dir: Option<PathBuf>,
    /// Where to download from.
    pub hub: HubSettings,
}

impl NodeSettings {
    /// Defaults, with the data directory from `PERCH_HOME` (or the platform's) and the
    /// Hugging Face cache from `HF_HUB_CACHE` / `HF_HOME`.
    pub fn from_env() -> NodeSettings {
        NodeSettings {
            home: crate::dirs::data(),
            hf_cache: crate::hf_cache::from_env(),
            os_reserve: if cfg!(target_os = "macos") { 4 } else { 2 } << 30,
            buffer_cache: perch_engine::buffer_cache::DEFAULT_LIMIT as u64,
            load_timeout: Duration::from_secs(600),
            log_dir: None,
            hub: HubSettings::from_env(),
        }
    }
}

/// The running node.
pub struct Node {
    /// Its fixed settings.
    pub settings: NodeSettings,
    /// Its live settings.
    pub live: Arc<LiveSettings>,
    /// Where secrets are kept.
    pub secrets: Secrets,
    /// The API keys that let other machines in.
    pub keys: ApiKeys,
    /// Models on disk.
    pub store: ModelStore,
    /// Models in memory.
    pub manager: ModelManager,
    /// Models on their way.
    pub downloads: Downloads,
    /// Memory, sampled once a second.
    pub gauge: Gauge,
}

impl Node {
    /// Builds the node, with its API keys and (unless `HF_TOKEN` gave one) its hub token
    /// from `secrets`. Must run inside a Tokio runtime (the manager and the gauge start
    /// tasks on it, and a task keeps the manager in step with `live`).
    pub fn start(
        settings: NodeSettings,
        live: Arc<LiveSettings>,
        secrets: Secrets,
    ) -> Result<Arc<Node>, SecretError> {
        let keys = ApiKeys::open(secrets.clone())?;
        if settings.hub.token.get().is_none() {
            settings.hub.token.set(secrets.get(HUB_TOKEN)?);
        }
        perch_engine::buffer_cache::bound(settings.buffer_cache as usize);
        let store = ModelStore::new(settings.home.clone(), settings.hf_cache.clone());
        let now = live.current();
        let planner = MemoryPlanner::new(
            system_budget(settings.os_reserve),
            settings.buffer_cache,
            now.context_length,
        )
        .with_sequences(now.parallel as u64);
        let manager_settings = ManagerSettings {
            keep_alive: now.keep_alive(),
            max_loaded: now.max_loaded_models,
            load_timeout: settings.load_timeout,
            gguf_engine: now.gguf_engine,
        };
        let manager = ModelManager::new(store.clone(), planner, manager_settings);
        follow(&live, manager.clone());
        let gauge = Gauge::start(manager.clone());
        let downloads = Downloads::new(store.clone(), settings.hub.clone());
        Ok(Arc::new(Node {
            settings,
            live,
            secrets,
            keys,
            store,
            manager,
            downloads,
            gauge,
        }))
    }

    /// Keeps `token` as the hub token (in the secret store) and uses it from now on;
    /// `None` forgets it.
    pub fn set_hub_token(&self, token: Option<String>) -> Result<(), SecretError> {
        let token = token.filter(|t| !t.trim().is_empty());
        match &token {
            Some(t) => self.secrets.set(HUB_TOKEN, t.trim())?,
            None => self.secrets.delete(HUB_TOKEN)?,
        }
        self.settings.hub.token.set(token);
        Ok(())
    }

    /// Whether downloads send a hub token.
    pub fn has_hub_token(&self) -> bool {
        self.settings.hub.token.get().is_some()
    }
}

/// The secret the hub token is kept in.
const HUB_TOKEN: &str = "hf-token";

/// Applies each change of the live settings to the manager.
fn follow(live: &LiveSettings, manager: ModelManager) {
    let mut changes = live.subscribe();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let now = changes.borrow_and_update().clone();
            manager.reconfigure(&now);
        }
    });
}

/// Physical memory less `os_reserve`, capped by Metal's recommended working set where
/// MLX reports one.
pub fn system_budget(os_reserve: u64) -> Budget {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let working_set = perch_mlx::device_info(perch_mlx::DeviceKind::Gpu)
        .ok()
        .and_then(|info| info.recommended_working_set());
    Budget {
        total: system.total_memory(),
        os_reserve,
        working_set,
    }
}
