//! URL paths → what they name: a health probe, a discovery document, or a resource
//! collection, object or subresource in the Kubernetes REST layout.

use coracle_config::object::{ResourceInfo, ALL};

/// The health endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    Healthz,
    Readyz,
    Livez,
}

/// The discovery documents kubectl reads before any verb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryDoc {
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/api/v1`, `/apis/apps/v1`, …: the resources of one group-version.
    Resources { group: String, version: String },
}

/// A resource path: `{prefix}/[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    pub resource: &'static ResourceInfo,
    /// The version the client addressed; autoscalers are served as v1 and v2.
    pub version: String,
    /// None: across all namespaces (or a cluster-scoped resource).
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// A `metrics.k8s.io/v1beta1` path: pod metrics (all, a namespace's, or one) or node metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsPath {
    /// `nodes` rather than `pods`.
    pub nodes: bool,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Health(Probe),
    Version,
    Discovery(DiscoveryDoc),
    Resource(ResourcePath),
    /// `/apis/images.coracle.io/v1/images[/<url-escaped reference>]`
    Images {
        reference: Option<String>,
    },
    Metrics(MetricsPath),
    /// `/openapi/v3` (None) or `/openapi/v3/<group-version path>`.
    OpenApi(Option<String>),
    /// `/openapi/v2`: the Swagger 2.0 document.
    OpenApiV2,
}

/// Coracle's own group for the image store (`coracle image …`).
pub const IMAGES_GROUP: &str = "images.coracle.io";
/// The resource metrics group (`kubectl top`).
pub const METRICS_GROUP: &str = "metrics.k8s.io";

/// The versions each group serves, preferred first.
pub fn group_versions(group: &str) -> &'static [&'static str] {
    match group {
        "" | "apps" => &["v1"],
        "autoscaling" => &["v2", "v1"],
        METRICS_GROUP => &["v1beta1"],
        _ => &[],
    }
}

/// Every API group besides the core one, in discovery order.
pub const GROUPS: &[&str] = &["apps", "autoscaling", METRICS_GROUP];

/// Parses a path (without the query string); None when nothing is served there.
pub fn parse(path: &str) -> Option<Route> {
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "/healthz" => return Some(Route::Health(Probe::Healthz)),
        "/readyz" => return Some(Route::Health(Probe::Readyz)),
        "/livez" => return Some(Route::Health(Probe::Livez)),
        "/version" => return Some(Route::Version),
        "/api" => return Some(Route::Discovery(DiscoveryDoc::CoreVersions)),
        "/apis" => return Some(Route::Discovery(DiscoveryDoc::Groups)),
        "/openapi/v3" => return Some(Route::OpenApi(None)),
        "/openapi/v2" => return Some(Route::OpenApiV2),
        _ => {}
    }
    if let Some(doc) = trimmed.strip_prefix("/openapi/v3/") {
        return Some(Route::OpenApi(Some(doc.to_string())));
    }
    let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
    match segments.as_slice() {
        ["apis", IMAGES_GROUP, "v1", "images"] => return Some(Route::Images { reference: None }),
        // A reference is one escaped segment; an unescaped one (`localhost/app:1`) still works.
        ["apis", IMAGES_GROUP, "v1", "images", rest @ ..] => {
            let reference = rest.iter().map(|s| super::query::percent_decode(s)).collect::<Vec<_>>().join("/");
            return Some(Route::Images { reference: Some(reference) });
        }
        ["apis", METRICS_GROUP, "v1beta1", rest @ ..] if !rest.is_empty() => return metrics_path(rest),
        _ => {}
    }
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    if !group_versions(group).contains(&version) {
        return None;
    }
    if rest.is_empty() {
        return Some(Route::Discovery(DiscoveryDoc::Resources { group: group.into(), version: version.into() }));
    }
    resource_path(group, version, rest).map(Route::Resource)
}

fn metrics_path(rest: &[&str]) -> Option<Route> {
    let owned = |s: &&str| Some(s.to_string());
    let path = match rest {
        ["pods"] => MetricsPath { nodes: false, namespace: None, name: None },
        ["namespaces", ns, "pods"] => MetricsPath { nodes: false, namespace: owned(ns), name: None },
        ["namespaces", ns, "pods", name] => MetricsPath { nodes: false, namespace: owned(ns), name: owned(name) },
        ["nodes"] => MetricsPath { nodes: true, namespace: None, name: None },
        ["nodes", name] => MetricsPath { nodes: true, namespace: None, name: owned(name) },
        _ => return None,
    };
    Some(Route::Metrics(path))
}

