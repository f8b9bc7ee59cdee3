//! How a model turns its hidden states into one embedding: the pooling and whether the
//! vector is normalised. Read from the sentence-transformers files a model card ships
//! (`modules.json`, and the pooling module's `config.json`), which is where cards such as
//! Qwen3-Embedding's write it down; a model without them gets Perch's documented default,
//! the last token's state, normalised (what a causal decoder's last position has read:
//! the whole input). Downloads keep only a repository's top-level files, so a card whose
//! pooling folder is missing pools by the last token, as decoder embedding models do.

use std::path::Path;

use serde::Deserialize;

/// Which positions' hidden states make the embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The last input token's.
    LastToken,
    /// The mean over every input token.
    Mean,
}

/// A model's way of embedding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingRecipe {
    /// Which positions count.
    pub pooling: Pooling,
    /// Whether vectors are scaled to unit length.
    pub normalize: bool,
}

impl Default for EmbeddingRecipe {
    fn default() -> Self {
        EmbeddingRecipe {
            pooling: Pooling::LastToken,
            normalize: true,
        }
    }
}

#[derive(Deserialize)]
struct Module {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// The pooling module's settings, as sentence-transformers writes them.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PoolingConfig {
    pooling_mode_cls_token: bool,
    pooling_mode_mean_tokens: bool,
    pooling_mode_max_tokens: bool,
    pooling_mode_mean_sqrt_len_tokens: bool,
    pooling_mode_weightedmean_tokens: bool,
    pooling_mode_lasttoken: bool,
}

impl EmbeddingRecipe {
    /// The recipe of the model at `path` (a folder, or a single GGUF file, which gets the
    /// default); an error saying what the card asks for that Perch cannot do.
    pub fn of(path: &Path) -> Result<EmbeddingRecipe, String> {
        let modules = path.join("modules.json");
        if !modules.is_file() {
            return Ok(EmbeddingRecipe::default());
        }
        let read = |file: &Path| {
            std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))
        };
        let modules: Vec<Module> =
            serde_json::from_str(&read(&modules)?).map_err(|e| format!("modules.json: {e}"))?;
        let mut recipe = EmbeddingRecipe {
            pooling: Pooling::LastToken,
            normalize: false,
        };
        for module in &modules {
            match module.kind.rsplit('.').next().unwrap_or_default() {
                "Transformer" => {}
                "Normalize" => recipe.normalize = true,
                "Pooling" => {
                    let file = path.join(&module.path).join("config.json");
                    if !file.is_file() {
                        continue;
                    }
                    let config: PoolingConfig = serde_json::from_str(&read(&file)?)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    recipe.pooling = config.pooling()?;
                }
                other => {
                    return Err(format!(
                        "this model's card adds a `{other}` module after pooling, which \
                         Perch does not run"
                    ))
                }
            }
        }
        Ok(recipe)
    }
}

impl std::fmt::Display for EmbeddingRecipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pooling = match self.pooling {
            Pooling::LastToken => "last-token pooling",
            Pooling::Mean => "mean pooling",
        };
        let scale = if self.normalize {
            "normalised"
        } else {
            "not normalised"
        };
        write!(f, "{pooling}, {scale}")
    }
}

impl PoolingConfig {
    fn pooling(&self) -> Result<Pooling, String> {
        let unsupported = [
            (self.pooling_mode_cls_token, "first-token (CLS)"),
            (self.pooling_mode_max_tokens, "max"),
            (self.pooling_mode_mean_sqrt_len_tokens, "mean-sqrt-length"),
            (self.pooling_mode_weightedmean_tokens, "weighted-mean"),
        ];
        if let Some((_, name)) = unsupported.iter().find(|(on, _)| *on) {
            return Err(format!(
                "this model's card prescribes {name} pooling, which Perch does not do \
                 (it pools by last token or mean)"
            ));
        }
        match (self.pooling_mode_lasttoken, self.pooling_mode_mean_tokens) {
            (true, false) => Ok(Pooling::LastToken),
            (false, true) => Ok(Pooling::Mean),
            (true, true) => Err("this model's card combines several poolings".into()),
            (false, false) => Err("this model's card names no pooling".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_test_support::ScratchDir;

    fn folder(files: &[(&str, &str)]) -> ScratchDir {
        let dir = ScratchDir::new("embedding-recipe");
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    const MODULES: &str = r#"[
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    ]"#;

    #[test]
    fn a_folder_without_a_card_gets_the_default() {
        let dir = folder(&[("config.json", "{}")]);
        assert_eq!(
            EmbeddingRecipe::of(dir.path()),
            Ok(EmbeddingRecipe {
                pooling: Pooling::LastToken,
                normalize: true
            })
        );
    }

    #[test]
    fn qwen3_embeddings_card_reads_as_last_token_normalised() {
        let dir = folder(&[
            ("modules.json", MODULES),
            (
                "1_Pooling/config.json",
                r#"{"word_embedding_dimension": 1024, "pooling_mode_cls_token": false,
                    "pooling_mode_mean_tokens": false, "pooling_mode_lasttoken": true,
                    "include_prompt": true}"#,
            ),
        ]);
        assert_eq!(
            EmbeddingRecipe::of(dir.path()),
            Ok(EmbeddingRecipe {
                pooling: Pooling::LastToken,
                normalize: true
            })
        );
    }

    #[test]
    fn a_card_without_its_pooling_folder_pools_by_the_last_token() {
        let dir = folder(&[("modules.json", MODULES)]);
        assert_eq!(
            EmbeddingRecipe::of(dir.path()),
            Ok(EmbeddingRecipe {
                pooling: Pooling::LastToken,
                normalize: true
            })
        );
    }

    #[test]
    fn a_recipe_reads_as_words() {
        assert_eq!(
            EmbeddingRecipe::default().to_string(),
            "last-token pooling, normalised"
        );
    }

    #[test]
    fn mean_pooling_without_normalize_is_read_as_such() {
        let modules = r#"[
            {"path": "", "type": "sentence_transformers.models.Transformer"},
            {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
        ]"#;
        let dir = folder(&[
            ("modules.json", modules),
            (
                "1_Pooling/config.json",
                r#"{"pooling_mode_mean_tokens": true}"#,
            ),
        ]);
        assert_eq!(
            EmbeddingRecipe::of(dir.path()),
            Ok(EmbeddingRecipe {
                pooling: Pooling::Mean,
                normalize: false
            })
        );
    }

    #[test]
    fn what_perch_cannot_do_is_named() {
        let dir = folder(&[
            ("modules.json", MODULES),
            (
                "1_Pooling/config.json",
                r#"{"pooling_mode_cls_token": true}"#,
            ),
        ]);
        let err = EmbeddingRecipe::of(dir.path()).unwrap_err();
        assert!(err.contains("first-token (CLS)"), "{err}");

        let dense = r#"[{"path": "2_Dense", "type": "sentence_transformers.models.Dense"}]"#;
        let dir = folder(&[("modules.json", dense)]);
        let err = EmbeddingRecipe::of(dir.path()).unwrap_err();
        assert!(err.contains("`Dense`"), "{err}");
    }
}
