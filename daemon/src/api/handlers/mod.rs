//! The API's core: typed requests in, replies out. Nothing here sees HTTP.

pub mod discovery;
pub mod objects;
pub mod watch;

use super::errors::ApiError;
use super::request::ApiRequest;
use crate::store::Store;
use watch::WatchStream;

/// What a handled request answers.
pub enum Reply {
    /// A JSON document, with `Warning` texts to send alongside.
    Json { code: u16, body: serde_json::Value, warnings: Vec<String> },
    /// A plain-text answer (health probes).
    Text { code: u16, body: String },
    /// A watch: newline-delimited JSON events until the stream ends.
    Watch(WatchStream),
}

impl Reply {
    /// A 200 JSON reply without warnings.
    pub fn ok(body: serde_json::Value) -> Reply {
        Reply::Json { code: 200, body, warnings: Vec::new() }
    }
}

/// Serves one request against the store.
pub fn handle(store: &Store, request: ApiRequest) -> Result<Reply, ApiError> {
    match request {
        ApiRequest::Health(_) => Ok(Reply::Text { code: 200, body: "ok".into() }),
        ApiRequest::Version => Ok(Reply::ok(discovery::version())),
        ApiRequest::Discovery(doc) => discovery::document(&doc).map(Reply::ok),
        ApiRequest::List { path, query } => Ok(Reply::ok(objects::list(store, &path, &query))),
        ApiRequest::Watch { path, query } => Ok(Reply::Watch(WatchStream::open(store, &path, query))),
        ApiRequest::Get { path } => objects::get(store, &path).map(Reply::ok),
        ApiRequest::Create { path, body } => objects::create(store, &path, body),
        ApiRequest::Replace { path, body } => objects::replace(store, &path, body),
        ApiRequest::Delete { path, options } => objects::delete(store, &path, &options).map(Reply::ok),
    }
}
