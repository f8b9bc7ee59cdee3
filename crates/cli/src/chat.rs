//! `perch run MODEL`: a chat in the terminal, streaming the answer as it is generated.
//! `/bye` (or end of input) quits.

use std::io::{BufRead, Write};

use anyhow::Context;
use perch_engine::generate::{Event, GenerateRequest};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, MlxEngine};
use perch_runtime::hub::HubSettings;
use perch_runtime::names::{self, ModelName, Origin};
use perch_runtime::Downloads;

/// Arguments of `perch run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// A catalog alias, a GGUF file or an MLX directory.
    model: String,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.7)]
    temperature: f32,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
}

/// Runs the chat loop on stdin and stdout.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let (name, path) = match names::parse(&args.model, Origin::Local)? {
        ModelName::Path(path) => (args.model.clone(), path),
        _ => {
            let store = crate::models::store();
            let model = match store.get(&args.model) {
                Some(model) => model,
                None => tokio::runtime::Runtime::new()?.block_on(async {
                    let downloads = Downloads::new(store, HubSettings::from_env());
                    crate::models::pull::pull_here(&downloads, &args.model).await
                })?,
            };
            (model.name().to_owned(), model.load_path())
        }
    };
    eprintln!("loading {name} …");
    let engine = MlxEngine::load(&path).with_context(|| format!("loading {}", path.display()))?;
    eprintln!("{name} ready. Type a message; /bye to quit.");
    let mut history: Vec<ChatMessage> = Vec::new();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        print!(">>> ");
        stdout.flush()?;
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim();
        if line == "/bye" {
            break;
        }
        if line.is_empty() {
            continue;
        }
        history.push(ChatMessage::new("user", line));
        let prompt = engine.chat(&ChatInput::messages(&history))?.tokens;
        let sampling = SamplingParams {
            temperature: args.temperature,
            ..Default::default()
        };
        let request = GenerateRequest {
            prompt,
            sampling,
            max_tokens: args.max_tokens,
            ..Default::default()
        };
        let mut answer = String::new();
        for event in engine.generate(request)? {
            match event? {
                Event::Chunk { text, .. } => {
                    print!("{text}");
                    stdout.flush()?;
                    answer.push_str(&text);
                }
                Event::Done(_) => println!("\n"),
            }
        }
        history.push(ChatMessage::new("assistant", &answer));
    }
    Ok(())
}
