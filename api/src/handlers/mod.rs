//! The API's core: typed requests in, replies out. Nothing here sees HTTP.

pub mod discovery;
pub mod images;
pub mod logs;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod openapi_paths;
pub mod openapi_schemas;
pub mod openapi_v2;
pub mod patch;
pub mod subresources;
pub mod watch;

use super::context::ApiContext;
use super::errors::ApiError;
use super::request::{ApiRequest, ImagesRequest};
use watch::WatchStream;

/// A body produced piece by piece (a followed log): each chunk is sent as it comes.
pub trait ChunkSource: Send {
    /// The next piece; an empty one when nothing came within a poll (the server then looks
    /// whether its client is still there); None at the end.
    fn next_chunk(&mut self) -> Option<Vec<u8>>;
}

/// What a handled request answers.
pub enum Reply {
    /// A JSON document, with `Warning` texts to send alongside.
    Json { code: u16, body: serde_json::Value, warnings: Vec<String> },
    /// A plain-text answer (health probes).
    Text { code: u16, body: String },
    /// Raw bytes of a given type (logs).
    Bytes { code: u16, content_type: &'static str, body: Vec<u8> },
    /// A watch: newline-delimited JSON events until the stream ends.
    Watch(WatchStream),
    /// A 200 streamed chunk by chunk until the source ends.
    Stream { content_type: &'static str, source: Box<dyn ChunkSource> },
}

impl Reply {
    /// A 200 JSON reply without warnings.
    pub fn ok(body: serde_json::Value) -> Reply {
        Reply::Json { code: 200, body, warnings: Vec::new() }
    }
}

/// Serves one request.
pub fn handle(ctx: &ApiContext, request: ApiRequest) -> Result<Reply, ApiError> {
    let store = &ctx.store;
    let services = &*ctx.services;
    match request {
        ApiRequest::Health(_) => Ok(Reply::Text { code: 200, body: "ok".into() }),
        ApiRequest::Version => Ok(Reply::ok(discovery::version())),
        ApiRequest::Discovery(doc) => discovery::document(&doc).map(Reply::ok),
        ApiRequest::OpenApi(doc) => openapi::document(doc.as_deref()).map(Reply::ok),
        ApiRequest::OpenApiV2 => Ok(Reply::ok(openapi_v2::document())),
        ApiRequest::List { path, query } => Ok(Reply::ok(objects::list(store, &path, &query))),
        ApiRequest::Watch { path, query } => Ok(Reply::Watch(WatchStream::open(store, &path, query))),
        ApiRequest::Get { path, .. } if path.subresource.is_some() => subresources::get(store, &path).map(Reply::ok),
        ApiRequest::Get { path, table } => objects::get(store, &path, table).map(Reply::ok),
        ApiRequest::Create { path, body, options } => objects::create(store, services, &path, body, &options),
        ApiRequest::Replace { path, body, options } if path.subresource.is_some() => {
            subresources::replace(store, services, &path, body, &options)
        }
        ApiRequest::Replace { path, body, options } => objects::replace(store, services, &path, body, &options),
        ApiRequest::Patch { path, kind, body, options } if path.subresource.is_some() => {
            subresources::patch(store, services, &path, kind, &body, &options)
        }
        ApiRequest::Patch { path, kind, body, options } => patch::patch(store, services, &path, kind, &body, &options),
        ApiRequest::Delete { path, options } => objects::delete(store, &path, &options).map(Reply::ok),
        ApiRequest::DeleteCollection { path, query, options } => {
            objects::delete_collection(store, &path, &query, &options).map(Reply::ok)
        }
        ApiRequest::Log { path, query } => logs::log(store, &ctx.logs_dir, &path, &query),
        ApiRequest::Metrics(path) => metrics::serve(store, ctx.metrics.as_deref(), &path).map(Reply::ok),
        ApiRequest::Images(ImagesRequest::List) => Ok(Reply::ok(images::list(&ctx.images))),
        ApiRequest::Images(ImagesRequest::Import { dir, name }) => images::import(&ctx.images, &dir, &name),
        ApiRequest::Images(ImagesRequest::Delete { reference }) => images::delete(store, &ctx.images, &reference),
    }
}
