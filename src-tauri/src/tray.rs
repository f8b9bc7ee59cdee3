//! The tray menu: a status line (where Perch serves, the memory headroom), each local
//! model as a check item (checked when loaded; a click loads or unloads it; its memory
//! in the label; one that does not fit greyed, with the shortfall), "Always on", "Share
//! on Tailscale", the windows, and Quit. A loop reads the node's API once a second and
//! rebuilds the menu when what it shows changed, so loads, unloads and downloads made
//! anywhere appear as they happen; finished downloads and loads refused for memory are
//! told in a notification.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuBuilder, MenuEvent, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};
use tauri_plugin_notification::NotificationExt;

use crate::always_on::AlwaysOn;
use crate::api::Api;
use crate::windows::{self, Page};

const TRAY: &str = "perch";

/// The tray icon: on macOS a black template the menu bar tints for light and dark; on
/// Linux, where panels are light or dark and nothing tints, the coloured app icon.
#[cfg(target_os = "macos")]
const TRAY_ICON: &[u8] = include_bytes!("../../icons/tray.png");
#[cfg(not(target_os = "macos"))]
const TRAY_ICON: &[u8] = include_bytes!("../../icons/32x32.png");

/// One local model as the menu shows it.
#[derive(Clone, Debug, PartialEq)]
struct ModelLine {
    name: String,
    loaded: bool,
    /// "0.93 GB", or "short by 3.2 GB" when it does not fit.
    label: String,
    fits: bool,
}

/// What the menu shows.
#[derive(Clone, Debug, Default, PartialEq)]
struct Snapshot {
    status: String,
    models: Vec<ModelLine>,
    on_tailscale: bool,
    tailscale_enabled: bool,
    tailscale: String,
    always_on: bool,
}

/// The menu's current snapshot, for the click handlers.
#[derive(Default)]
struct Shown(Mutex<Snapshot>);

fn gb(bytes: f64) -> String {
    format!("{:.1} GB", bytes / 1e9)
}

/// Reads what the menu shows from the API.
async fn snapshot(api: &Api, always_on: bool) -> Snapshot {
    let (models, memory, network) = tokio::join!(
        api.get("/api/perch/models"),
        api.get("/api/perch/memory"),
        api.get("/api/perch/network")
    );
    let (Ok(models), Ok(memory), Ok(network)) = (models, memory, network) else {
        return Snapshot {
            status: "Perch is not answering".into(),
            always_on,
            ..Snapshot::default()
        };
    };
    let headroom = memory["headroom"].as_f64().unwrap_or(0.0);
    let models = models["models"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let fit = &m["fit"];
            let fits = m["loaded"].as_bool().unwrap_or(false) || fit["fit"] != "wont_fit";
            let label = if fits {
                gb(fit["need_bytes"].as_f64().unwrap_or(0.0))
            } else {
                format!(
                    "short by {}",
                    gb(fit["shortfall_bytes"].as_f64().unwrap_or(0.0))
                )
            };
            ModelLine {
                name: m["name"].as_str().unwrap_or_default().to_owned(),
                loaded: m["loaded"].as_bool().unwrap_or(false),
                label,
                fits,
            }
        })
        .collect();
    let up = network["tailscale"]["up"].as_bool().unwrap_or(false);
    let listen = network["listen"].as_str().unwrap_or_default();
    let on_tailscale = listen == "tailscale";
    let tailscale_line = match (listen, up) {
        ("tailscale", _) => format!(
            "Share on Tailscale: {}",
            network["urls"][0].as_str().unwrap_or("on")
        ),
        ("loopback", false) => "Share on Tailscale (Tailscale is not running)".to_owned(),
        ("loopback", true) => "Share on Tailscale".to_owned(),
        (other, _) => format!("Sharing on {other} (change it in Settings)"),
    };
    Snapshot {
        status: format!("Serving on {} · headroom {}", api.base(), gb(headroom)),
        models,
        on_tailscale,
        tailscale_enabled: on_tailscale || (listen == "loopback" && up),
        tailscale: tailscale_line,
        always_on,
    }
}

