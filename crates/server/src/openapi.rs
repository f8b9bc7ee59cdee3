//! `GET /openapi.json`: the OpenAPI document, generated from the same types and handlers
//! that parse requests and build responses, so it describes what the server really
//! accepts and answers. The errors every route shares (host and origin checks, the API
//! key, body rules, overload) are added to each operation here, in one place, the way
//! the server applies them. Each request's `model` lists the models on this node (but a
//! pull's, which names one that is not here yet).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorDetail, ErrorResponse};
use crate::error_shape::Shape;
use crate::openai::responses::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChunkChoice, Completion,
    CompletionChoice, Delta,
};
use crate::openai::types::{
    ChatCompletionRequest, CompletionRequest, Content, ContentPart, Message, ModelList,
    ModelObject, Prompt, PromptTokensDetails, Sampling, Stop, StreamOptions, Usage,
};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Perch"),
    paths(
        crate::health::health,
        crate::openai::models::list,
        crate::openai::models::retrieve,
        crate::openai::chat::create,
        crate::openai::completions::create,
        crate::openai::embeddings::create,
        crate::anthropic::messages::create,
        crate::anthropic::messages::count_tokens,
        crate::ollama::models::version,
        crate::ollama::models::tags,
        crate::ollama::models::ps,
        crate::ollama::models::show,
        crate::ollama::models::remove,
        crate::ollama::models::copy,
        crate::ollama::pull::pull,
        crate::ollama::generate::chat,
        crate::ollama::generate::generate,
        crate::ollama::embed::embed_batch,
        crate::ollama::embed::embed_one,
        crate::perch_api::models::catalog,
        crate::perch_api::models::local,
        crate::perch_api::models::load,
        crate::perch_api::models::unload,
        crate::perch_api::downloads::list,
        crate::perch_api::downloads::cancel,
        crate::perch_api::memory::now,
        crate::perch_api::memory::stream,
        crate::perch_api::settings::get,
        crate::perch_api::settings::update,
        crate::perch_api::network::status,
        crate::perch_api::keys::list,
        crate::perch_api::keys::create,
        crate::perch_api::keys::revoke,
        crate::perch_api::hub_token::set,
        crate::perch_api::hub_token::clear
    ),
    components(schemas(
        ChatCompletionRequest,
        CompletionRequest,
        Message,
        Content,
        ContentPart,
        Prompt,
        Sampling,
        Stop,
        StreamOptions,
        Usage,
        PromptTokensDetails,
        ModelList,
        ModelObject,
        ChatCompletion,
        ChatChoice,
        AssistantMessage,
        ChatCompletionChunk,
        ChunkChoice,
        Delta,
        Completion,
        CompletionChoice,
        ErrorResponse,
        ErrorDetail,
        crate::health::Health,
        crate::ollama::types::ModelRequest,
        crate::ollama::types::PullRequest,
        crate::ollama::types::CopyRequest,
        crate::ollama::types::Options,
        crate::ollama::types::ChatMessage,
        crate::ollama::types::ChatRequest,
        crate::ollama::types::GenerateRequest,
        crate::ollama::types::ModelDetails,
        crate::ollama::types::TagModel,
        crate::ollama::types::TagList,
        crate::ollama::types::RunningModel,
        crate::ollama::types::RunningList,
        crate::ollama::types::ShowResponse,
        crate::ollama::types::Version,
        crate::ollama::types::PullProgress,
        crate::ollama::types::GenerateChunk,
        crate::ollama::types::OllamaErrorBody,
        crate::ollama::embed::EmbedRequest,
        crate::ollama::embed::EmbedResponse,
        crate::ollama::embed::EmbeddingsRequest,
        crate::ollama::embed::EmbeddingsResponse,
        crate::openai::embeddings::EmbeddingRequest,
        crate::openai::embeddings::EmbeddingInput,
        crate::openai::embeddings::EncodingFormat,
        crate::openai::embeddings::EmbeddingList,
        crate::openai::embeddings::EmbeddingObject,
        crate::openai::embeddings::EmbeddingUsage,
        crate::openai::embeddings::Vector,
        crate::anthropic::types::AnthropicError,
        crate::anthropic::types::AnthropicErrorDetail,
        crate::perch_api::types::LoadRequest,
        crate::perch_api::types::DownloadName,
        crate::perch_api::types::FitReport,
        crate::perch_api::types::CatalogModel,
        crate::perch_api::types::CatalogList,
        crate::perch_api::types::LocalModelInfo,
        crate::perch_api::types::LocalList,
        crate::perch_api::types::Loaded,
        crate::perch_api::types::UnloadResult,
        crate::perch_api::keys::NewKeyRequest,
        crate::perch_api::hub_token::HubTokenRequest
    )),
    modifiers(&SharedErrors)
)]
struct ApiDoc;

