//! Settings kept in force while the node runs. The file is the record: the admin API
//! writes it (atomically), and a person may edit it by hand; a watcher reads it again
//! after every change. Only the settings a change touches are applied, so a flag given
//! to `perch serve` keeps its value until the file changes that very setting. An invalid
//! file is refused with a logged reason and the last good settings stay in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::values::{Settings, SettingsError};

/// The settings in force and the file behind them.
pub struct LiveSettings {
    path: PathBuf,
    record: Mutex<Record>,
    current: watch::Sender<Settings>,
}

/// What the file said when last read or written, and what is in force.
struct Record {
    file: Settings,
    in_force: Settings,
}

impl LiveSettings {
    /// The settings in `path` (the defaults when there is no file yet), with
    /// `overrides` applied on top for this run only.
    pub fn open(
        path: &Path,
        overrides: impl FnOnce(&mut Settings),
    ) -> Result<Arc<LiveSettings>, SettingsError> {
        let file = read(path)?.unwrap_or_default();
        let mut in_force = file.clone();
        overrides(&mut in_force);
        in_force.validate()?;
        let (current, _) = watch::channel(in_force.clone());
        Ok(Arc::new(LiveSettings {
            path: path.to_owned(),
            record: Mutex::new(Record { file, in_force }),
            current,
        }))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings in force.
    pub fn current(&self) -> Settings {
        self.current.borrow().clone()
    }

    /// The settings in force, now and after every change.
    pub fn subscribe(&self) -> watch::Receiver<Settings> {
        self.current.subscribe()
    }

    /// What the settings would be with `changes`, checked, without applying them.
    pub fn preview(&self, changes: &Map<String, Value>) -> Result<Settings, SettingsError> {
        patched(&self.lock().in_force, changes)
    }

    /// Changes the settings named in `changes` (a JSON object with any of the settings'
    /// fields), writes them to the file and puts them in force. Nothing changes when a
    /// value is invalid or the file cannot be written.
    pub fn update(&self, changes: &Map<String, Value>) -> Result<Settings, SettingsError> {
        let mut record = self.lock();
        let in_force = patched(&record.in_force, changes)?;
        let file = patched(&record.file, changes)?;
        write(&self.path, &file)?;
        record.file = file;
        self.put_in_force(&mut record, in_force.clone());
        Ok(in_force)
    }

    /// Reads the file again and applies what changed in it since it was last read.
    pub fn reload(&self) -> Result<(), SettingsError> {
        // Read under the lock, so an API write cannot land between the read and the
        // apply and be undone by an older reading.
        let mut record = self.lock();
        let file = read(&self.path)?.unwrap_or_default();
        let changes = changed_fields(&record.file, &file);
        if changes.is_empty() {
            return Ok(());
        }
        let in_force = patched(&record.in_force, &changes)?;
        tracing::info!(
            file = %self.path.display(),
            changed = ?changes.keys().collect::<Vec<_>>(),
            "settings file changed: applying"
        );
        record.file = file;
        self.put_in_force(&mut record, in_force);
        Ok(())
    }

    /// Watches the file, reloading it a moment after each change (editors write in
    /// several steps). The watch ends when the returned watcher is dropped.
    pub fn watch(self: &Arc<Self>) -> Result<SettingsWatcher, SettingsError> {
        let dir = self.path.parent().unwrap_or(Path::new(".")).to_owned();
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let name = self.path.file_name().map(ToOwned::to_owned);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Reading the file is an event too (an open): only writes, creations,
                // renames and removals count.
                let ours = event.is_ok_and(|e| {
                    matches!(
                        e.kind,
                        notify::EventKind::Create(_)
                            | notify::EventKind::Modify(_)
                            | notify::EventKind::Remove(_)
                    ) && e
                        .paths
                        .iter()
                        .any(|p| p.file_name().map(ToOwned::to_owned) == name)
                });
                if ours {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| watch_error(&dir, e))?;
        watcher
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(&dir, e))?;
        let live = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("perch-settings".into())
            .spawn(move || reload_on_change(&live, &rx))
            .map_err(|e| io(&dir, e))?;
        Ok(SettingsWatcher { _watcher: watcher })
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put_in_force(&self, record: &mut Record, settings: Settings) {
        record.in_force = settings.clone();
        self.current.send_replace(settings);
    }
}

/// Keeps the settings file watched while it lives.
pub struct SettingsWatcher {
    _watcher: notify::RecommendedWatcher,
}

fn reload_on_change(live: &Weak<LiveSettings>, changes: &std::sync::mpsc::Receiver<()>) {
    while changes.recv().is_ok() {
        // Let a multi-step save finish, then read once.
        std::thread::sleep(Duration::from_millis(150));
        while changes.try_recv().is_ok() {}
        let Some(live) = live.upgrade() else { return };
        if let Err(e) = live.reload() {
            tracing::warn!(
                "refused the edited settings file (the last good settings stay in force): {e}"
            );
        }
    }
}

/// `base` with `changes` laid over it, checked.
fn patched(base: &Settings, changes: &Map<String, Value>) -> Result<Settings, SettingsError> {
    let Value::Object(mut fields) = serde_json::to_value(base).expect("settings serialize") else {
        unreachable!("settings serialize to an object")
    };
    for (key, value) in changes {
        fields.insert(key.clone(), value.clone());
    }
    // The error names the setting: `port: invalid type: string "x", expected u16`.
    let settings: Settings = serde_path_to_error::deserialize(Value::Object(fields))
        .map_err(|e| SettingsError::Invalid(e.to_string()))?;
    settings.validate()?;
    Ok(settings)
}

/// The fields whose values differ from `old` to `new`, with their new values.
fn changed_fields(old: &Settings, new: &Settings) -> Map<String, Value> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        unreachable!("settings serialize to an object")
    };
    new.into_iter()
        .filter(|(key, value)| old.get(key) != Some(value))
        .collect()
}

