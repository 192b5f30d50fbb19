//! HTTP → a typed `ApiRequest`: method, route, query parameters and body, checked here so
//! the handlers only ever see well-formed requests.

use super::errors::ApiError;
use super::patch::PatchType;
pub use super::query::{percent_decode, query_pairs};
use super::routes::{self, DiscoveryDoc, MetricsPath, Probe, ResourcePath, Route};
use super::selectors::{FieldQuery, Selectors};
use coracle_config::label_selector;
use coracle_config::validation::{FieldError, Path as FieldPath};
use coracle_store::{DeleteOptions, Propagation};
use serde::Deserialize;
use std::time::Duration;

/// The largest request body read: 3 MiB, kube-apiserver's `MaxRequestBodyBytes`. Objects
/// themselves are held to 1 MiB of values (ConfigMaps, Secrets) by validation, which a
/// Secret's base64 and the JSON around it must be able to reach to get its 422.
pub const MAX_BODY: usize = 3 << 20;

/// What a list or watch asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ListQuery {
    pub selectors: Selectors,
    /// `resourceVersion`: for a watch, events after this one; `None` or `0` start with the
    /// current state.
    pub resource_version: Option<u64>,
    /// `timeoutSeconds`
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks`
    pub allow_bookmarks: bool,
    /// Accept asked for `as=Table`: answer (and stream) kubectl's server-side tables.
    pub table: bool,
}

/// `fieldValidation`: what unknown fields in a body do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Unknown fields are a 400 error.
    Strict,
    /// Unknown fields are dropped and reported in `Warning` headers.
    #[default]
    Warn,
    /// Unknown fields are dropped silently.
    Ignore,
}

/// The query parameters of a write (POST, PUT, PATCH).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// `dryRun=All`: admit and answer, store nothing.
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// `fieldManager`, recorded nowhere yet (there is no managedFields) but checked for length.
    pub field_manager: Option<String>,
    /// `force` (server-side apply).
    pub force: bool,
}

/// The query of `pods/{name}/log`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<u64>,
    pub since_seconds: Option<u64>,
    pub limit_bytes: Option<u64>,
}

/// What an images API call asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImagesRequest {
    List,
    /// `POST ?import=<dir>&name=<ref>`: a local root filesystem as an image.
    Import {
        dir: String,
        name: String,
    },
    Delete {
        reference: String,
    },
}

/// One API call, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiRequest {
    Health(Probe),
    Version,
    Discovery(DiscoveryDoc),
    List {
        path: ResourcePath,
        query: ListQuery,
    },
    Watch {
        path: ResourcePath,
        query: ListQuery,
    },
    /// One object (or its `status`/`scale` subresource); `table` as in `ListQuery`.
    Get {
        path: ResourcePath,
        table: bool,
    },
    Create {
        path: ResourcePath,
        body: serde_json::Value,
        options: WriteOptions,
    },
    /// PUT of an object or of its `status`/`scale` subresource.
    Replace {
        path: ResourcePath,
        body: serde_json::Value,
        options: WriteOptions,
    },
    /// PATCH of an object or of its `status`/`scale` subresource.
    Patch {
        path: ResourcePath,
        kind: PatchType,
        body: serde_json::Value,
        options: WriteOptions,
    },
    Delete {
        path: ResourcePath,
        options: DeleteOptions,
    },
    /// DELETE on a collection: every selected object.
    DeleteCollection {
        path: ResourcePath,
        query: ListQuery,
        options: DeleteOptions,
    },
    /// `pods/{name}/log`
    Log {
        path: ResourcePath,
        query: LogQuery,
    },
    Images(ImagesRequest),
    Metrics(MetricsPath),
    /// `/openapi/v3` (None) or one group-version document (`api/v1`, `apis/apps/v1`).
    OpenApi(Option<String>),
    /// `/openapi/v2` as JSON.
    OpenApiV2,
}

/// The parts of an HTTP request the API reads.
#[derive(Clone, Debug, Default)]
pub struct HttpParts<'a> {
    pub method: &'a str,
    /// Path and query, as on the request line.
    pub url: &'a str,
    pub content_type: Option<&'a str>,
    pub accept: Option<&'a str>,
    pub body: &'a [u8],
}

/// Whether the Accept header asks for a `meta.k8s.io` Table.
pub fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.split(',').any(|m| m.split(';').any(|p| p.trim() == "as=Table")))
}

/// Whether an Accept header admits JSON: absent, or a media range matching
/// `application/json` with a quality above zero.
pub fn accepts_json(accept: Option<&str>) -> bool {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return true };
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let zero = parts.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
        !zero && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
    })
}

/// A `POST /apis/images.coracle.io/v1/images` whose body is an image archive: the server
/// streams it into the image store instead of buffering it.
pub fn is_image_upload(method: &str, url: &str) -> bool {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    method == "POST"
        && matches!(routes::parse(path), Some(Route::Images { reference: None }))
        && !query_pairs(query).iter().any(|(k, _)| k == "import")
}

fn query_get<'q>(pairs: &'q [(String, String)], key: &str) -> Option<&'q str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn truthy(value: Option<&str>) -> bool {
    matches!(value, Some("1" | "true" | "True"))
}

/// Parses an HTTP request into an `ApiRequest`.
pub fn parse(http: &HttpParts<'_>) -> Result<ApiRequest, ApiError> {
    let (path, query) = http.url.split_once('?').unwrap_or((http.url, ""));
    let pairs = query_pairs(query);
    let not_allowed = || ApiError::MethodNotAllowed { method: http.method.to_string(), path: path.to_string() };
    let route = routes::parse(path).ok_or_else(|| ApiError::PathNotFound(path.to_string()))?;
    let path = match route {
        Route::Health(p) if http.method == "GET" || http.method == "HEAD" => return Ok(ApiRequest::Health(p)),
        Route::Version if http.method == "GET" => return Ok(ApiRequest::Version),
        Route::Discovery(d) if http.method == "GET" => return Ok(ApiRequest::Discovery(d)),
        Route::OpenApi(doc) if http.method == "GET" => return Ok(ApiRequest::OpenApi(doc)),
        Route::OpenApiV2 if http.method == "GET" => {
            // kubectl 1.27/1.28 ask for protobuf only; a 406 makes them fall back as a 404 does.
            return if accepts_json(http.accept) {
                Ok(ApiRequest::OpenApiV2)
            } else {
                Err(ApiError::Status {
                    code: 406,
                    reason: "NotAcceptable",
                    message: "only the following media types are accepted: application/json".into(),
                })
            };
        }
        Route::Metrics(m) if http.method == "GET" => return Ok(ApiRequest::Metrics(m)),
        Route::Images { reference } => return images_request(http.method, reference, &pairs).ok_or_else(not_allowed),
        Route::Resource(r) => r,
        _ => return Err(not_allowed()),
    };
    if let Some(sub) = &path.subresource {
        if !path.resource.subresources.contains(&sub.as_str()) {
            return Err(ApiError::PathNotFound(path_only(http.url).to_string()));
        }
        return match (http.method, sub.as_str()) {
            ("GET", "log") => {
                Ok(ApiRequest::Log { query: log_query(&pairs, path.name.as_deref().unwrap_or_default())?, path })
            }
            ("GET", _) => Ok(ApiRequest::Get { path, table: false }),
            ("PUT", "status" | "scale") => {
                Ok(ApiRequest::Replace { body: decode_body(http)?, options: write_options(&pairs)?, path })
            }
            ("PATCH", "status" | "scale") => patch_request(http, &pairs, path),
            _ => Err(not_allowed()),
        };
    }
    let is_object = path.name.is_some();
    let table = wants_table(http.accept);
    match http.method {
        "GET" if truthy(query_get(&pairs, "watch")) => {
            Ok(ApiRequest::Watch { query: list_query(&pairs, &path, table)?, path })
        }
        "GET" if is_object => Ok(ApiRequest::Get { path, table }),
        "GET" => Ok(ApiRequest::List { query: list_query(&pairs, &path, table)?, path }),
        "POST" if !is_object && (path.namespace.is_some() || !path.resource.namespaced) => {
            let body = decode_body(http)?;
            Ok(ApiRequest::Create { path, body, options: write_options(&pairs)? })
        }
        "PUT" if is_object => {
            let body = decode_body(http)?;
            Ok(ApiRequest::Replace { path, body, options: write_options(&pairs)? })
        }
        "PATCH" if is_object => patch_request(http, &pairs, path),
        "DELETE" if is_object => {
            let options = delete_options(&pairs, http)?;
            Ok(ApiRequest::Delete { path, options })
        }
        // As in Kubernetes, a namespaced resource's collection is deleted one namespace at
        // a time: its all-namespaces path only lists and watches.
        "DELETE" if path.namespace.is_some() || !path.resource.namespaced => {
            let options = delete_options(&pairs, http)?;
            Ok(ApiRequest::DeleteCollection { query: list_query(&pairs, &path, false)?, path, options })
        }
        _ => Err(not_allowed()),
    }
}

fn path_only(url: &str) -> &str {
    url.split('?').next().unwrap_or_default()
}

fn images_request(method: &str, reference: Option<String>, pairs: &[(String, String)]) -> Option<ApiRequest> {
    let request = match (method, reference) {
        ("GET", None) => ImagesRequest::List,
        ("POST", None) => ImagesRequest::Import {
            dir: query_get(pairs, "import")?.to_string(),
            name: query_get(pairs, "name").unwrap_or("").to_string(),
        },
        ("DELETE", Some(reference)) => ImagesRequest::Delete { reference },
        _ => return None,
    };
    Some(ApiRequest::Images(request))
}

fn patch_request(http: &HttpParts<'_>, pairs: &[(String, String)], path: ResourcePath) -> Result<ApiRequest, ApiError> {
    let media = media_type(http.content_type);
    let kind = PatchType::from_media_type(&media).ok_or_else(|| ApiError::Status {
        code: 415,
        reason: "UnsupportedMediaType",
        message: format!(
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
             application/strategic-merge-patch+json (got {media:?})"
        ),
    })?;
    let body: serde_json::Value = if kind == PatchType::Apply {
        serde_yaml_ng::from_slice(http.body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML apply body: {e}")))?
    } else {
        serde_json::from_slice(http.body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding the {media} patch body: {e}")))?
    };
    Ok(ApiRequest::Patch { path, kind, body, options: write_options(pairs)? })
}

/// One `dryRun` value: "All" or nothing.
fn dry_run(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => {
            Err(ApiError::BadRequest(format!("dryRun: Unsupported value: {other:?}: supported values: \"All\"")))
        }
    }
}

fn write_options(pairs: &[(String, String)]) -> Result<WriteOptions, ApiError> {
    let dry_run = dry_run(query_get(pairs, "dryRun"))?;
    let field_validation = match query_get(pairs, "fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )))
        }
    };
    let field_manager = query_get(pairs, "fieldManager").filter(|m| !m.is_empty()).map(str::to_string);
    if let Some(m) = field_manager.as_deref().filter(|m| m.len() > 128) {
        return Err(ApiError::BadRequest(format!(
            "fieldManager: Too long: may not be more than 128 bytes (got {})",
            m.len()
        )));
    }
    Ok(WriteOptions { dry_run, field_validation, field_manager, force: truthy(query_get(pairs, "force")) })
}

/// An `int64` query parameter: 400 when it is not one, as Kubernetes' query decoding answers.
fn int64(pairs: &[(String, String)], key: &str) -> Result<Option<i64>, ApiError> {
    match query_get(pairs, key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid {key} {v:?}: must be a 64-bit integer"))),
    }
}

/// The query of `pods/{name}/log`, checked as Kubernetes' `ValidatePodLogOptions` does:
/// 422 naming each field below its minimum.
fn log_query(pairs: &[(String, String)], name: &str) -> Result<LogQuery, ApiError> {
    let mut errors = Vec::new();
    let mut at_least = |key: &str, min: i64, detail: &str| -> Result<Option<u64>, ApiError> {
        let value = int64(pairs, key)?;
        match value {
            Some(v) if v < min => {
                errors.push(FieldError::invalid(&FieldPath::new(key), v.to_string(), detail));
                Ok(None)
            }
            _ => Ok(value.map(|v| v as u64)),
        }
    };
    let tail_lines = at_least("tailLines", 0, "must be greater than or equal to 0")?;
    let since_seconds = at_least("sinceSeconds", 1, "must be greater than 0")?;
    let limit_bytes = at_least("limitBytes", 1, "must be greater than 0")?;
    if !errors.is_empty() {
        return Err(ApiError::InvalidOptions { kind: "PodLogOptions", name: name.to_string(), errors });
    }
    Ok(LogQuery {
        container: query_get(pairs, "container").filter(|c| !c.is_empty()).map(str::to_string),
        follow: truthy(query_get(pairs, "follow")),
        previous: truthy(query_get(pairs, "previous")),
        timestamps: truthy(query_get(pairs, "timestamps")),
        tail_lines,
        since_seconds,
        limit_bytes,
    })
}

fn list_query(pairs: &[(String, String)], path: &ResourcePath, table: bool) -> Result<ListQuery, ApiError> {
    let labels = label_selector::Selector::parse(query_get(pairs, "labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let fields = FieldQuery::parse(query_get(pairs, "fieldSelector").unwrap_or(""), path.resource.kind)
        .map_err(ApiError::BadRequest)?;
    let resource_version = match query_get(pairs, "resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!("invalid resourceVersion {v:?}: must be a decimal resource version"))
        })?),
    };
    // Lists come whole: `limit` may be ignored (Kubernetes lets a server return every item),
    // but it must be a number, and a `continue` token can only be one this server never issued.
    int64(pairs, "limit")?;
    if let Some(token) = query_get(pairs, "continue").filter(|c| !c.is_empty()) {
        return Err(ApiError::BadRequest(format!(
            "invalid continue token {token:?}: this server returns whole lists and issues no continue tokens"
        )));
    }
    let timeout = match query_get(pairs, "timeoutSeconds").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(Duration::from_secs(
            v.parse::<u64>().map_err(|_| ApiError::BadRequest(format!("invalid timeoutSeconds {v:?}")))?,
        )),
    };
    Ok(ListQuery {
        selectors: Selectors { labels, fields },
        resource_version,
        timeout,
        allow_bookmarks: truthy(query_get(pairs, "allowWatchBookmarks")),
        table,
    })
}

/// The media type without parameters, lower-cased.
fn media_type(content_type: Option<&str>) -> String {
    content_type.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Decodes a JSON or YAML body into a JSON object.
pub fn decode_body(http: &HttpParts<'_>) -> Result<serde_json::Value, ApiError> {
    let media = media_type(http.content_type);
    let value: serde_json::Value = match media.as_str() {
        "" | "application/json" => serde_json::from_slice(http.body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding JSON request body: {e}")))?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml_ng::from_slice(http.body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML request body: {e}")))?,
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(http.body)?,
        _ => return Err(ApiError::UnsupportedMediaType(media)),
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest("the request body must be a JSON or YAML object".into()));
    }
    Ok(value)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DeleteBody {
    #[serde(default)]
    propagation_policy: Option<String>,
    #[serde(default)]
    grace_period_seconds: Option<i64>,
    #[serde(default)]
    orphan_dependents: Option<bool>,
    #[serde(default)]
    preconditions: Option<Preconditions>,
    #[serde(default)]
    dry_run: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    resource_version: Option<String>,
}

fn propagation(policy: &str) -> Result<Propagation, ApiError> {
    match policy {
        "Background" => Ok(Propagation::Background),
        "Foreground" => Ok(Propagation::Foreground),
        "Orphan" => Ok(Propagation::Orphan),
        other => Err(ApiError::BadRequest(format!(
            "propagationPolicy: Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
        ))),
    }
}

/// DeleteOptions from the body (if any) with query parameters taking precedence.
fn delete_options(pairs: &[(String, String)], http: &HttpParts<'_>) -> Result<DeleteOptions, ApiError> {
    let body: DeleteBody = if http.body.iter().all(u8::is_ascii_whitespace) {
        DeleteBody::default()
    } else {
        serde_json::from_value(decode_body(http)?)
            .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?
    };
    let mut options = DeleteOptions::default();
    let orphan = query_get(pairs, "orphanDependents").map(|v| truthy(Some(v))).or(body.orphan_dependents);
    if orphan == Some(true) {
        options.propagation = Propagation::Orphan;
    }
    for value in body.dry_run.iter().map(String::as_str).chain(query_get(pairs, "dryRun")) {
        options.dry_run |= dry_run(Some(value))?;
    }
    if let Some(p) = body.propagation_policy.as_deref() {
        options.propagation = propagation(p)?;
    }
    if let Some(p) = query_get(pairs, "propagationPolicy") {
        options.propagation = propagation(p)?;
    }
    options.grace_period_seconds = body.grace_period_seconds;
    if let Some(g) = query_get(pairs, "gracePeriodSeconds") {
        options.grace_period_seconds =
            Some(g.parse().map_err(|_| ApiError::BadRequest(format!("invalid gracePeriodSeconds {g:?}")))?);
    }
    if let Some(pre) = body.preconditions {
        options.precondition_uid = pre.uid.filter(|s| !s.is_empty());
        options.precondition_resource_version = pre.resource_version.filter(|s| !s.is_empty());
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> Result<ApiRequest, ApiError> {
        parse(&HttpParts { method: "GET", url, ..Default::default() })
    }

    #[test]
    fn percent_decoding_handles_escapes_and_plus() {
        assert_eq!(percent_decode("app%3Dweb%2Ctier+in+(a)"), "app=web,tier in (a)");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn lists_watches_and_gets() {
        let r = get("/api/v1/namespaces/default/pods?labelSelector=app%3Dweb&limit=500").unwrap();
        let ApiRequest::List { query, .. } = r else { panic!("{r:?}") };
        assert_eq!(query.selectors.labels.requirements.len(), 1);
        let r = get("/api/v1/pods?watch=true&resourceVersion=12&timeoutSeconds=5").unwrap();
        let ApiRequest::Watch { query, path } = r else { panic!("{r:?}") };
        assert_eq!(
            (query.resource_version, query.timeout, path.namespace),
            (Some(12), Some(Duration::from_secs(5)), None)
        );
        assert!(matches!(get("/api/v1/namespaces/default/pods/web").unwrap(), ApiRequest::Get { .. }));
    }

    #[test]
    fn bad_queries_are_400() {
        let err = get("/api/v1/pods?labelSelector=a+in+b").unwrap_err().status();
        assert_eq!((err.code, err.message.as_str()), (400, "unable to parse requirement: found 'b' expected: '('"));
        assert_eq!(get("/api/v1/pods?fieldSelector=spec.replicas%3D1").unwrap_err().code(), 400);
        assert_eq!(get("/api/v1/pods?watch=1&resourceVersion=abc").unwrap_err().code(), 400);
    }

    #[test]
    fn unsupported_verbs_and_subresources() {
        let patch = HttpParts {
            method: "PATCH",
            url: "/apis/apps/v1/namespaces/d/deployments/w",
            content_type: Some("application/json"),
            body: b"{}",
            ..Default::default()
        };
        assert_eq!(parse(&patch).unwrap_err().code(), 415);
        assert!(matches!(get("/apis/apps/v1/namespaces/d/deployments/w/scale").unwrap(), ApiRequest::Get { .. }));
        assert_eq!(get("/apis/apps/v1/namespaces/d/deployments/w/bogus").unwrap_err().code(), 404);
        let post_all = HttpParts { method: "POST", url: "/api/v1/pods", body: b"{}", ..Default::default() };
        assert_eq!(parse(&post_all).unwrap_err().code(), 405);
        let put_log = HttpParts { method: "PUT", url: "/api/v1/namespaces/d/pods/p/log", ..Default::default() };
        assert_eq!(parse(&put_log).unwrap_err().code(), 405);
        assert_eq!(get("/nowhere").unwrap_err().code(), 404);
    }

    #[test]
    fn patches_by_content_type_with_write_options() {
        let http = HttpParts {
            method: "PATCH",
            url: "/apis/apps/v1/namespaces/d/deployments/w?fieldManager=kubectl&fieldValidation=Strict&dryRun=All",
            content_type: Some("application/json-patch+json"),
            body: br#"[{"op":"remove","path":"/spec"}]"#,
            ..Default::default()
        };
        let ApiRequest::Patch { kind, body, options, .. } = parse(&http).unwrap() else { panic!() };
        assert_eq!(kind, PatchType::Json);
        assert!(body.is_array());
        assert_eq!(
            options,
            WriteOptions {
                dry_run: true,
                field_validation: FieldValidation::Strict,
                field_manager: Some("kubectl".into()),
                force: false
            }
        );
        let apply = HttpParts {
            content_type: Some("application/apply-patch+yaml"),
            body: b"kind: Deployment\nmetadata:\n  name: w\n",
            url: "/apis/apps/v1/namespaces/d/deployments/w?fieldValidation=Bogus",
            ..http.clone()
        };
        assert_eq!(parse(&apply).unwrap_err().code(), 400);
        let apply = HttpParts { url: "/apis/apps/v1/namespaces/d/deployments/w", ..apply };
        let ApiRequest::Patch { kind, body, .. } = parse(&apply).unwrap() else { panic!() };
        assert_eq!((kind, body["metadata"]["name"].as_str()), (PatchType::Apply, Some("w")));
        let scale = HttpParts {
            url: "/apis/apps/v1/namespaces/d/deployments/w/scale",
            content_type: Some("application/merge-patch+json"),
            body: br#"{"spec":{"replicas":5}}"#,
            ..http
        };
        let ApiRequest::Patch { path, .. } = parse(&scale).unwrap() else { panic!() };
        assert_eq!(path.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn logs_collections_tables_and_images() {
        let r = get("/api/v1/namespaces/d/pods/web/log?container=a&follow=true&tailLines=5&timestamps=1").unwrap();
        let ApiRequest::Log { query, .. } = r else { panic!("{r:?}") };
        assert_eq!((query.container.as_deref(), query.follow, query.tail_lines), (Some("a"), true, Some(5)));
        assert!(query.timestamps && !query.previous);
        assert_eq!(get("/api/v1/namespaces/d/pods/web/log?tailLines=x").unwrap_err().code(), 400);
        let del = HttpParts {
            method: "DELETE",
            url: "/api/v1/namespaces/d/pods?labelSelector=app%3Dweb",
            ..Default::default()
        };
        let ApiRequest::DeleteCollection { query, .. } = parse(&del).unwrap() else { panic!() };
        assert_eq!(query.selectors.labels.requirements.len(), 1);
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
        let table = HttpParts { method: "GET", url: "/api/v1/pods", accept: Some(accept), ..Default::default() };
        let ApiRequest::List { query, .. } = parse(&table).unwrap() else { panic!() };
        assert!(query.table);
        assert!(!wants_table(Some("application/json")));
        assert!(is_image_upload("POST", "/apis/images.coracle.io/v1/images"));
        assert!(!is_image_upload("POST", "/apis/images.coracle.io/v1/images?import=/x&name=a"));
        let r = get("/apis/images.coracle.io/v1/images").unwrap();
        assert_eq!(r, ApiRequest::Images(ImagesRequest::List));
        let del = HttpParts {
            method: "DELETE",
            url: "/apis/images.coracle.io/v1/images/docker.io%2Flibrary%2Fbusybox%3Alatest",
            ..Default::default()
        };
        let want = ImagesRequest::Delete { reference: "docker.io/library/busybox:latest".into() };
        assert_eq!(parse(&del).unwrap(), ApiRequest::Images(want));
    }

    #[test]
    fn log_options_are_bounded_as_kubernetes_validates_them() {
        // `sinceSeconds=18446744073709551615` once aborted the daemon computing `now - since`:
        // it is no int64, so a 400 as from Kubernetes' query decoding.
        let err = get("/api/v1/namespaces/d/pods/web/log?sinceSeconds=18446744073709551615").unwrap_err();
        assert_eq!(err.code(), 400);
        let r = get("/api/v1/namespaces/d/pods/web/log?sinceSeconds=9223372036854775807&limitBytes=1").unwrap();
        let ApiRequest::Log { query, .. } = r else { panic!("{r:?}") };
        assert_eq!((query.since_seconds, query.limit_bytes), (Some(i64::MAX as u64), Some(1)));
        let err = get("/api/v1/namespaces/d/pods/web/log?sinceSeconds=0&tailLines=-1&limitBytes=0").unwrap_err();
        let status = err.status();
        assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
        assert_eq!(
            status.message,
            "PodLogOptions \"web\" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, \
             sinceSeconds: Invalid value: 0: must be greater than 0, limitBytes: Invalid value: 0: must be greater than 0]"
        );
        let details = status.details.unwrap();
        assert_eq!((details.kind.as_str(), details.causes.len()), ("PodLogOptions", 3));
        assert_eq!(details.causes[1].field, "sinceSeconds");
    }

    #[test]
    fn delete_options_take_dry_run_and_orphan_from_query_or_body() {
        let delete = |url, body: &'static [u8]| {
            let http = HttpParts { method: "DELETE", url, body, ..Default::default() };
            match parse(&http) {
                Ok(ApiRequest::Delete { options, .. }) => Ok(options),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            }
        };
        let o = delete("/api/v1/namespaces/d/pods/p?dryRun=All", b"").unwrap();
        assert!(o.dry_run);
        let o = delete("/api/v1/namespaces/d/pods/p", br#"{"dryRun":["All"],"gracePeriodSeconds":5}"#).unwrap();
        assert!(o.dry_run && o.grace_period_seconds == Some(5));
        assert!(!delete("/api/v1/namespaces/d/pods/p", b"").unwrap().dry_run);
        assert_eq!(delete("/api/v1/namespaces/d/pods/p?dryRun=Some", b"").unwrap_err().code(), 400);
        assert_eq!(delete("/api/v1/namespaces/d/pods/p", br#"{"dryRun":["x"]}"#).unwrap_err().code(), 400);
        let o = delete("/api/v1/namespaces/d/pods/p?orphanDependents=true", b"").unwrap();
        assert_eq!(o.propagation, Propagation::Orphan);
        let o = delete("/api/v1/namespaces/d/pods/p?orphanDependents=false", br#"{"orphanDependents":true}"#).unwrap();
        assert_eq!(o.propagation, Propagation::Background);
    }

    #[test]
    fn openapi_v2_is_json_or_not_acceptable() {
        let v2 = |accept| parse(&HttpParts { method: "GET", url: "/openapi/v2", accept, ..Default::default() });
        assert_eq!(v2(None).unwrap(), ApiRequest::OpenApiV2);
        assert_eq!(v2(Some("application/json, */*")).unwrap(), ApiRequest::OpenApiV2);
        assert_eq!(v2(Some("*/*")).unwrap(), ApiRequest::OpenApiV2);
        // kubectl's only Accept for it.
        let pb = Some("application/com.github.proto-openapi.spec.v2@v1.0+protobuf");
        assert_eq!(v2(pb).unwrap_err().code(), 406);
        assert_eq!(v2(Some("application/json;q=0, text/plain")).unwrap_err().code(), 406);
    }

    #[test]
    fn collections_are_deleted_one_namespace_at_a_time() {
        let delete = |url| parse(&HttpParts { method: "DELETE", url, ..Default::default() });
        assert_eq!(delete("/api/v1/pods").unwrap_err().code(), 405);
        assert_eq!(delete("/apis/apps/v1/deployments?labelSelector=app%3Dweb").unwrap_err().code(), 405);
        assert!(matches!(delete("/api/v1/namespaces/d/pods").unwrap(), ApiRequest::DeleteCollection { .. }));
        assert!(matches!(delete("/api/v1/namespaces").unwrap(), ApiRequest::DeleteCollection { .. }));
    }

    #[test]
    fn lists_take_a_numeric_limit_and_no_foreign_continue_token() {
        let r = get("/api/v1/pods?limit=500").unwrap();
        assert!(matches!(r, ApiRequest::List { .. }), "{r:?}");
        assert_eq!(get("/api/v1/pods?limit=many").unwrap_err().code(), 400);
        assert_eq!(get("/api/v1/pods?limit=99999999999999999999").unwrap_err().code(), 400);
        assert_eq!(get("/api/v1/pods?limit=10&continue=abc").unwrap_err().code(), 400);
        assert!(get("/api/v1/pods?continue=").is_ok());
        // A watch timeout is any count of seconds; the watch cuts it to its own longest.
        let r = get("/api/v1/pods?watch=true&timeoutSeconds=18446744073709551615").unwrap();
        assert!(matches!(r, ApiRequest::Watch { .. }), "{r:?}");
    }

    #[test]
    fn bodies_in_json_or_yaml_and_nothing_else() {
        let mut http = HttpParts {
            method: "POST",
            url: "/api/v1/namespaces/d/pods",
            content_type: Some("application/yaml"),
            body: b"kind: Pod\nmetadata:\n  name: a\n",
            ..Default::default()
        };
        let ApiRequest::Create { body, .. } = parse(&http).unwrap() else { panic!() };
        assert_eq!(body["metadata"]["name"], "a");
        http.content_type = Some("application/json; charset=utf-8");
        assert_eq!(parse(&http).unwrap_err().code(), 400);
        http.content_type = Some("application/vnd.kubernetes.protobuf");
        assert_eq!(parse(&http).unwrap_err().code(), 400, "not a protobuf envelope");
        // Protobuf is read for ConfigMaps, Secrets and ServiceAccounts only: a Pod is 415.
        http.body = b"k8s\0\x0a\x09\x0a\x02v1\x12\x03Pod";
        assert_eq!(parse(&http).unwrap_err().code(), 415);
    }

    #[test]
    fn delete_options_from_body_and_query() {
        let http = HttpParts {
            method: "DELETE",
            url: "/apis/apps/v1/namespaces/d/deployments/w?gracePeriodSeconds=0",
            content_type: Some("application/json"),
            body: br#"{"propagationPolicy":"Foreground","preconditions":{"resourceVersion":"7"}}"#,
            ..Default::default()
        };
        let ApiRequest::Delete { options, .. } = parse(&http).unwrap() else { panic!() };
        assert_eq!(options.propagation, Propagation::Foreground);
        assert_eq!(options.grace_period_seconds, Some(0));
        assert_eq!(options.precondition_resource_version.as_deref(), Some("7"));
        let bad = HttpParts { url: "/api/v1/namespaces/d/pods/p?propagationPolicy=Sideways", ..http };
        assert_eq!(parse(&bad).unwrap_err().code(), 400);
    }
}
