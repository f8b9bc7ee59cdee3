//! Model names as users and clients write them, parsed once: catalog aliases and store
//! names (`qwen3:4b`), Hugging Face repositories (`owner/repo`, `owner/repo@revision`),
//! a GGUF on the hub the way Ollama names one (`hf.co/owner/repo:Q4_K_M`), and paths on
//! this machine. Every part is checked against a narrow alphabet with no `..`, and a name
//! that arrives over the network can never be a path, so no request can reach outside
//! the store.

use std::path::PathBuf;

/// Where a name came from: the terminal may name files; the network may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The `perch` command on this machine.
    Local,
    /// An HTTP request.
    Network,
}

/// A parsed model name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelName {
    /// A catalog alias or a name in the store (`smollm2:135m`, `my-copy`).
    Short(String),
    /// A Hugging Face repository, at a revision if given, one GGUF quantization if given.
    Hub {
        /// `owner/repo`.
        repo: String,
        /// A branch, tag or commit.
        revision: Option<String>,
        /// Which GGUF file (`Q4_K_M`): matched against the repository's file names.
        quant: Option<String>,
    },
    /// A GGUF file or MLX directory on this machine.
    Path(PathBuf),
}

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid model name {name:?}: {reason}")]
pub struct NameError {
    /// The name given.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Longest name accepted.
const MAX_LEN: usize = 200;

/// Parses `text`; paths are accepted only from [`Origin::Local`].
///
/// ```
/// use perch_runtime::names::{parse, ModelName, Origin};
/// assert_eq!(parse("qwen3:4b", Origin::Network).unwrap(), ModelName::Short("qwen3:4b".into()));
/// assert!(matches!(parse("hf.co/a/b-GGUF:Q4_K_M", Origin::Network).unwrap(),
///     ModelName::Hub { quant: Some(_), .. }));
/// assert!(parse("../../etc/passwd", Origin::Network).is_err());
/// assert!(parse("/etc/passwd", Origin::Network).is_err());
/// ```
pub fn parse(text: &str, origin: Origin) -> Result<ModelName, NameError> {
    let refuse = |reason: &str| NameError {
        name: text.to_owned(),
        reason: reason.to_owned(),
    };
    if text.is_empty() {
        return Err(refuse("it is empty"));
    }
    if text.len() > MAX_LEN {
        return Err(refuse(&format!("it is longer than {MAX_LEN} characters")));
    }
    let looks_like_path = text.starts_with('/')
        || text.starts_with("./")
        || text.starts_with("../")
        || text.starts_with("~/")
        || text.ends_with(".gguf");
    if origin == Origin::Local && (looks_like_path || std::path::Path::new(text).exists()) {
        return Ok(ModelName::Path(expand_home(text)));
    }
    if looks_like_path {
        return Err(refuse(
            "paths are not accepted over the network; name a model in the store",
        ));
    }
    for prefix in ["hf.co/", "huggingface.co/"] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let (repo, quant) = match rest.rsplit_once(':') {
                Some((repo, quant)) => (repo, Some(quant)),
                None => (rest, None),
            };
            check_repo(repo).map_err(|r| refuse(&r))?;
            if let Some(q) = quant {
                check_part(q, "quantization").map_err(|r| refuse(&r))?;
            }
            return Ok(ModelName::Hub {
                repo: repo.to_owned(),
                revision: None,
                quant: quant
                    .filter(|q| !q.eq_ignore_ascii_case("latest"))
                    .map(str::to_ascii_uppercase),
            });
        }
    }
    if text.contains('/') {
        let (repo, revision) = match text.split_once('@') {
            Some((repo, revision)) => (repo, Some(revision)),
            None => (text, None),
        };
        check_repo(repo).map_err(|r| refuse(&r))?;
        if let Some(r) = revision {
            check_part(r, "revision").map_err(|r| refuse(&r))?;
        }
        return Ok(ModelName::Hub {
            repo: repo.to_owned(),
            revision: revision.map(str::to_owned),
            quant: None,
        });
    }
    let (base, tag) = match text.split_once(':') {
        Some((base, tag)) => (base, Some(tag)),
        None => (text, None),
    };
    check_part(base, "name").map_err(|r| refuse(&r))?;
    if let Some(t) = tag {
        check_part(t, "tag").map_err(|r| refuse(&r))?;
    }
    Ok(ModelName::Short(text.to_owned()))
}

/// The forms `name` may be stored under: as written, in its canonical form (`hf.co/…`
/// with the quantization in capitals), and with `:latest` when it has no tag.
pub fn lookup_forms(name: &str) -> Vec<String> {
    let mut forms = vec![name.to_owned()];
    if let Ok(parsed) = parse(name, Origin::Network) {
        let canonical = parsed.canonical();
        if let ModelName::Short(short) = &parsed {
            if !short.contains(':') {
                forms.push(format!("{short}:latest"));
            }
        }
        forms.push(canonical);
    }
    forms.dedup();
    forms
}

impl ModelName {
    /// The name as the store lists it (a path: its file name, without `.gguf`).
    pub fn canonical(&self) -> String {
        match self {
            ModelName::Short(name) => name.clone(),
            ModelName::Hub {
                repo,
                revision,
                quant,
            } => match (revision, quant) {
                (_, Some(q)) => format!("hf.co/{repo}:{q}"),
                (Some(r), None) => format!("{repo}@{r}"),
                (None, None) => repo.clone(),
            },
            ModelName::Path(path) => {
                let file: String = path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into(),
                );
                file.strip_suffix(".gguf").unwrap_or(&file).to_owned()
            }
        }
    }
}

/// `owner/repo`, each part in the hub's alphabet.
fn check_repo(repo: &str) -> Result<(), String> {
    let mut parts = repo.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(name), None) => {
            check_part(owner, "owner")?;
            check_part(name, "repository")
        }
        _ => Err("a Hugging Face repository is written owner/repo".into()),
    }
}

/// One part: letters, digits, `.`, `_` and `-`, starting with a letter or digit, never
/// `..`.
fn check_part(part: &str, what: &str) -> Result<(), String> {
    let starts_well = part
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let alphabet = part
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !starts_well || !alphabet || part.contains("..") {
        return Err(format!(
            "the {what} {part:?} must start with a letter or digit and hold only letters, \
             digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

fn expand_home(text: &str) -> PathBuf {
    match (text.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(text),
    }
}