/// The settings in `path`, checked; `None` when there is no file.
fn read(path: &Path) -> Result<Option<Settings>, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path, e)),
    };
    let settings: Settings = toml::from_str(&text).map_err(|e| SettingsError::Unreadable {
        path: path.display().to_string(),
        message: e.message().to_owned(),
    })?;
    settings.validate().map_err(|e| SettingsError::Unreadable {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    Ok(Some(settings))
}

/// Writes `settings` to `path` whole.
fn write(path: &Path, settings: &Settings) -> Result<(), SettingsError> {
    let text = format!(
        "# Perch's settings. Edits apply while Perch runs; an invalid edit is refused (see the log).\n{}",
        toml::to_string(settings).expect("settings serialize to TOML")
    );
    crate::whole_file::write(path, text.as_bytes(), 0o644).map_err(|e| io(path, e))
}

fn io(path: &Path, source: std::io::Error) -> SettingsError {
    SettingsError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn watch_error(path: &Path, e: notify::Error) -> SettingsError {
    io(path, std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("perch-live-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("settings.toml")
    }

    fn changes(value: serde_json::Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_flag_holds_until_the_file_changes_that_very_setting() {
        let path = scratch("flags");
        let live = LiveSettings::open(&path, |s| s.keep_alive = "2m".into()).unwrap();
        assert_eq!(live.current().keep_alive, "2m");

        // A change through the API is written; the flag is not.
        live.update(&changes(json!({"max_loaded_models": 2})))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("max_loaded_models = 2") && text.contains("keep_alive = \"5m\""));
        assert_eq!(live.current().keep_alive, "2m");

        // An edit of another setting leaves the flag in force; an edit of its own ends it.
        std::fs::write(
            &path,
            text.replace("max_loaded_models = 2", "max_loaded_models = 4"),
        )
        .unwrap();
        live.reload().unwrap();
        assert_eq!(
            (
                live.current().max_loaded_models,
                live.current().keep_alive.as_str()
            ),
            (4, "2m")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("keep_alive = \"5m\"", "keep_alive = \"9m\""),
        )
        .unwrap();
        live.reload().unwrap();
        assert_eq!(live.current().keep_alive, "9m");
    }

    #[test]
    fn invalid_changes_change_nothing_and_name_the_setting() {
        let path = scratch("invalid");
        let live = LiveSettings::open(&path, |_| {}).unwrap();
        let before = live.current();
        for bad in [
            json!({"port": "eighty"}),
            json!({"context_length": 3}),
            json!({"colour": "blue"}),
        ] {
            let e = live.update(&changes(bad.clone())).unwrap_err().to_string();
            let named = bad.as_object().unwrap().keys().next().unwrap().clone();
            assert!(e.contains(&named), "{bad}: {e}");
        }
        assert!(!path.exists(), "nothing was written");
        std::fs::write(&path, "context_length = \"long\"\n").unwrap();
        assert!(live.reload().is_err());
        assert_eq!(live.current(), before);
        assert!(
            LiveSettings::open(&path, |_| {}).is_err(),
            "a bad file is refused at start"
        );
    }
}
