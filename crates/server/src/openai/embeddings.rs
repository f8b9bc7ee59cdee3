//! `POST /v1/embeddings`: its wire types and handler. Inputs are one text, a list of
//! texts, token ids, or lists of token ids (ids of the served model's own vocabulary,
//! not OpenAI's); vectors come back as floats or, with `encoding_format: "base64"`, as
//! base64 of little-endian float32 bytes, the way OpenAI's clients decode them.

use axum::extract::State;
use axum::Json;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::embed::{embed, EmbedAsk, EmbedInputs};
use crate::error::ErrorResponse;
use crate::extract::JsonBody;
use crate::{ApiError, AppState};

/// `input`: what to embed.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// Several texts.
    Texts(Vec<String>),
    /// One input as token ids.
    Tokens(#[serde(deserialize_with = "super::whole_number::list")] Vec<u32>),
    /// Several inputs as token ids.
    TokenLists(Vec<Vec<u32>>),
}

// Written out because utoipa cannot describe the variants of an untagged enum.
impl PartialSchema for EmbeddingInput {
    fn schema() -> RefOr<Schema> {
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let ids = || {
            ArrayBuilder::new()
                .items(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(0))
                        .maximum(Some(u32::MAX)),
                )
                .min_items(Some(1))
        };
        OneOfBuilder::new()
            .description(Some(
                "A text, a list of texts, token ids, or a list of token-id lists (ids of the \
                 model's own vocabulary); at most 2048 inputs",
            ))
            .item(text())
            .item(ArrayBuilder::new().items(text()).max_items(Some(2048)))
            .item(ids())
            .item(ArrayBuilder::new().items(ids()).max_items(Some(2048)))
            .into()
    }
}

impl ToSchema for EmbeddingInput {}

/// How vectors are written in the answer.
#[derive(Clone, Copy, Debug, Default, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    /// A JSON array of numbers.
    #[default]
    Float,
    /// Base64 of the little-endian float32 bytes.
    Base64,
}

/// `POST /v1/embeddings`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct EmbeddingRequest {
    /// The model.
    pub model: String,
    /// What to embed.
    pub input: EmbeddingInput,
    /// `float` (the default) or `base64`.
    pub encoding_format: Option<EncodingFormat>,
    /// Keep only the first this many dimensions, normalised again: the shorter vectors
    /// of models trained for it (Matryoshka), such as Qwen3-Embedding's 32–1024.
    #[serde(default, deserialize_with = "super::whole_number::option")]
    pub dimensions: Option<u32>,
    /// The caller's end user (accepted, not used).
    pub user: Option<String>,
}

impl crate::extract::RequestBody for EmbeddingRequest {}

/// One vector as written.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Vector {
    /// Numbers.
    Float(Vec<f32>),
    /// Base64 of little-endian float32.
    Base64(String),
}

impl PartialSchema for Vector {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Number)))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .into()
    }
}

impl ToSchema for Vector {}

/// One input's embedding.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EmbeddingObject {
    /// `"embedding"`.
    pub object: &'static str,
    /// The input it belongs to.
    pub index: usize,
    /// The vector.
    pub embedding: Vector,
}

/// Tokens read.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens in all the inputs.
    pub prompt_tokens: usize,
    /// The same (nothing is generated).
    pub total_tokens: usize,
}

/// The answer: one embedding per input, in order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EmbeddingList {
    /// `"list"`.
    pub object: &'static str,
    /// The embeddings.
    pub data: Vec<EmbeddingObject>,
    /// The model that made them.
    pub model: String,
    /// Tokens read.
    pub usage: EmbeddingUsage,
}

/// Embeds texts or token ids with the model's pooling.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    request_body = EmbeddingRequest,
    operation_id = "createEmbedding",
    responses(
        (status = 200, description = "One embedding per input", body = EmbeddingList),
        (status = 400, description = "Invalid input, or longer than the model reads at once", body = ErrorResponse),
        (status = 404, description = "Unknown model", body = ErrorResponse),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<EmbeddingRequest>,
) -> Result<Json<EmbeddingList>, ApiError> {
    let inputs = match body.input {
        EmbeddingInput::Text(t) => EmbedInputs::Texts(vec![t]),
        EmbeddingInput::Texts(t) => EmbedInputs::Texts(t),
        EmbeddingInput::Tokens(ids) => EmbedInputs::Tokens(vec![ids]),
        EmbeddingInput::TokenLists(ids) => EmbedInputs::Tokens(ids),
    };
    let lease = state.acquire(&body.model, None).await?;
    let ask = EmbedAsk {
        inputs,
        dimensions: body.dimensions,
        truncate: false,
        field: "input",
    };
    let embeddings = embed(&state, &lease, ask, "embeddings").await?;
    let base64 = body.encoding_format == Some(EncodingFormat::Base64);
    let data = embeddings
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| EmbeddingObject {
            object: "embedding",
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Vector::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Vector::Float(vector)
            },
        })
        .collect();
    Ok(Json(EmbeddingList {
        object: "list",
        data,
        model: lease.model().name.clone(),
        usage: EmbeddingUsage {
            prompt_tokens: embeddings.prompt_tokens,
            total_tokens: embeddings.prompt_tokens,
        },
    }))
}
