//! The settings' values, their defaults and their rules. A value that breaks a rule is
//! refused as a whole with a message naming the setting, so a bad edit never half-applies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use perch_engine::EngineKind;
use serde::{Deserialize, Serialize};

use crate::keep_alive::KeepAlive;

/// Where the server listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Listen {
    /// This machine only (127.0.0.1).
    #[default]
    Loopback,
    /// This machine and its Tailscale addresses.
    Tailscale,
    /// This machine and every address it has: the local network.
    Network,
    /// One address, as `perch serve --host` gives it.
    Address(IpAddr),
}

impl Listen {
    /// Whether anything beyond this machine can reach the server.
    pub fn is_exposed(self) -> bool {
        match self {
            Listen::Loopback => false,
            Listen::Address(ip) => !ip.is_loopback(),
            Listen::Tailscale | Listen::Network => true,
        }
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Loopback => f.write_str("loopback"),
            Listen::Tailscale => f.write_str("tailscale"),
            Listen::Network => f.write_str("network"),
            Listen::Address(ip) => write!(f, "{ip}"),
        }
    }
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Listen, String> {
        match text.trim() {
            "loopback" => Ok(Listen::Loopback),
            "tailscale" => Ok(Listen::Tailscale),
            "network" => Ok(Listen::Network),
            other => match other.parse::<IpAddr>() {
                Ok(ip) if ip.is_loopback() => Ok(Listen::Loopback),
                Ok(ip) if ip.is_unspecified() => Ok(Listen::Network),
                Ok(ip) => Ok(Listen::Address(ip)),
                Err(_) => Err(format!(
                    "listen must be \"loopback\", \"tailscale\", \"network\" or an IP address, \
                     got {other:?}"
                )),
            },
        }
    }
}

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Listen, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Everything a person may change while the node runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the server listens.
    pub listen: Listen,
    /// The port it listens on (0 picks a free one).
    pub port: u16,
    /// How long a model stays loaded after its last request when the request names no
    /// keep-alive: `"5m"`, `"1h"`, `"0"`, `"-1"` (forever).
    pub keep_alive: String,
    /// Tokens of context each model is planned and served with (a model's own maximum,
    /// if less).
    pub context_length: u64,
    /// Most models loaded at once.
    pub max_loaded_models: usize,
    /// Most requests each model answers at once (the rest wait their turn); each is
    /// planned a full context of KV cache, and fewer are served where that many would not
    /// fit in memory.
    pub parallel: usize,
    /// The engine GGUF files run on unless their model names one: `"llama.cpp"` (every
    /// quantization, llama.cpp's speed) or `"mlx"`. MLX directories always run on MLX.
    pub gguf_engine: EngineKind,
    /// Web origins allowed to call the API from a browser (`*` for any).
    pub allowed_origins: Vec<String>,
    /// Host names the server answers to beyond its own addresses (`*` for any).
    pub allowed_hosts: Vec<String>,
    /// Days of log files kept.
    pub log_days: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: Listen::Loopback,
            port: 8435,
            keep_alive: "5m".into(),
            context_length: 8192,
            max_loaded_models: 3,
            parallel: 4,
            gguf_engine: EngineKind::LlamaCpp,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            log_days: 14,
        }
    }
}

/// Why settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value breaks its rule.
    #[error("{0}")]
    Invalid(String),
    /// The file is not TOML of the right shape.
    #[error("{path}: {message}")]
    Unreadable {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Settings {
    /// The settings' names, as the file and the API spell them.
    pub fn names() -> Vec<String> {
        match serde_json::to_value(Settings::default()) {
            Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
            _ => unreachable!("settings serialize to an object"),
        }
    }

    /// The keep-alive, parsed.
    pub fn keep_alive(&self) -> KeepAlive {
        KeepAlive::parse(&self.keep_alive).unwrap_or_default()
    }

    /// Checks every rule; the first broken one is the error.
    ///
    /// ```
    /// use perch_runtime::settings::Settings;
    /// assert!(Settings::default().validate().is_ok());
    /// let bad = Settings { context_length: 10, ..Settings::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("context_length"));
    /// ```
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |m: String| Err(SettingsError::Invalid(m));
        if let Err(e) = KeepAlive::parse(&self.keep_alive) {
            return invalid(e);
        }
        if !(256..=10_000_000).contains(&self.context_length) {
            return invalid(format!(
                "context_length must be between 256 and 10000000 tokens, got {}",
                self.context_length
            ));
        }
        if !(1..=64).contains(&self.max_loaded_models) {
            return invalid(format!(
                "max_loaded_models must be between 1 and 64, got {}",
                self.max_loaded_models
            ));
        }
        if !(1..=64).contains(&self.parallel) {
            return invalid(format!(
                "parallel must be between 1 and 64, got {}",
                self.parallel
            ));
        }
        if !(1..=3650).contains(&self.log_days) {
            return invalid(format!(
                "log_days must be between 1 and 3650, got {}",
                self.log_days
            ));
        }
        for origin in &self.allowed_origins {
            let scheme_ok = origin.starts_with("http://") || origin.starts_with("https://");
            if origin != "*" && !(scheme_ok && is_plain(origin, ":/.-_[]")) {
                return invalid(format!(
                    "allowed_origins: {origin:?} is not an origin like http://localhost:3000 \
                     (or *)"
                ));
            }
        }
        for host in &self.allowed_hosts {
            if host != "*" && (host.is_empty() || !is_plain(host, ".-_:[]")) {
                return invalid(format!(
                    "allowed_hosts: {host:?} is not a host name like box.tail1234.ts.net (or *)"
                ));
            }
        }
        Ok(())
    }
}

/// ASCII letters and digits plus `extra`, and nothing else.
fn is_plain(text: &str, extra: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_modes_read_and_write_as_words_or_addresses() {
        for (text, mode) in [
            ("loopback", Listen::Loopback),
            ("tailscale", Listen::Tailscale),
            ("network", Listen::Network),
            ("127.0.0.1", Listen::Loopback),
            ("0.0.0.0", Listen::Network),
            ("100.64.1.2", Listen::Address("100.64.1.2".parse().unwrap())),
        ] {
            assert_eq!(text.parse::<Listen>().unwrap(), mode, "{text}");
        }
        assert!("everywhere".parse::<Listen>().is_err());
        assert_eq!(Listen::Tailscale.to_string(), "tailscale");
        assert!(Listen::Tailscale.is_exposed() && !Listen::Loopback.is_exposed());
    }

    #[test]
    fn every_rule_names_its_setting() {
        let cases = [
            (
                Settings {
                    keep_alive: "soon".into(),
                    ..Default::default()
                },
                "keep_alive",
            ),
            (
                Settings {
                    max_loaded_models: 0,
                    ..Default::default()
                },
                "max_loaded_models",
            ),
            (
                Settings {
                    log_days: 0,
                    ..Default::default()
                },
                "log_days",
            ),
            (
                Settings {
                    parallel: 0,
                    ..Default::default()
                },
                "parallel",
            ),
            (
                Settings {
                    allowed_origins: vec!["javascript:alert(1)".into()],
                    ..Default::default()
                },
                "allowed_origins",
            ),
            (
                Settings {
                    allowed_hosts: vec!["a b".into()],
                    ..Default::default()
                },
                "allowed_hosts",
            ),
        ];
        for (settings, name) in cases {
            let message = settings.validate().unwrap_err().to_string();
            assert!(message.contains(name), "{message}");
        }
    }
}
