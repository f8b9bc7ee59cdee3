//! The JSON schema constrained-decoding tests ask the test model to answer under — a
//! person: a name of at most 20 characters, an age from 0 to 150, at most three pets from
//! a list, nothing else — and the check that an answer holds to it.

use serde_json::{json, Value};

/// The schema.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 20},
            "age": {"type": "integer", "minimum": 0, "maximum": 150},
            "pets": {"type": "array", "items": {"enum": ["cat", "dog", "fish"]}, "maxItems": 3},
        },
        "required": ["name", "age", "pets"],
        "additionalProperties": false,
    })
}

/// Panics, saying why, unless `text` is a JSON value that holds to the schema.
pub fn assert_holds(text: &str) {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let keys: Vec<&String> = value.as_object().expect(text).keys().collect();
    assert_eq!(keys, ["name", "age", "pets"], "{text}");
    assert!(
        value["name"].as_str().expect(text).chars().count() <= 20,
        "{text}"
    );
    let age = value["age"].as_i64().expect(text);
    assert!((0..=150).contains(&age), "{text}");
    for pet in value["pets"].as_array().expect(text) {
        assert!(
            ["cat", "dog", "fish"].contains(&pet.as_str().expect(text)),
            "{text}"
        );
    }
}
