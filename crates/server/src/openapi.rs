//! `GET /openapi.json`: the OpenAPI document, generated from the same types and handlers
//! that parse requests, so it describes what the server really accepts.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::openai::types::{
    ChatCompletionRequest, CompletionRequest, Content, ContentPart, Message, ModelList,
    ModelObject, Prompt, PromptTokensDetails, Sampling, Stop, StreamOptions, Usage,
};
use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Perch",
        description = "OpenAI-compatible API of a Perch inference node"
    ),
    paths(
        crate::openai::models::list,
        crate::openai::chat::create,
        crate::openai::completions::create
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
        ModelObject
    ))
)]
struct ApiDoc;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
