//! HTTP → a typed `ApiRequest`: method, route, query parameters and body, checked here so
//! the handlers only ever see well-formed requests.

use super::errors::ApiError;
use super::routes::{self, DiscoveryDoc, Probe, ResourcePath, Route};
use super::selectors::{FieldQuery, LabelQuery, Selectors};
use crate::store::{DeleteOptions, Propagation};
use serde::Deserialize;
use std::time::Duration;

/// The largest request body read (1 MiB), as the API server's default limit for objects.
pub const MAX_BODY: usize = 1 << 20;

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
}

/// One API call, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiRequest {
    Health(Probe),
    Version,
    Discovery(DiscoveryDoc),
    List { path: ResourcePath, query: ListQuery },
    Watch { path: ResourcePath, query: ListQuery },
    Get { path: ResourcePath },
    Create { path: ResourcePath, body: serde_json::Value },
    Replace { path: ResourcePath, body: serde_json::Value },
    Delete { path: ResourcePath, options: DeleteOptions },
}

/// The parts of an HTTP request the API reads.
#[derive(Clone, Debug, Default)]
pub struct HttpParts<'a> {
    pub method: &'a str,
    /// Path and query, as on the request line.
    pub url: &'a str,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Decodes `%XX` escapes and `+` in a query component.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query string as decoded `(key, value)` pairs, in order.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
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
        Route::Resource(r) => r,
        _ => return Err(not_allowed()),
    };
    if let Some(sub) = &path.subresource {
        // Subresources (status, scale, log) are routed but not served yet.
        return Err(if path.resource.subresources.contains(&sub.as_str()) {
            not_allowed()
        } else {
            ApiError::PathNotFound(http.url.split('?').next().unwrap_or_default().to_string())
        });
    }
    let is_object = path.name.is_some();
    match http.method {
        "GET" if truthy(query_get(&pairs, "watch")) => {
            Ok(ApiRequest::Watch { query: list_query(&pairs, &path)?, path })
        }
        "GET" if is_object => Ok(ApiRequest::Get { path }),
        "GET" => Ok(ApiRequest::List { query: list_query(&pairs, &path)?, path }),
        "POST" if !is_object && (path.namespace.is_some() || !path.resource.namespaced) => {
            let body = decode_body(http)?;
            Ok(ApiRequest::Create { path, body })
        }
        "PUT" if is_object => {
            let body = decode_body(http)?;
            Ok(ApiRequest::Replace { path, body })
        }
        "DELETE" if is_object => {
            let options = delete_options(&pairs, http)?;
            Ok(ApiRequest::Delete { path, options })
        }
        _ => Err(not_allowed()),
    }
}

fn list_query(pairs: &[(String, String)], path: &ResourcePath) -> Result<ListQuery, ApiError> {
    let labels = LabelQuery::parse(query_get(pairs, "labelSelector").unwrap_or("")).map_err(ApiError::BadRequest)?;
    let fields = FieldQuery::parse(query_get(pairs, "fieldSelector").unwrap_or(""), path.resource.kind)
        .map_err(ApiError::BadRequest)?;
    let resource_version = match query_get(pairs, "resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!("invalid resourceVersion {v:?}: must be a decimal resource version"))
        })?),
    };
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
    if body.orphan_dependents == Some(true) {
        options.propagation = Propagation::Orphan;
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
        assert_eq!(query.selectors.labels.0.len(), 1);
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
        assert_eq!(get("/api/v1/pods?labelSelector=a+in+b").unwrap_err().code(), 400);
        assert_eq!(get("/api/v1/pods?fieldSelector=spec.replicas%3D1").unwrap_err().code(), 400);
        assert_eq!(get("/api/v1/pods?watch=1&resourceVersion=abc").unwrap_err().code(), 400);
    }

    #[test]
    fn unsupported_verbs_and_subresources() {
        let patch =
            HttpParts { method: "PATCH", url: "/apis/apps/v1/namespaces/d/deployments/w", ..Default::default() };
        assert_eq!(parse(&patch).unwrap_err().code(), 405);
        assert_eq!(get("/apis/apps/v1/namespaces/d/deployments/w/scale").unwrap_err().code(), 405);
        assert_eq!(get("/apis/apps/v1/namespaces/d/deployments/w/bogus").unwrap_err().code(), 404);
        let post_all = HttpParts { method: "POST", url: "/api/v1/pods", body: b"{}", ..Default::default() };
        assert_eq!(parse(&post_all).unwrap_err().code(), 405);
        assert_eq!(get("/nowhere").unwrap_err().code(), 404);
    }

    #[test]
    fn bodies_in_json_or_yaml_and_nothing_else() {
        let mut http = HttpParts {
            method: "POST",
            url: "/api/v1/namespaces/d/pods",
            content_type: Some("application/yaml"),
            body: b"kind: Pod\nmetadata:\n  name: a\n",
        };
        let ApiRequest::Create { body, .. } = parse(&http).unwrap() else { panic!() };
        assert_eq!(body["metadata"]["name"], "a");
        http.content_type = Some("application/json; charset=utf-8");
        assert_eq!(parse(&http).unwrap_err().code(), 400);
        http.content_type = Some("application/vnd.kubernetes.protobuf");
        assert_eq!(parse(&http).unwrap_err().code(), 415);
    }

    #[test]
    fn delete_options_from_body_and_query() {
        let http = HttpParts {
            method: "DELETE",
            url: "/apis/apps/v1/namespaces/d/deployments/w?gracePeriodSeconds=0",
            content_type: Some("application/json"),
            body: br#"{"propagationPolicy":"Foreground","preconditions":{"resourceVersion":"7"}}"#,
        };
        let ApiRequest::Delete { options, .. } = parse(&http).unwrap() else { panic!() };
        assert_eq!(options.propagation, Propagation::Foreground);
        assert_eq!(options.grace_period_seconds, Some(0));
        assert_eq!(options.precondition_resource_version.as_deref(), Some("7"));
        let bad = HttpParts { url: "/api/v1/namespaces/d/pods/p?propagationPolicy=Sideways", ..http };
        assert_eq!(parse(&bad).unwrap_err().code(), 400);
    }
}
