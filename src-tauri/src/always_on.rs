//! "Always on": Perch starts at login (the autostart plugin: a LaunchAgent on macOS, an
//! XDG autostart entry on Linux) and keeps the machine from sleeping while it runs
//! (`caffeinate` on macOS, `systemd-inhibit` on Linux), so the models stay reachable.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use tauri::AppHandle;
use tauri_plugin_autostart::ManagerExt;

/// The process that keeps the machine awake, while there is one.
#[derive(Default)]
pub struct AlwaysOn {
    awake: Mutex<Option<Child>>,
}

impl AlwaysOn {
    /// Whether Perch starts at login.
    pub fn is_on(app: &AppHandle) -> bool {
        app.autolaunch().is_enabled().unwrap_or(false)
    }

    /// Turns it on or off; the error says what could not be changed.
    pub fn set(&self, app: &AppHandle, on: bool) -> Result<(), String> {
        let launcher = app.autolaunch();
        let changed = if on {
            launcher.enable()
        } else {
            launcher.disable()
        };
        changed.map_err(|e| format!("could not change starting at login: {e}"))?;
        self.keep_awake(on);
        Ok(())
    }

    /// Keeps the machine awake at start when Perch starts at login.
    pub fn resume(&self, app: &AppHandle) {
        if AlwaysOn::is_on(app) {
            self.keep_awake(true);
        }
    }

    /// Lets the machine sleep again.
    pub fn release(&self) {
        self.keep_awake(false);
    }

    fn keep_awake(&self, on: bool) {
        let mut awake = self
            .awake
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut child) = awake.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if on {
            *awake = inhibitor()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| tracing::warn!("cannot keep the machine awake: {e}"))
                .ok();
        }
    }
}

/// The command that keeps the machine awake for as long as it runs (and no longer than
/// this process, on macOS).
fn inhibitor() -> Command {
    if cfg!(target_os = "macos") {
        let mut command = Command::new("caffeinate");
        command.args(["-i", "-w", &std::process::id().to_string()]);
        command
    } else {
        // Held by a process that ends with this one, even when this one is killed.
        let mut command = Command::new("systemd-inhibit");
        command.args([
            "--what=sleep:idle",
            "--who=Perch",
            "--why=Serving models",
            "tail",
            &format!("--pid={}", std::process::id()),
            "-f",
            "/dev/null",
        ]);
        command
    }
}
