//! The app's windows: one per page of the web UI (models, chat, settings), made on
//! demand from the node's own URL, small like a menu-bar app's; closing one hides it.

use tauri::{AppHandle, Manager, WebviewUrl, WebviewWindowBuilder, WindowEvent};

use crate::api::Api;

/// A page of the web UI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Models,
    Chat,
    Settings,
}

impl Page {
    /// `models`, `chat` or `settings`.
    pub fn parse(name: &str) -> Option<Page> {
        match name.trim() {
            "models" => Some(Page::Models),
            "chat" => Some(Page::Chat),
            "settings" => Some(Page::Settings),
            _ => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Page::Models => "models",
            Page::Chat => "chat",
            Page::Settings => "settings",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Page::Models => "Perch — Models",
            Page::Chat => "Perch — Chat",
            Page::Settings => "Perch — Settings",
        }
    }
}

/// Shows `page`'s window, making it the first time.
pub fn open(app: &AppHandle, page: Page) {
    if let Some(window) = app.get_webview_window(page.label()) {
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
        return;
    }
    let base = app.state::<Api>().base();
    let Ok(url) = format!("{base}/#/{}", page.label()).parse() else {
        return;
    };
    let made = WebviewWindowBuilder::new(app, page.label(), WebviewUrl::External(url))
        .title(page.title())
        .inner_size(440.0, 680.0)
        .min_inner_size(400.0, 420.0)
        .build();
    match made {
        Ok(window) => {
            let hide = window.clone();
            window.on_window_event(move |event| {
                if let WindowEvent::CloseRequested { api, .. } = event {
                    api.prevent_close();
                    let _ = hide.hide();
                }
            });
        }
        Err(e) => tracing::error!("could not open the {} window: {e}", page.label()),
    }
}
