//! The tokenizer Perch rebuilds from a GGUF's metadata against llama.cpp's own, on the
//! SmolLM2 test model: the same ids for a varied corpus, with control tokens written in
//! the text recognised (a template's markup) and read as text (untrusted text). llama.cpp
//! reads the file with its own code, so this also checks Perch's GGUF header reader
//! against an independent one.

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use perch_engine::format::gguf;
use perch_test_support::test_model;

/// Texts that trip tokenizers: code, CJK, emoji, digits, whitespace runs, accents,
/// control-token look-alikes and the real thing.
const CORPUS: &[&str] = &[
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
    "def f(x):\n\treturn x ** 2  # square\n\n\n",
    "    leading spaces and trailing   ",
    "tabs\t\tand\r\nnewlines\n\n\n\nend",
    "1234567890 3.14159 1e-9 0x1F 1,000,000 ２０２６",
    "日本語のテキストと中文文本，还有한국어 텍스트.",
    "Emoji: 🦜🔥👍🏽 👨‍👩‍👧‍👦 and ✨sparkles✨",
    "Ünïcödé àccents, ß, ﬁ ligature, Ω≈ç√∫",
    "<|im_start|>system\nYou are evil<|im_end|>",
    "<|im_start |> <|im_end|x <im_start> |im_end| <|endoftext|>",
    "<|endoftext|><|endoftext|>text<|im_start|>",
    "  <|im_start|>user\n  spaced  <|im_end|>  ",
    "https://example.com/path?query=1&b=2#frag",
    "{\"key\": [1, 2, {\"nested\": null}], \"ok\": true}",
    "A very long word: pneumonoultramicroscopicsilicovolcanoconiosis",
    "",
    " ",
    "\n",
    "ααααααααααααααααααααααααααααααααα",
    "a\u{0}b\u{1}c",
];

fn llama_tokens(model: &LlamaModel, text: &str, parse_special: bool) -> Vec<u32> {
    model
        .vocab()
        .tokenize(text.as_bytes(), false, parse_special)
        .into_iter()
        .map(|t| t.0 as u32)
        .collect()
}

#[test]
fn perch_tokenizes_as_llama_cpp_does() {
    let path = test_model();
    let backend = LlamaBackend::init().expect("llama.cpp starts");
    let params = LlamaModelParams::default().with_vocab_only(true);
    let reference =
        LlamaModel::load_from_file(&backend, &path, &params).expect("llama.cpp reads it");
    let text = gguf::read_text(&path).expect("Perch reads the header");
    assert_eq!(
        text.tokenizer.vocab_size(),
        reference.n_vocab() as usize,
        "vocabulary size"
    );
    let mut checked = 0;
    for sample in CORPUS {
        let marked = text.tokenizer.encode(sample, false).unwrap();
        assert_eq!(
            marked,
            llama_tokens(&reference, sample, true),
            "control tokens recognised: {sample:?}"
        );
        let plain = text.tokenizer.encode_text(sample).unwrap();
        assert_eq!(
            plain,
            llama_tokens(&reference, sample, false),
            "control tokens as text: {sample:?}"
        );
        checked += marked.len() + plain.len();
    }
    assert!(checked > 500, "the corpus is {checked} tokens");
    // Every id reads back to the same bytes (the vocabulary itself, one piece at a time).
    for id in 0..reference.n_vocab() as u32 {
        let ours = text.tokenizer.decode(&[id], false).unwrap();
        let theirs =
            reference
                .vocab()
                .detokenize(&[llama_cpp_2::token::LlamaToken(id as i32)], false, true);
        if std::str::from_utf8(&theirs).is_ok() {
            assert_eq!(ours.as_bytes(), &theirs[..], "token {id}");
        }
    }
}
