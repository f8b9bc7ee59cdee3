//! Where secrets (API keys, the Hugging Face token) are kept: the OS keychain through
//! `keyring` (the macOS Keychain; on Linux the Secret Service, when one answers), else a
//! file only its owner can read (`$PERCH_HOME/secrets.json`, mode 0600).
//!
//! The kernel's keyutils store is there when asked for (`PERCH_SECRET_STORE=keyutils`)
//! but never chosen on its own: its keys are gone after a reboot, and a node that
//! forgets its API keys locks out every client that was given one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Held across each read-change-write of a secrets file, so two changes at once (a key
/// and the hub token) never lose one another.
static FILE_WRITES: Mutex<()> = Mutex::new(());

/// A secret store. The keychains file a node's secrets under a service name: `Perch`
/// for the node in the default data folder, `Perch <folder>` for one elsewhere (so a
/// second node, or a test's, never touches the first one's keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secrets {
    /// The macOS Keychain, under a service name.
    Keychain(String),
    /// The freedesktop Secret Service (GNOME Keyring, KWallet), under a service name.
    SecretService(String),
    /// The Linux kernel's key store (until reboot), under a service name.
    Keyutils(String),
    /// A JSON file readable by its owner only.
    File(PathBuf),
}

/// Why a secret could not be read or kept.
#[derive(Debug, thiserror::Error)]
#[error("the {store} secret store: {message}")]
pub struct SecretError {
    store: String,
    message: String,
}

impl Secrets {
    /// The store named by `PERCH_SECRET_STORE` (`keychain`, `secret-service`,
    /// `keyutils` or `file`), else the first of the keychain and the file under `home`
    /// that answers.
    pub fn open(home: &Path) -> Result<Secrets, SecretError> {
        let file = Secrets::File(home.join("secrets.json"));
        let service = if home == crate::dirs::data_for_user() {
            "Perch".to_owned()
        } else {
            format!("Perch {}", home.display())
        };
        match std::env::var("PERCH_SECRET_STORE").ok().as_deref() {
            Some("keychain") => Ok(Secrets::Keychain(service)),
            Some("secret-service") => Ok(Secrets::SecretService(service)),
            Some("keyutils") => Ok(Secrets::Keyutils(service)),
            Some("file") => Ok(file),
            Some(other) => Err(SecretError {
                store: other.to_owned(),
                message: "PERCH_SECRET_STORE must be keychain, secret-service, keyutils or file"
                    .into(),
            }),
            None => {
                let keychain = if cfg!(target_os = "macos") {
                    Secrets::Keychain(service)
                } else {
                    Secrets::SecretService(service)
                };
                Ok(if keychain.answers() { keychain } else { file })
            }
        }
    }

    /// The store's name, for people.
    pub fn name(&self) -> String {
        match self {
            Secrets::Keychain(service) => format!("macOS Keychain ({service})"),
            Secrets::SecretService(service) => format!("Secret Service ({service})"),
            Secrets::Keyutils(service) => format!("kernel keyutils ({service})"),
            Secrets::File(path) => format!("file {}", path.display()),
        }
    }

    /// Whether the store can be reached (a missing entry is an answer).
    fn answers(&self) -> bool {
        self.get("probe").is_ok()
    }

    /// The secret called `name`, if there is one.
    pub fn get(&self, name: &str) -> Result<Option<String>, SecretError> {
        match self {
            Secrets::File(path) => Ok(self.read_file(path)?.remove(name)),
            Secrets::Keyutils(service) => keyutils::get(service, name).map_err(|e| self.error(e)),
            _ => match self.entry(name)?.get_password() {
                Ok(value) => Ok(Some(value)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(self.error(e)),
            },
        }
    }

    /// Keeps `value` as the secret called `name`.
    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        match self {
            Secrets::File(path) => {
                let _one_writer = FILE_WRITES.lock().unwrap_or_else(PoisonError::into_inner);
                let mut all = self.read_file(path)?;
                all.insert(name.to_owned(), value.to_owned());
                self.write_file(path, &all)
            }
            Secrets::Keyutils(service) => {
                keyutils::set(service, name, value).map_err(|e| self.error(e))
            }
            _ => self
                .entry(name)?
                .set_password(value)
                .map_err(|e| self.error(e)),
        }
    }

