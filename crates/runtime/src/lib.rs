//! Perch's runtime: the data directory, and turning a model name (`smollm2:135m`, a path)
//! into a file on disk, fetching starter models on first use. Later issues add the memory
//! planner, the model manager and settings here.

pub mod catalog;
mod fetch;
pub mod store;

pub use store::{ModelStore, ResolvedModel, StoreError};
