//! Perch.app: a menu-bar (tray) app around an in-process Perch node. It builds the node
//! as `perch serve` does, shows the tray menu, and opens the web UI's pages in windows on
//! demand; everything it shows and does goes through the node's HTTP API, as the
//! browser's does. No window at start (`PERCH_OPEN=models|chat|settings`, or several
//! separated by commas, opens them);
//! closing a window hides it; the app runs until Quit. One instance at a time: a second
//! launch opens the first one's Models window.

mod always_on;
mod api;
mod hosted;
mod tray;
mod windows;

use std::sync::Mutex;

use tauri::Manager;

/// The hosted node, until Quit takes it to stop it.
struct Node(Mutex<Option<hosted::Hosted>>);

fn main() {
    let app = tauri::Builder::default()
        // First, so that a second launch is sent here before it starts a node of its own.
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            windows::open(app, windows::Page::Models);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_notification::init())
        .manage(always_on::AlwaysOn::default())
        .setup(|app| {
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            let hosted = hosted::Hosted::start()
                .unwrap_or_else(|e| hosted::tell_and_exit(&format!("{e:#}")));
            app.manage(api::Api::new(hosted.listeners(), hosted.runtime()));
            app.manage(Node(Mutex::new(Some(hosted))));
            tray::install(app.handle())?;
            let pages = std::env::var("PERCH_OPEN").unwrap_or_default();
            for page in pages.split(',').filter_map(windows::Page::parse) {
                windows::open(app.handle(), page);
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the app builds");
    app.run(|handle, event| match event {
        // Closing the last window keeps the app (and the node) running.
        tauri::RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        tauri::RunEvent::Exit => {
            handle.state::<always_on::AlwaysOn>().release();
            let hosted = handle
                .state::<Node>()
                .0
                .lock()
                .ok()
                .and_then(|mut n| n.take());
            if let Some(hosted) = hosted {
                hosted.stop();
            }
            // Not `exit`: MLX's static destructors could wait on work in flight.
            perch_runtime::process::quit_now(0);
        }
        _ => {}
    });
}
