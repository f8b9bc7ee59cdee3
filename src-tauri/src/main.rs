//! Perch.app: a menu-bar (tray) app around an in-process Perch node. It builds the node
//! as `perch serve` does, shows the tray menu, and opens the web UI's pages in windows on
//! demand; everything it shows and does goes through the node's HTTP API, as the
//! browser's does. No window at start (`PERCH_OPEN=models|chat|settings` opens one);
//! closing a window hides it; the app runs until Quit.

mod always_on;
mod api;
mod hosted;
mod tray;
mod windows;

use tauri::Manager;

fn main() {
    let hosted = match hosted::Hosted::start() {
        Ok(hosted) => hosted,
        Err(e) => {
            eprintln!("Perch could not start: {e:#}");
            hosted::tell_and_exit(&format!("{e:#}"));
        }
    };
    let base = hosted.url.clone();
    let api = api::Api::new(&base, hosted.runtime());
    let mut hosted = Some(hosted);
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
            // A second launch opens the models window of the first.
            windows::open(app, windows::Page::Models);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_notification::init())
        .manage(api)
        .manage(always_on::AlwaysOn::default())
        .setup(move |app| {
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            tray::install(app.handle())?;
            if let Some(page) = std::env::var("PERCH_OPEN")
                .ok()
                .and_then(|p| windows::Page::parse(&p))
            {
                windows::open(app.handle(), page);
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("the app builds");
    app.run(move |handle, event| match event {
        // Closing the last window keeps the app (and the node) running.
        tauri::RunEvent::ExitRequested {
            code: None, api, ..
        } => api.prevent_exit(),
        tauri::RunEvent::Exit => {
            handle.state::<always_on::AlwaysOn>().release();
            if let Some(hosted) = hosted.take() {
                hosted.stop();
            }
        }
        _ => {}
    });
}