/// Adds the error answers every route shares to each operation.
struct SharedErrors;

impl Modify for SharedErrors {
    fn modify(&self, document: &mut Document) {
        for (path, item) in document.paths.paths.iter_mut() {
            let keyless = path == "/health";
            let shape = match Shape::of(path) {
                Some(Shape::Ollama) => "OllamaErrorBody",
                Some(Shape::Anthropic) => "AnthropicError",
                None => "ErrorResponse",
            };
            if let Some(get) = item.get.as_mut() {
                add_errors(get, keyless, false, shape);
            }
            if let Some(post) = item.post.as_mut() {
                add_errors(post, keyless, true, shape);
            }
            if let Some(put) = item.put.as_mut() {
                add_errors(put, keyless, true, shape);
            }
            if let Some(delete) = item.delete.as_mut() {
                add_errors(delete, keyless, true, shape);
            }
        }
    }
}

/// Adds the shared errors, with bodies of the schema `shape` (the route's API family).
fn add_errors(operation: &mut Operation, keyless: bool, has_body: bool, shape: &str) {
    let mut errors = vec![
        (
            "403",
            "The Host header or the web page's Origin is not allowed",
        ),
        (
            "503",
            "Too many connections, or the request queue is full; retry after Retry-After",
        ),
    ];
    if !keyless {
        errors.push(("401", "Missing or wrong API key"));
    }
    if has_body {
        errors.extend([
            ("400", "Malformed body or invalid field (the error names it), or a prompt plus max_tokens beyond the model's context"),
            ("408", "The body did not arrive within the body timeout"),
            ("413", "The body is larger than the limit"),
            ("415", "Content-Type is not application/json"),
        ]);
    }
    for (status, description) in errors {
        let body = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(shape)))
            .build();
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/json", body)
            .build();
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert(response.into());
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

/// The document, with `model` limited to the names this server answers for and the
/// limits it enforces stated.
async fn document(State(state): State<AppState>) -> Json<Document> {
    let mut document = ApiDoc::openapi();
    let limits = &state.limits;
    let output = limits
        .max_output_tokens
        .map_or("the model's context".to_owned(), |n| format!("{n} tokens"));
    document.info.description = Some(format!(
        "OpenAI-compatible API (/v1), Ollama's API (/api) and Perch's own (/api/perch) of a \
         Perch inference node. Limits of this server: bodies up to \
         {} bytes (413), sent within {} s (408); prompts up to {} tokens and the model's \
         context, with max_tokens (400 context_length_exceeded); answers up to {output} \
         (a larger max_tokens is lowered); {} requests admitted at once and {} connections \
         (503 with Retry-After beyond).",
        limits.max_body_bytes,
        limits.body_timeout.as_secs_f64(),
        limits.max_prompt_tokens,
        limits.max_queue,
        limits.max_connections,
    ));
    let names: Vec<serde_json::Value> = state
        .local_models()
        .await
        .iter()
        .map(|m| m.name().into())
        .collect();
    let schemas = document.components.as_mut().map(|c| &mut c.schemas);
    for (name, schema) in schemas.into_iter().flatten() {
        // A pull names a model that is not here yet.
        if !name.ends_with("Request") || name == "PullRequest" {
            continue;
        }
        if let RefOr::T(Schema::Object(request)) = schema {
            if let Some(RefOr::T(Schema::Object(model))) = request.properties.get_mut("model") {
                model.enum_values = Some(names.clone());
            }
        }
    }
    Json(document)
}