/// The menu's items that change with the node, to update in place: replacing the whole
/// menu would close it under the person using it.
struct Items {
    status: MenuItem<Wry>,
    models: Vec<(String, CheckMenuItem<Wry>)>,
    always_on: CheckMenuItem<Wry>,
    tailscale: CheckMenuItem<Wry>,
}

impl Items {
    /// Sets every item to what `shown` says (the check marks too: a click flips one
    /// before anything happened, and a refused action must flip it back).
    fn show(&self, shown: &Snapshot) -> tauri::Result<()> {
        self.status.set_text(&shown.status)?;
        for ((_, item), model) in self.models.iter().zip(&shown.models) {
            item.set_text(format!("{} — {}", model.name, model.label))?;
            item.set_enabled(model.fits)?;
            item.set_checked(model.loaded)?;
        }
        self.always_on.set_checked(shown.always_on)?;
        self.tailscale.set_text(&shown.tailscale)?;
        self.tailscale.set_enabled(shown.tailscale_enabled)?;
        self.tailscale.set_checked(shown.on_tailscale)
    }

    fn same_models(&self, shown: &Snapshot) -> bool {
        self.models.len() == shown.models.len()
            && self
                .models
                .iter()
                .zip(&shown.models)
                .all(|((name, _), m)| *name == m.name)
    }
}

/// The menu for `shown`, and its items that change.
fn menu(app: &AppHandle, shown: &Snapshot) -> tauri::Result<(Menu<Wry>, Items)> {
    let status = MenuItem::with_id(app, "status", &shown.status, false, None::<&str>)?;
    let mut builder = MenuBuilder::new(app).item(&status).separator();
    if shown.models.is_empty() {
        builder = builder.item(&MenuItem::with_id(
            app,
            "no-models",
            "No models yet: open Models to download one",
            false,
            None::<&str>,
        )?);
    }
    let mut models = Vec::new();
    for model in &shown.models {
        let item = CheckMenuItem::with_id(
            app,
            format!("model:{}", model.name),
            format!("{} — {}", model.name, model.label),
            model.fits,
            model.loaded,
            None::<&str>,
        )?;
        builder = builder.item(&item);
        models.push((model.name.clone(), item));
    }
    let always_on = CheckMenuItem::with_id(
        app,
        "always-on",
        "Always on",
        true,
        shown.always_on,
        None::<&str>,
    )?;
    let tailscale = CheckMenuItem::with_id(
        app,
        "tailscale",
        &shown.tailscale,
        shown.tailscale_enabled,
        shown.on_tailscale,
        None::<&str>,
    )?;
    let menu = builder
        .separator()
        .item(&always_on)
        .item(&tailscale)
        .separator()
        .item(&MenuItem::with_id(
            app,
            "open-chat",
            "Open Chat",
            true,
            None::<&str>,
        )?)
        .item(&MenuItem::with_id(
            app,
            "open-models",
            "Open Models",
            true,
            None::<&str>,
        )?)
        .item(&MenuItem::with_id(
            app,
            "open-settings",
            "Settings…",
            true,
            None::<&str>,
        )?)
        .separator()
        .item(&MenuItem::with_id(
            app,
            "quit",
            "Quit Perch",
            true,
            None::<&str>,
        )?)
        .build()?;
    let items = Items {
        status,
        models,
        always_on,
        tailscale,
    };
    Ok((menu, items))
}

/// Puts the tray icon up and starts keeping its menu current.
pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let first = Snapshot {
        status: "Starting…".into(),
        ..Snapshot::default()
    };
    let (tray_menu, items) = menu(app, &first)?;
    app.manage(Shown::default());
    app.manage(Mutex::new(items));
    TrayIconBuilder::with_id(TRAY)
        .icon(Image::from_bytes(TRAY_ICON)?)
        .icon_as_template(cfg!(target_os = "macos"))
        .tooltip("Perch")
        .menu(&tray_menu)
        .show_menu_on_left_click(true)
        .on_menu_event(on_click)
        .build(app)?;
    app.state::<AlwaysOn>().resume(app);
    let (app, api) = (app.clone(), app.state::<Api>().inner().clone());
    api.clone().spawn(keep_current(app, api));
    Ok(())
}

