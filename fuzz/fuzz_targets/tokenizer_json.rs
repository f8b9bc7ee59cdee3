//! Any text as a `tokenizer.json`: building the tokenizer and encoding and decoding a
//! sentence with it must answer, never panic.
#![no_main]

use perch_engine::text::tokenizer::Tokenizer;

libfuzzer_sys::fuzz_target!(|json: &str| {
    if let Ok(tokenizer) = Tokenizer::from_json(json, None, None) {
        if let Ok(ids) = tokenizer.encode("Hello, world! <|im_start|> 你好 🌞", true) {
            let _ = tokenizer.decode(&ids, false);
        }
    }
});
