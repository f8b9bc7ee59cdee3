//! Tokenizer and streaming detokenizer on the real SmolLM2 vocabulary.

mod common;

use perch_engine::format;
use perch_engine::text::detokenizer::Detokenizer;

#[test]
fn streaming_decode_never_breaks_characters_and_keeps_spaces() {
    let files = format::read(&common::test_model()).unwrap();
    let tokenizer = &files.tokenizer;
    for text in [
        "Hello 🌞 world, 你好！ café — naïve  two  spaces",
        " leading space and trailing space ",
        "emoji run 👩‍👩‍👧‍👦🏳️‍🌈 and CJK 日本語のテキスト",
        "code:\n\tfn main() { println!(\"{}\", 1 + 2); }\n",
        "digits 1234567890 split",
    ] {
        let ids = tokenizer.encode(text, false).unwrap();
        let mut detok = Detokenizer::default();
        let mut streamed = String::new();
        for &id in &ids {
            let delta = detok.push(tokenizer, id).unwrap();
            assert!(
                !delta.contains('\u{FFFD}'),
                "broken character in {delta:?} of {text:?}"
            );
            streamed.push_str(&delta);
        }
        streamed.push_str(&detok.flush(tokenizer).unwrap());
        assert_eq!(streamed, text);
        assert_eq!(tokenizer.decode(&ids, false).unwrap(), text, "round trip");
    }
}

#[test]
fn special_tokens_and_digits() {
    let files = format::read(&common::test_model()).unwrap();
    let t = &files.tokenizer;
    let ids = t.encode("<|im_start|>user\nhi<|im_end|>", false).unwrap();
    assert_eq!(ids.first(), t.token_id("<|im_start|>").as_ref());
    assert_eq!(ids.last(), t.token_id("<|im_end|>").as_ref());
    assert!(t.is_special(ids[0]));
    // SmolLM's pre-tokenizer splits every digit.
    let digits = t.encode("2024", false).unwrap();
    assert_eq!(digits.len(), 4);
    assert_eq!(files.eos_token_ids, vec![t.token_id("<|im_end|>").unwrap()]);
    assert_eq!(t.vocab_size(), 49152);
}
