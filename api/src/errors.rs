//! Every way a request can fail, and the one place that maps each to its HTTP code and the
//! `metav1.Status` body Kubernetes clients expect.

use crate::admission::AdmissionError;
use coracle_config::meta::{Status, StatusCause, StatusDetails};
use coracle_config::object::ResourceInfo;
use coracle_config::validation::FieldError;
use coracle_runtime::image::ImageError;
use coracle_runtime::ExecError;
use coracle_store::StoreError;
use std::fmt;

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// Malformed request: bad JSON, a bad selector, a name that does not match the URL.
    BadRequest(String),
    /// A named object that does not exist.
    NotFound {
        resource: &'static ResourceInfo,
        name: String,
    },
    /// A path the server does not serve.
    PathNotFound(String),
    /// A verb the path does not support (yet).
    MethodNotAllowed {
        method: String,
        path: String,
    },
    /// The TCP listener requires a bearer token.
    Unauthorized,
    /// A body over the limit; `limit` in bytes.
    PayloadTooLarge {
        limit: usize,
    },
    /// A body in a format the server does not read (protobuf, CBOR, …).
    UnsupportedMediaType(String),
    Store(StoreError),
    Admission(AdmissionError),
    /// Request options (not an object) that break a validation rule: `PodLogOptions`.
    InvalidOptions {
        kind: &'static str,
        name: String,
        errors: Vec<FieldError>,
    },
    /// Any other failure with its own code and reason (image and metrics APIs).
    Status {
        code: u16,
        reason: &'static str,
        message: String,
    },
    /// A server-side failure (I/O) that is not the client's doing.
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::Store(e)
    }
}

impl From<AdmissionError> for ApiError {
    fn from(e: AdmissionError) -> ApiError {
        ApiError::Admission(e)
    }
}

impl From<ImageError> for ApiError {
    /// An image store failure: a missing image is 404, one still used 409, an archive over
    /// its budget 413, the store's own I/O 500, any other refusal of the archive 400.
    fn from(error: ImageError) -> ApiError {
        match &error {
            ImageError::NotFound { reference } => ApiError::Status {
                code: 404,
                reason: "NotFound",
                message: format!("images.images.coracle.io \"{reference}\" not found"),
            },
            ImageError::InUse { .. } => ApiError::Status { code: 409, reason: "Conflict", message: error.to_string() },
            ImageError::TooLarge { .. } => {
                ApiError::Status { code: 413, reason: "RequestEntityTooLarge", message: error.to_string() }
            }
            ImageError::Io { .. } => ApiError::Internal(error.to_string()),
            _ => ApiError::BadRequest(error.to_string()),
        }
    }
}

impl From<ExecError> for ApiError {
    /// A command run in a container: with no running instance to run it in, 404 (the
    /// kubelet's "container not found"); past its timeout, 504 Timeout; a program that
    /// could not start or a runtime that could not set it up, 500, as Kubernetes answers
    /// "error executing command in container".
    fn from(error: ExecError) -> ApiError {
        match &error {
            ExecError::NotRunning { .. } => {
                ApiError::Status { code: 404, reason: "NotFound", message: error.to_string() }
            }
            ExecError::TimedOut { .. } => ApiError::Status { code: 504, reason: "Timeout", message: error.to_string() },
            ExecError::Start(_) | ExecError::Runtime(_) => {
                ApiError::Internal(format!("error executing command in container: {error}"))
            }
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.status().message)
    }
}

impl std::error::Error for ApiError {}

fn details_for(resource: &ResourceInfo, name: &str) -> StatusDetails {
    StatusDetails {
        name: name.to_string(),
        group: resource.group.to_string(),
        kind: resource.plural.to_string(),
        ..Default::default()
    }
}

/// A field error as a `StatusCause`: its reason, its message without the field path.
fn cause(error: &FieldError) -> StatusCause {
    StatusCause { reason: error.reason().into(), message: error.body(), field: error.field.clone() }
}

impl ApiError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        self.status().code
    }

    /// The `Status` body, with reason, message, details and code as Kubernetes writes them.
    pub fn status(&self) -> Status {
        match self {
            ApiError::BadRequest(message) => Status::failure(400, "BadRequest", message.clone()),
            ApiError::NotFound { resource, name } => {
                let mut s =
                    Status::failure(404, "NotFound", format!("{} \"{name}\" not found", resource.qualified_plural()));
                s.details = Some(details_for(resource, name));
                s
            }
            ApiError::PathNotFound(path) => {
                let mut s = Status::failure(404, "NotFound", "the server could not find the requested resource");
                s.details = Some(StatusDetails {
                    causes: vec![StatusCause {
                        reason: "UnexpectedServerResponse".into(),
                        message: format!("404 page not found: {path}"),
                        field: String::new(),
                    }],
                    ..Default::default()
                });
                s
            }
            ApiError::MethodNotAllowed { method, path } => Status::failure(
                405,
                "MethodNotAllowed",
                format!("the server does not allow this method on the requested resource: {method} {path}"),
            ),
            ApiError::Unauthorized => Status::failure(401, "Unauthorized", "Unauthorized"),
            ApiError::PayloadTooLarge { limit } => Status::failure(
                413,
                "RequestEntityTooLarge",
                format!("the request body is larger than the limit of {limit} bytes"),
            ),
            ApiError::UnsupportedMediaType(content_type) => Status::failure(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/json, application/yaml (got {content_type:?})"
                ),
            ),
            ApiError::Admission(AdmissionError::Decode(message)) => Status::failure(400, "BadRequest", message.clone()),
            ApiError::Admission(e @ AdmissionError::Invalid { resource, name, errors }) => {
                let mut s = Status::failure(422, "Invalid", e.to_string());
                s.details = Some(StatusDetails {
                    name: name.clone(),
                    group: resource.group.to_string(),
                    kind: resource.kind.to_string(),
                    causes: errors.iter().map(cause).collect(),
                    ..Default::default()
                });
                s
            }
            ApiError::Admission(e @ AdmissionError::Forbidden { resource, name, .. }) => {
                let mut s = Status::failure(403, "Forbidden", e.to_string());
                s.details =
                    Some(StatusDetails { name: name.clone(), kind: resource.plural.to_string(), ..Default::default() });
                s
            }
            ApiError::InvalidOptions { kind, name, errors } => {
                let message = coracle_config::validation::invalid_message(kind, name, errors);
                let mut s = Status::failure(422, "Invalid", message);
                s.details = Some(StatusDetails {
                    name: name.clone(),
                    kind: kind.to_string(),
                    causes: errors.iter().map(cause).collect(),
                    ..Default::default()
                });
                s
            }
            ApiError::Store(e) => store_status(e),
            ApiError::Status { code, reason, message } => Status::failure(*code, reason, message.clone()),
            ApiError::Internal(message) => {
                Status::failure(500, "InternalError", format!("Internal error occurred: {message}"))
            }
        }
    }
}