fn find(group: &str, plural: &str) -> Option<&'static ResourceInfo> {
    ALL.iter().copied().find(|i| i.group == group && i.plural == plural)
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Option<ResourcePath> {
    let make = |resource, namespace: Option<&str>, name: Option<&&str>, sub: Option<&&str>| ResourcePath {
        resource,
        version: version.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.map(|s| s.to_string()),
        subresource: sub.map(|s| s.to_string()),
    };
    // `namespaces/{ns}/{plural}/…` names namespaced objects; `namespaces/{name}[/status]`
    // names a Namespace itself.
    if let ["namespaces", ns, plural, tail @ ..] = rest {
        if let Some(info) = find(group, plural).filter(|i| i.namespaced) {
            if ns.is_empty() || tail.len() > 2 || tail.iter().any(|s| s.is_empty()) {
                return None;
            }
            return Some(make(info, Some(ns), tail.first(), tail.get(1)));
        }
    }
    let [plural, tail @ ..] = rest else { return None };
    let info = find(group, plural)?;
    if tail.len() > 2 || tail.iter().any(|s| s.is_empty()) {
        return None;
    }
    // A namespaced resource named without a namespace is only a cluster-wide collection.
    if info.namespaced && !tail.is_empty() {
        return None;
    }
    Some(make(info, None, tail.first(), tail.get(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse(path) {
            Some(Route::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_collections_objects_and_subresources() {
        let r = resource("/apis/apps/v1/namespaces/default/deployments");
        assert_eq!((r.resource.kind, r.namespace.as_deref(), r.name.as_deref()), ("Deployment", Some("default"), None));
        let r = resource("/api/v1/namespaces/ns1/pods/web");
        assert_eq!((r.resource.kind, r.name.as_deref(), r.subresource.as_deref()), ("Pod", Some("web"), None));
        let r = resource("/apis/apps/v1/namespaces/default/deployments/web/scale");
        assert_eq!(r.subresource.as_deref(), Some("scale"));
    }

    #[test]
    fn cluster_wide_lists_and_namespaces() {
        let r = resource("/api/v1/pods");
        assert_eq!((r.resource.kind, r.namespace), ("Pod", None));
        let r = resource("/api/v1/namespaces");
        assert_eq!((r.resource.kind, r.name), ("Namespace", None));
        let r = resource("/api/v1/namespaces/kube-system");
        assert_eq!((r.resource.kind, r.name.as_deref()), ("Namespace", Some("kube-system")));
        let r = resource("/api/v1/namespaces/kube-system/status");
        assert_eq!((r.resource.kind, r.subresource.as_deref()), ("Namespace", Some("status")));
    }

    #[test]
    fn autoscalers_are_served_in_both_versions() {
        assert_eq!(resource("/apis/autoscaling/v1/namespaces/d/horizontalpodautoscalers").version, "v1");
        assert_eq!(resource("/apis/autoscaling/v2/horizontalpodautoscalers").version, "v2");
        assert!(parse("/apis/autoscaling/v3/horizontalpodautoscalers").is_none());
    }

    #[test]
    fn discovery_and_health() {
        assert_eq!(parse("/api"), Some(Route::Discovery(DiscoveryDoc::CoreVersions)));
        assert_eq!(parse("/apis/"), Some(Route::Discovery(DiscoveryDoc::Groups)));
        assert_eq!(
            parse("/apis/apps/v1"),
            Some(Route::Discovery(DiscoveryDoc::Resources { group: "apps".into(), version: "v1".into() }))
        );
        assert_eq!(parse("/healthz"), Some(Route::Health(Probe::Healthz)));
        assert_eq!(parse("/version"), Some(Route::Version));
    }

    #[test]
    fn images_metrics_and_openapi() {
        assert_eq!(parse("/apis/images.coracle.io/v1/images"), Some(Route::Images { reference: None }));
        assert_eq!(
            parse("/apis/images.coracle.io/v1/images/localhost/app%3A1"),
            Some(Route::Images { reference: Some("localhost/app:1".into()) })
        );
        let Some(Route::Metrics(m)) = parse("/apis/metrics.k8s.io/v1beta1/namespaces/d/pods/web") else { panic!() };
        assert_eq!((m.nodes, m.namespace.as_deref(), m.name.as_deref()), (false, Some("d"), Some("web")));
        assert!(matches!(
            parse("/apis/metrics.k8s.io/v1beta1/nodes"),
            Some(Route::Metrics(MetricsPath { nodes: true, .. }))
        ));
        assert!(matches!(parse("/apis/metrics.k8s.io/v1beta1"), Some(Route::Discovery(_))));
        assert_eq!(parse("/openapi/v3"), Some(Route::OpenApi(None)));
        assert_eq!(parse("/openapi/v3/apis/apps/v1"), Some(Route::OpenApi(Some("apis/apps/v1".into()))));
        assert_eq!(parse("/openapi/v2"), Some(Route::OpenApiV2));
    }

    #[test]
    fn unknown_paths_are_none() {
        for path in ["/", "/api/v2/pods", "/apis/batch/v1/jobs", "/api/v1/widgets", "/api/v1/pods/web", "/x"] {
            assert!(parse(path).is_none(), "{path}");
        }
        assert!(parse("/apis/apps/v1/deployments").is_some());
        assert!(parse("/api/v1/namespaces/d/pods/a/b/c").is_none());
    }
}
