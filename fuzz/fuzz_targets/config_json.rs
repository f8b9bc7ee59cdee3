//! Any text as a model's `config.json`: parsing and validating it must answer, never
//! panic.
#![no_main]

use perch_engine::config::ModelConfig;

libfuzzer_sys::fuzz_target!(|json: &str| {
    if let Ok(config) = ModelConfig::from_json(json) {
        let _ = config.validate();
    }
});