    /// Forgets the secret called `name` (nothing happens when there is none).
    pub fn delete(&self, name: &str) -> Result<(), SecretError> {
        match self {
            Secrets::File(path) => {
                let _one_writer = FILE_WRITES.lock().unwrap_or_else(PoisonError::into_inner);
                let mut all = self.read_file(path)?;
                if all.remove(name).is_some() {
                    self.write_file(path, &all)?;
                }
                Ok(())
            }
            Secrets::Keyutils(service) => {
                keyutils::delete(service, name).map_err(|e| self.error(e))
            }
            _ => match self.entry(name)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(self.error(e)),
            },
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, SecretError> {
        let credential: Box<keyring::credential::Credential> = match self {
            #[cfg(target_os = "macos")]
            Secrets::Keychain(service) => Box::new(
                keyring::macos::MacCredential::new_with_target(None, service, name)
                    .map_err(|e| self.error(e))?,
            ),
            #[cfg(target_os = "linux")]
            Secrets::SecretService(service) => Box::new(
                keyring::secret_service::SsCredential::new_with_target(None, service, name)
                    .map_err(|e| self.error(e))?,
            ),
            _ => {
                return Err(SecretError {
                    store: self.name(),
                    message: "not available on this platform".into(),
                })
            }
        };
        Ok(keyring::Entry::new_with_credential(credential))
    }

    /// An error of this store, saying `e`.
    pub fn error(&self, e: impl std::fmt::Display) -> SecretError {
        SecretError {
            store: self.name(),
            message: e.to_string(),
        }
    }

    fn read_file(&self, path: &Path) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes the file whole, readable by its owner only from before any secret is in it.
    fn write_file(&self, path: &Path, all: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let json = serde_json::to_vec_pretty(all).expect("strings serialize");
        crate::whole_file::write(path, &json, 0o600).map_err(|e| self.error(e))
    }
}

/// The kernel's user keyring (`@u`), used directly: `keyring`'s keyutils store also
/// links each key into the persistent keyring, which containers often refuse.
#[cfg(target_os = "linux")]
mod keyutils {
    use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};

    fn ring() -> Result<KeyRing, KeyError> {
        KeyRing::from_special_id(KeyRingIdentifier::User, true)
    }

    fn description(service: &str, name: &str) -> String {
        format!("{service}:{name}")
    }

    fn missing(e: &KeyError) -> bool {
        matches!(
            e,
            KeyError::KeyDoesNotExist | KeyError::KeyRevoked | KeyError::KeyExpired
        )
    }

    pub fn get(service: &str, name: &str) -> Result<Option<String>, String> {
        match ring().and_then(|r| r.search(&description(service, name))) {
            Ok(key) => {
                let bytes = key.read_to_vec().map_err(|e| e.to_string())?;
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|e| e.to_string())
            }
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Adding a key under a description already there replaces its value.
    pub fn set(service: &str, name: &str, value: &str) -> Result<(), String> {
        ring()
            .and_then(|r| r.add_key(&description(service, name), value))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    pub fn delete(service: &str, name: &str) -> Result<(), String> {
        match ring().and_then(|r| r.search(&description(service, name))) {
            Ok(key) => key.invalidate().map_err(|e| e.to_string()),
            Err(e) if missing(&e) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Where there is no kernel key store.
#[cfg(not(target_os = "linux"))]
mod keyutils {
    const ABSENT: &str = "the kernel key store exists on Linux only";

    pub fn get(_: &str, _: &str) -> Result<Option<String>, String> {
        Err(ABSENT.into())
    }

    pub fn set(_: &str, _: &str, _: &str) -> Result<(), String> {
        Err(ABSENT.into())
    }

    pub fn delete(_: &str, _: &str) -> Result<(), String> {
        Err(ABSENT.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(store: &Secrets) {
        let name = format!("test-{}", std::process::id());
        store.set(&name, "s3cret value").unwrap();
        assert_eq!(store.get(&name).unwrap().as_deref(), Some("s3cret value"));
        store.set(&name, "another").unwrap();
        assert_eq!(store.get(&name).unwrap().as_deref(), Some("another"));
        store.delete(&name).unwrap();
        assert_eq!(store.get(&name).unwrap(), None);
        store.delete(&name).unwrap();
    }

    #[test]
    fn the_file_store_keeps_secrets_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("perch-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Secrets::File(dir.join("secrets.json"));
        round_trip(&store);
        store.set("kept", "v").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secrets.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The kernel's key store, for real (CI runs on Linux, where it always answers).
    #[cfg(target_os = "linux")]
    #[test]
    fn keyutils_keeps_and_forgets_a_secret() {
        round_trip(&Secrets::Keyutils("Perch tests".into()));
    }
}
