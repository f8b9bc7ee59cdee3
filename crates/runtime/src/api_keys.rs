//! The API keys that let other machines in: created with a name (the whole key is shown
//! once), listed by a short prefix, revoked by id. They are kept together as one secret
//! in the node's secret store, and checked in constant time.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::secrets::{SecretError, Secrets};

/// The secret the keys are kept in.
const SECRET: &str = "api-keys";

/// A key as listed: never the whole key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Its id, for revoking.
    pub id: String,
    /// What it is for, as given.
    pub name: String,
    /// Its first characters, to recognise it by.
    pub prefix: String,
    /// When it was created (RFC 3339).
    pub created: String,
}

/// A key just created: the only time the whole key is shown.
#[derive(Clone, Debug, Serialize)]
pub struct NewKey {
    /// The key as listed.
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The whole key.
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredKey {
    #[serde(flatten)]
    info: KeyInfo,
    key: String,
}

/// The node's API keys.
#[derive(Clone)]
pub struct ApiKeys {
    secrets: Secrets,
    keys: Arc<RwLock<Vec<StoredKey>>>,
}

impl ApiKeys {
    /// The keys kept in `secrets`. Keys that cannot be read are an error, never an
    /// empty list: the next key made would overwrite them for good.
    pub fn open(secrets: Secrets) -> Result<ApiKeys, SecretError> {
        let keys = match secrets.get(SECRET)? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                secrets.error(format!(
                    "the stored API keys ({SECRET:?}) are unreadable ({e}); delete that entry \
                     to start again with none"
                ))
            })?,
            None => Vec::new(),
        };
        Ok(ApiKeys {
            secrets,
            keys: Arc::new(RwLock::new(keys)),
        })
    }

    /// Where they are kept, for people.
    pub fn store_name(&self) -> String {
        self.secrets.name()
    }

    /// The keys, oldest first.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.read().iter().map(|k| k.info.clone()).collect()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Makes a key called `name` and keeps it.
    pub fn create(&self, name: &str) -> Result<NewKey, SecretError> {
        let key = format!("perch-{}", random_hex(20));
        let info = KeyInfo {
            id: random_hex(6),
            name: name.trim().to_owned(),
            prefix: format!("{}…", &key[..12]),
            created: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        let mut keys = self.write();
        let mut updated = keys.clone();
        updated.push(StoredKey {
            info: info.clone(),
            key: key.clone(),
        });
        self.keep(&updated)?;
        *keys = updated;
        tracing::info!(id = %info.id, name = %info.name, "API key created");
        Ok(NewKey { info, key })
    }

    /// Revokes the key `id`; whether there was one.
    pub fn revoke(&self, id: &str) -> Result<bool, SecretError> {
        let mut keys = self.write();
        let updated: Vec<StoredKey> = keys.iter().filter(|k| k.info.id != id).cloned().collect();
        if updated.len() == keys.len() {
            return Ok(false);
        }
        self.keep(&updated)?;
        *keys = updated;
        tracing::info!(id, "API key revoked");
        Ok(true)
    }

    /// Whether `presented` is one of the keys (each compared in constant time).
    pub fn verify(&self, presented: &str) -> bool {
        self.read().iter().fold(false, |found, k| {
            found | constant_time_eq(k.key.as_bytes(), presented.as_bytes())
        })
    }

    fn keep(&self, keys: &[StoredKey]) -> Result<(), SecretError> {
        let json = serde_json::to_string(keys).expect("keys serialize");
        self.secrets.set(SECRET, &json)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<StoredKey>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<StoredKey>> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `bytes` random bytes from the operating system, in hex.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random source answers");
    buffer.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_verified_kept_and_revoked() {
        let dir = std::env::temp_dir().join(format!("perch-api-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let secrets = Secrets::File(dir.join("secrets.json"));
        let keys = ApiKeys::open(secrets.clone()).unwrap();
        assert!(keys.is_empty());
        let laptop = keys.create("laptop").unwrap();
        let phone = keys.create("phone").unwrap();
        assert!(laptop.key.starts_with("perch-") && laptop.key.len() == 46);
        assert_ne!(laptop.key, phone.key);
        assert!(keys.verify(&laptop.key) && keys.verify(&phone.key));
        assert!(!keys.verify("perch-guess") && !keys.verify(""));
        assert!(!serde_json::to_string(&keys.list())
            .unwrap()
            .contains(&laptop.key));

        let reopened = ApiKeys::open(secrets.clone()).unwrap();
        assert_eq!(reopened.list(), keys.list());
        assert!(reopened.revoke(&laptop.info.id).unwrap());
        assert!(!reopened.revoke(&laptop.info.id).unwrap());
        assert!(!reopened.verify(&laptop.key) && reopened.verify(&phone.key));
        assert_eq!(ApiKeys::open(secrets).unwrap().list().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
