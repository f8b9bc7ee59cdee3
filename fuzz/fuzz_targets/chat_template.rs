//! Any text as a model's chat template: compiling and rendering a conversation with it
//! must answer within the fuel and output bounds, never panic or hang.
#![no_main]

use perch_engine::text::template::{ChatMessage, ChatTemplate, TemplateContext};

libfuzzer_sys::fuzz_target!(|source: &str| {
    let Ok(template) = ChatTemplate::new(source) else {
        return;
    };
    let messages = [
        ChatMessage::new("system", "Be brief."),
        ChatMessage::new("user", "What is the capital of France?"),
        ChatMessage::new("assistant", "Paris."),
    ];
    let tools =
        serde_json::json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    let context = TemplateContext {
        add_generation_prompt: true,
        bos_token: Some("<s>"),
        eos_token: Some("</s>"),
        tools: Some(&tools),
        kwargs: None,
    };
    let _ = template.render(&messages, &context);
});