fn store_status(error: &StoreError) -> Status {
    match error {
        StoreError::NotFound { resource, name } => ApiError::NotFound { resource, name: name.clone() }.status(),
        StoreError::AlreadyExists { resource, name } => {
            let mut s = Status::failure(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", resource.qualified_plural()),
            );
            s.details = Some(details_for(resource, name));
            s
        }
        StoreError::Conflict { resource, name, message } => {
            let mut s = Status::failure(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {} \"{name}\": {message}", resource.qualified_plural()),
            );
            s.details = Some(details_for(resource, name));
            s
        }
        StoreError::Expired { requested, oldest } => {
            Status::failure(410, "Expired", format!("too old resource version: {requested} ({oldest})"))
        }
        StoreError::Invalid { message } => Status::failure(422, "Invalid", message.clone()),
        StoreError::Io { .. } => Status::failure(500, "InternalError", format!("Internal error occurred: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployments() -> &'static ResourceInfo {
        ResourceInfo::lookup("deployments").unwrap()
    }

    #[test]
    fn not_found_names_the_qualified_resource() {
        let s = ApiError::NotFound { resource: deployments(), name: "web".into() }.status();
        assert_eq!(s.code, 404);
        assert_eq!(s.reason, "NotFound");
        assert_eq!(s.message, "deployments.apps \"web\" not found");
        let d = s.details.unwrap();
        assert_eq!((d.name.as_str(), d.group.as_str(), d.kind.as_str()), ("web", "apps", "deployments"));
    }

    #[test]
    fn store_errors_map_to_kubernetes_codes() {
        let exists = ApiError::from(StoreError::AlreadyExists { resource: deployments(), name: "web".into() });
        assert_eq!((exists.code(), exists.status().reason.as_str()), (409, "AlreadyExists"));
        let conflict = ApiError::from(StoreError::Conflict {
            resource: deployments(),
            name: "web".into(),
            message: "the object has been modified".into(),
        });
        assert_eq!(conflict.code(), 409);
        assert_eq!(
            conflict.status().message,
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified"
        );
        let expired = ApiError::from(StoreError::Expired { requested: 3, oldest: 10 });
        assert_eq!((expired.code(), expired.status().reason.as_str()), (410, "Expired"));
    }

    #[test]
    fn request_errors_carry_their_codes() {
        assert_eq!(ApiError::BadRequest("x".into()).code(), 400);
        assert_eq!(ApiError::Unauthorized.code(), 401);
        assert_eq!(ApiError::PathNotFound("/x".into()).code(), 404);
        assert_eq!(ApiError::MethodNotAllowed { method: "PATCH".into(), path: "/x".into() }.code(), 405);
        assert_eq!(ApiError::PayloadTooLarge { limit: 1 }.code(), 413);
        assert_eq!(ApiError::UnsupportedMediaType("application/x".into()).code(), 415);
        assert_eq!(ApiError::Admission(AdmissionError::Decode("bad".into())).code(), 400);
    }

    #[test]
    fn exec_errors_carry_their_codes() {
        use coracle_runtime::ExecOutput;
        use std::time::Duration;
        let gone = ApiError::from(ExecError::NotRunning { id: "u_app_0".into() }).status();
        assert_eq!((gone.code, gone.reason.as_str()), (404, "NotFound"));
        assert_eq!(gone.message, "container u_app_0 is not running");
        let slow = ExecError::TimedOut { timeout: Duration::from_secs(1), output: ExecOutput::default() };
        assert_eq!(ApiError::from(slow).status().reason, "Timeout");
        let missing = ApiError::from(ExecError::Start("exec: \"nope\": executable file not found in $PATH".into()));
        let status = missing.status();
        assert_eq!((status.code, status.reason.as_str()), (500, "InternalError"));
        assert_eq!(
            status.message,
            "Internal error occurred: error executing command in container: \
             exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(ApiError::from(ExecError::Runtime("pipe: EMFILE".into())).code(), 500);
    }
}