/// Puts `now` on the menu: in place when the same models are listed, else a new menu.
fn put_on_menu(app: &AppHandle, now: &Snapshot) -> tauri::Result<()> {
    let state = app.state::<Mutex<Items>>();
    let mut items = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if items.same_models(now) {
        return items.show(now);
    }
    let (fresh, fresh_items) = menu(app, now)?;
    if let Some(tray) = app.tray_by_id(TRAY) {
        tray.set_menu(Some(fresh))?;
    }
    *items = fresh_items;
    Ok(())
}

/// Keeps the menu current, and tells of finished downloads.
async fn keep_current(app: AppHandle, api: Api) {
    let mut stages: HashMap<String, String> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = snapshot(&api, AlwaysOn::is_on(&app)).await;
        let changed = {
            let state = app.state::<Shown>();
            let mut shown = state
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let changed = *shown != now;
            *shown = now.clone();
            changed
        };
        if changed {
            let handle = app.clone();
            let _ = app.run_on_main_thread(move || {
                if let Err(e) = put_on_menu(&handle, &now) {
                    tracing::error!("could not update the tray menu: {e}");
                }
            });
        }
        if let Ok(Value::Array(downloads)) = api.get("/api/perch/downloads").await {
            for download in downloads {
                let name = download["name"].as_str().unwrap_or_default().to_owned();
                let stage = download["stage"].as_str().unwrap_or_default().to_owned();
                let before = stages.insert(name.clone(), stage.clone());
                if stage == "done" && before.is_some_and(|b| b != "done") {
                    notify(
                        &app,
                        "Download finished",
                        &format!("{name} is ready to load."),
                    );
                }
            }
        }
    }
}

/// Makes the next refresh put every item back to what the node says (after a click,
/// whether or not its action worked).
fn refresh_soon(app: &AppHandle) {
    *app.state::<Shown>()
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Snapshot::default();
}

fn notify(app: &AppHandle, title: &str, body: &str) {
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!("could not show a notification ({title}: {body}): {e}");
    }
}

fn on_click(app: &AppHandle, event: MenuEvent) {
    let id = event.id().as_ref().to_owned();
    let api = app.state::<Api>().inner().clone();
    let shown = app
        .state::<Shown>()
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    match id.as_str() {
        "open-chat" => windows::open(app, Page::Chat),
        "open-models" => windows::open(app, Page::Models),
        "open-settings" => windows::open(app, Page::Settings),
        "quit" => app.exit(0),
        "always-on" => {
            if let Err(e) = app.state::<AlwaysOn>().set(app, !shown.always_on) {
                notify(app, "Always on", &e);
            }
            refresh_soon(app);
        }
        "tailscale" => {
            let turning_on = !shown.on_tailscale;
            let app = app.clone();
            api.clone().spawn(async move {
                let keys = api.get("/api/perch/keys").await;
                let no_key = keys.is_ok_and(|k| k["keys"].as_array().is_some_and(Vec::is_empty));
                if turning_on && no_key {
                    // The first key is shown once: let Settings make the move and show it.
                    let handle = app.clone();
                    let _ = app.run_on_main_thread(move || windows::open(&handle, Page::Settings));
                    notify(&app, "Share on Tailscale", "Choose Tailscale in Settings: it makes the API key other machines need and shows it once.");
                } else {
                    let listen = if turning_on { "tailscale" } else { "loopback" };
                    let change = json!({ "listen": listen });
                    if let Err(e) = api.send(Method::PUT, "/api/perch/settings", change).await {
                        notify(&app, "Share on Tailscale", &e.message);
                    }
                }
                refresh_soon(&app);
            });
        }
        other => {
            let Some(name) = other.strip_prefix("model:") else {
                return;
            };
            let Some(model) = shown.models.iter().find(|m| m.name == name).cloned() else {
                return;
            };
            let app = app.clone();
            api.clone().spawn(async move {
                let path = if model.loaded {
                    "/api/perch/unload"
                } else {
                    "/api/perch/load"
                };
                if let Err(e) = api
                    .send(Method::POST, path, json!({ "model": model.name }))
                    .await
                {
                    let title = if e.status == 507 {
                        "Not enough memory"
                    } else {
                        "Perch"
                    };
                    notify(&app, title, &e.message);
                }
            });
        }
    }
}
