//! `perch run MODEL`: a chat in the terminal, streaming the answer as it is generated.
//! `/bye` (or end of input) quits.

use std::io::{BufRead, Write};

use anyhow::Context;
use perch_engine::generate::{Event, GenerateRequest};
use perch_engine::sampler::SamplingParams;
use perch_engine::text::chat_prompt::ChatInput;
use perch_engine::text::template::ChatMessage;
use perch_engine::{Engine, EngineKind, Serving};
use perch_runtime::hub::HubSettings;
use perch_runtime::manager::{engine_for, load_on};
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
    /// The engine a GGUF file runs on: llama.cpp or mlx (MLX directories run on MLX).
    /// Default: the model's catalog entry's, else the settings file's gguf_engine.
    #[arg(long, value_name = "ENGINE")]
    engine: Option<EngineKind>,
}

/// Runs the chat loop on stdin and stdout.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let (name, path, engine) = match names::parse(&args.model, Origin::Local)? {
        ModelName::Path(path) => {
            let engine = EngineKind::for_model(&path, args.engine)?;
            (args.model.clone(), path, engine)
        }
        _ => {
            let store = crate::models::store();
            let model = match store.get(&args.model) {
                Some(model) => model,
                None => tokio::runtime::Runtime::new()?.block_on(async {
                    let downloads = Downloads::new(store, HubSettings::from_env());
                    crate::models::pull::pull_here(&downloads, &args.model).await
                })?,
            };
            let engine = match args.engine {
                Some(wanted) => EngineKind::for_model(&model.load_path(), Some(wanted))?,
                None => engine_for(&model, crate::models::settings_file().gguf_engine)?,
            };
            (model.name().to_owned(), model.load_path(), engine)
        }
    };
    eprintln!("loading {name} on {engine} …");
    let engine = load_on(engine, &path, Serving::new(1, usize::MAX))
        .with_context(|| format!("loading {}", path.display()))?;
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
