//! Perch's own additions under `/api/perch/`: the catalog and the local models with the
//! planner's verdict for each, downloads (list, cancel), load and unload, and the memory
//! gauge (now, or as server-sent events once a second). The web UI, the menu-bar app and
//! the CLI use these beside Ollama's endpoints; and the node's live settings, its API
//! keys, its Hugging Face token and where it listens.

pub(crate) mod downloads;
pub(crate) mod hub_token;
pub(crate) mod keys;
pub(crate) mod memory;
pub(crate) mod models;
pub(crate) mod network;
pub(crate) mod settings;
pub mod types;

use axum::middleware::from_fn;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;

use crate::admin::this_machine_only;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/perch/catalog", get(models::catalog))
        .route("/api/perch/models", get(models::local))
        .route("/api/perch/load", post(models::load))
        .route("/api/perch/unload", post(models::unload))
        .route("/api/perch/downloads", get(downloads::list))
        .route("/api/perch/downloads/cancel", post(downloads::cancel))
        .route("/api/perch/memory", get(memory::now))
        .route("/api/perch/memory/stream", get(memory::stream))
        .route(
            "/api/perch/settings",
            get(settings::get).merge(admin(put(settings::update))),
        )
        .route("/api/perch/network", get(network::status))
        .route(
            "/api/perch/hub-token",
            admin(put(hub_token::set).delete(hub_token::clear)),
        )
        .route(
            "/api/perch/keys",
            get(keys::list).merge(admin(post(keys::create))),
        )
        .route("/api/perch/keys/{id}", admin(delete(keys::revoke)))
}

/// `routes` answering only requests from this machine and no other page (`admin.rs`).
fn admin(routes: MethodRouter<AppState>) -> MethodRouter<AppState> {
    routes.route_layer(from_fn(this_machine_only))
}
