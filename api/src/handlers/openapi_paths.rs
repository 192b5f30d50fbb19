//! What the API serves, as data for its OpenAPI documents: per group-version, every path
//! with its operations, their parameters, request bodies and responses, in Kubernetes'
//! shapes (operation ids, `x-kubernetes-action`, `x-kubernetes-group-version-kind`).
//! `openapi.rs` renders it as OpenAPI 3.0 documents, `openapi_v2.rs` as Swagger 2.0; the
//! schemas they name are in `openapi_schemas.rs`.

use super::openapi_schemas::{kind_definition, list_definition, META, METRICS, SCALE};
use crate::routes::{group_versions, GROUPS, METRICS_GROUP};
use coracle_config::object::{ResourceInfo, ALL};

/// One group-version with a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupVersion {
    pub group: &'static str,
    pub version: &'static str,
}

impl GroupVersion {
    /// `api/v1`, `apis/apps/v1`: the document's name under `/openapi/v3/`.
    pub fn doc_path(&self) -> String {
        self.prefix().trim_start_matches('/').to_string()
    }

    /// `/api/v1`, `/apis/apps/v1`.
    pub fn prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// `CoreV1`, `AppsV1`, `MetricsV1beta1`: the middle of Kubernetes' operation ids.
    fn id_part(&self) -> String {
        let group = match self.group {
            "" => "core",
            g => g.split('.').next().unwrap_or(g),
        };
        format!("{}{}", capitalize(group), capitalize(self.version))
    }

    /// `core_v1`, `apps_v1`: the operations' tag.
    fn tag(&self) -> String {
        let group = if self.group.is_empty() { "core" } else { self.group };
        format!("{}_{}", group.replace('.', "_"), self.version)
    }
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// Every group-version served, core first.
pub fn all() -> Vec<GroupVersion> {
    let mut out = vec![GroupVersion { group: "", version: "v1" }];
    for group in GROUPS {
        for version in group_versions(group) {
            out.push(GroupVersion { group, version });
        }
    }
    out
}

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

/// A parameter's JSON type, and the values the server takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    Integer,
    /// An integer of at least this.
    IntegerFrom(i64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
}

const DRY_RUN: Type = Type::OneOf(&["All"]);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    pub ty: Type,
    pub description: &'static str,
}

const fn query(name: &'static str, ty: Type, description: &'static str) -> Param {
    Param { name, location: In::Query, ty, description }
}

const NAME: Param = Param { name: "name", location: In::Path, ty: Type::String, description: "name of the object" };
const NAMESPACE: Param = Param {
    name: "namespace",
    location: In::Path,
    ty: Type::String,
    description: "object name and auth scope, such as for teams and projects",
};

/// The query parameters of a list or watch.
const LIST: &[Param] = &[
    query("allowWatchBookmarks", Type::Boolean, "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
    query(
        "continue",
        Type::String,
        "This server returns whole lists and never issues continue tokens: a non-empty value is refused.",
    ),
    query("fieldSelector", Type::String, "A selector to restrict the list of returned objects by their fields."),
    query("labelSelector", Type::String, "A selector to restrict the list of returned objects by their labels."),
    query("limit", Type::Integer, "The most items to return; this server returns every item (a 64-bit integer)."),
    query(
        "resourceVersion",
        Type::String,
        "For a watch, the version to stream changes after (a decimal resource version); 0 or absent starts with \
         the current state.",
    ),
    query(
        "timeoutSeconds",
        Type::IntegerFrom(0),
        "Timeout for the list/watch call; a watch lasts at most an hour, 30 minutes without it.",
    ),
    query("watch", Type::Boolean, "Watch for changes to the described resources and return them as a stream."),
];

/// The query parameters of a create, replace or patch.
const WRITE: &[Param] = &[
    query("dryRun", DRY_RUN, "\"All\": admit and answer, store nothing."),
    query("fieldManager", Type::String, "A name for the actor making the change, at most 128 bytes."),
    query(
        "fieldValidation",
        Type::OneOf(&["Ignore", "Warn", "Strict"]),
        "What unknown fields do: \"Strict\" makes them a 400 (and a field of Kubernetes' API that Coracle does not \
         support a 422), \"Warn\" (the default) a Warning header, \"Ignore\" nothing (an unsupported field still warns).",
    ),
];

const FORCE: Param = query("force", Type::Boolean, "Force an apply request (server-side apply).");

/// The query parameters of a delete (the body's `DeleteOptions` may carry the same).
const DELETE: &[Param] = &[
    query("dryRun", DRY_RUN, "\"All\": answer what the delete would do, change nothing."),
    query(
        "gracePeriodSeconds",
        Type::Integer,
        "Seconds before a pod is killed; 0 deletes at once, a negative value is 1 second, more than 2147483647 \
         is 2147483647.",
    ),
    query("orphanDependents", Type::Boolean, "Deprecated: true orphans the dependents, as propagationPolicy=Orphan."),
    query(
        "propagationPolicy",
        Type::OneOf(&["Orphan", "Background", "Foreground"]),
        "What becomes of the dependents; \"Background\" by default.",
    ),
];

/// The query parameters of `pods/{name}/log`.
const LOG: &[Param] = &[
    query("container", Type::String, "The container for which to stream logs; optional with one container."),
    query("follow", Type::Boolean, "Follow the log stream of the pod."),
    query("limitBytes", Type::IntegerFrom(1), "The number of bytes to read before ending the log."),
    query("previous", Type::Boolean, "Return the logs of the previous instance of the container."),
    query("sinceSeconds", Type::IntegerFrom(1), "Only logs newer than this many seconds."),
    query("tailLines", Type::IntegerFrom(0), "The number of lines from the end of the log to show."),
    query("timestamps", Type::Boolean, "Prefix every line of log output with its RFC3339 timestamp."),
];

/// A request body: the definition it is and the media types it may come in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub definition: String,
    pub media_types: &'static [&'static str],
    pub required: bool,
}

/// Objects come as JSON or YAML.
const OBJECT_MEDIA: &[&str] = &["application/json", "application/yaml"];
/// Patches: every type the server applies but `application/strategic-merge-patch+json`,
/// which it applies too but does not list: kubectl computes a strategic merge patch from
/// the document's schemas when it is listed, and these schemas carry no merge keys, so
/// kubectl keeps computing its patches from its own built-in types.
const PATCH_MEDIA: &[&str] =
    &["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];

/// What a response carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A JSON document of this definition.
    Json(String),
    /// Plain text (logs).
    Text,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// `get`, `put`, `post`, `patch` or `delete`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub tag: String,
    /// `x-kubernetes-action`
    pub action: &'static str,
    /// `x-kubernetes-group-version-kind`
    pub gvk: (&'static str, &'static str, &'static str),
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<(u16, Payload)>,
}

/// A path and what it serves; `params` are its path parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

/// The definition name of a kind in a group-version: `io.k8s.api.apps.v1.Deployment`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    match group {
        "" => format!("io.k8s.api.core.{version}.{kind}"),
        METRICS_GROUP => format!("io.k8s.metrics.pkg.apis.metrics.{version}.{kind}"),
        g => format!("io.k8s.api.{g}.{version}.{kind}"),
    }
}

/// Builds one resource's operations in a group-version.
struct Resource<'a> {
    gv: GroupVersion,
    info: &'a ResourceInfo,
}

impl Resource<'_> {
    /// An operation as Kubernetes names it: `listCoreV1NamespacedPod`,
    /// `deleteCoreV1CollectionNamespacedPod`, `listCoreV1PodForAllNamespaces`.
    fn op(&self, method: &'static str, action: &'static str, verb: &str, suffix: &str) -> Operation {
        let scope = if self.info.namespaced && action != "list-all" { "Namespaced" } else { "" };
        let kind = self.info.kind;
        let for_all = if action == "list-all" { "ForAllNamespaces" } else { "" };
        let collection = if action == "deletecollection" { "Collection" } else { "" };
        Operation {
            method,
            id: format!("{verb}{}{collection}{scope}{kind}{suffix}{for_all}", self.gv.id_part()),
            description: String::new(),
            tag: self.gv.tag(),
            action: if action == "list-all" { "list" } else { action },
            gvk: (self.gv.group, self.gv.version, kind),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
        }
    }

    fn kind_def(&self) -> String {
        definition_name(self.gv.group, self.gv.version, self.info.kind)
    }

    fn list_def(&self) -> String {
        definition_name(self.gv.group, self.gv.version, self.info.list_kind)
    }

    fn object_body(&self) -> Option<Body> {
        Some(Body { definition: self.kind_def(), media_types: OBJECT_MEDIA, required: true })
    }

    fn patch_body() -> Option<Body> {
        Some(Body { definition: format!("{META}.Patch"), media_types: PATCH_MEDIA, required: true })
    }

    fn collection(&self, base: &str, scope: Vec<Param>) -> PathItem {
        let kind = self.info.kind;
        let mut list = self.op("get", "list", "list", "");
        list.description = format!("list or watch objects of kind {kind}");
        list.params = LIST.to_vec();
        list.responses = vec![(200, Payload::Json(self.list_def()))];
        let mut create = self.op("post", "post", "create", "");
        create.description = format!("create a {kind}");
        create.params = WRITE.to_vec();
        create.body = self.object_body();
        create.responses = vec![(201, Payload::Json(self.kind_def()))];
        let mut delete = self.op("delete", "deletecollection", "delete", "");
        delete.description = format!("delete collection of {kind}");
        delete.params = LIST.iter().filter(|p| p.name != "watch" && p.name != "allowWatchBookmarks").cloned().collect();
        delete.params.extend(DELETE.iter().cloned());
        delete.body =
            Some(Body { definition: format!("{META}.DeleteOptions"), media_types: OBJECT_MEDIA, required: false });
        delete.responses = vec![(200, Payload::Json(self.list_def()))];
        PathItem { path: format!("{base}/{}", self.info.plural), params: scope, operations: vec![list, create, delete] }
    }

    fn object(&self, base: &str, mut scope: Vec<Param>) -> PathItem {
        let kind = self.info.kind;
        scope.insert(0, NAME);
        let mut read = self.op("get", "get", "read", "");
        read.description = format!("read the specified {kind}");
        read.responses = vec![(200, Payload::Json(self.kind_def()))];
        let mut replace = self.op("put", "put", "replace", "");
        replace.description = format!("replace the specified {kind}");
        replace.params = WRITE.to_vec();
        replace.body = self.object_body();
        replace.responses = vec![(200, Payload::Json(self.kind_def()))];
        let mut patch = self.op("patch", "patch", "patch", "");
        patch.description = format!("partially update the specified {kind}");
        patch.params = WRITE.iter().cloned().chain([FORCE]).collect();
        patch.body = Self::patch_body();
        patch.responses = vec![(200, Payload::Json(self.kind_def())), (201, Payload::Json(self.kind_def()))];
        let mut delete = self.op("delete", "delete", "delete", "");
        delete.description = format!("delete a {kind}");
        delete.params = DELETE.to_vec();
        delete.body =
            Some(Body { definition: format!("{META}.DeleteOptions"), media_types: OBJECT_MEDIA, required: false });
        delete.responses = vec![(200, Payload::Json(self.kind_def()))];
        PathItem {
            path: format!("{base}/{}/{{name}}", self.info.plural),
            params: scope,
            operations: vec![read, replace, patch, delete],
        }
    }

    fn subresource(&self, base: &str, mut scope: Vec<Param>, sub: &str) -> PathItem {
        let kind = self.info.kind;
        scope.insert(0, NAME);
        let path = format!("{base}/{}/{{name}}/{sub}", self.info.plural);
        let suffix = capitalize(sub);
        if sub == "log" {
            let mut read = self.op("get", "get", "read", "Log");
            read.description = format!("read log of the specified {kind}");
            read.params = LOG.to_vec();
            read.responses = vec![(200, Payload::Text)];
            return PathItem { path, params: scope, operations: vec![read] };
        }
        let (what, def, gvk) = if sub == "scale" {
            ("scale", SCALE.to_string(), ("autoscaling", "v1", "Scale"))
        } else {
            ("status", self.kind_def(), (self.gv.group, self.gv.version, kind))
        };
        let mut read = self.op("get", "get", "read", &suffix);
        read.description = format!("read {what} of the specified {kind}");
        read.responses = vec![(200, Payload::Json(def.clone()))];
        let mut replace = self.op("put", "put", "replace", &suffix);
        replace.description = format!("replace {what} of the specified {kind}");
        replace.params = WRITE.to_vec();
        replace.body = Some(Body { definition: def.clone(), media_types: OBJECT_MEDIA, required: true });
        replace.responses = vec![(200, Payload::Json(def.clone()))];
        let mut patch = self.op("patch", "patch", "patch", &suffix);
        patch.description = format!("partially update {what} of the specified {kind}");
        patch.params = WRITE.iter().cloned().chain([FORCE]).collect();
        patch.body = Self::patch_body();
        patch.responses = vec![(200, Payload::Json(def))];
        let mut operations = vec![read, replace, patch];
        for op in &mut operations {
            op.gvk = gvk;
        }
        PathItem { path, params: scope, operations }
    }

    fn paths(&self) -> Vec<PathItem> {
        let prefix = self.gv.prefix();
        let (base, scope) = if self.info.namespaced {
            (format!("{prefix}/namespaces/{{namespace}}"), vec![NAMESPACE])
        } else {
            (prefix.clone(), Vec::new())
        };
        let mut out = vec![self.collection(&base, scope.clone()), self.object(&base, scope.clone())];
        for sub in self.info.subresources {
            out.push(self.subresource(&base, scope.clone(), sub));
        }
        if self.info.namespaced {
            let mut list = self.op("get", "list-all", "list", "");
            list.description = format!("list or watch objects of kind {} in every namespace", self.info.kind);
            list.params = LIST.to_vec();
            list.responses = vec![(200, Payload::Json(self.list_def()))];
            out.push(PathItem {
                path: format!("{prefix}/{}", self.info.plural),
                params: Vec::new(),
                operations: vec![list],
            });
        }
        out
    }
}

/// `metrics.k8s.io/v1beta1`: read-only pod and node metrics.
fn metrics_paths(gv: GroupVersion) -> Vec<PathItem> {
    let prefix = gv.prefix();
    let read = |id: &str, kind: &'static str, def: &str, description: &str| Operation {
        method: "get",
        id: id.to_string(),
        description: description.to_string(),
        tag: gv.tag(),
        action: if id.starts_with("list") { "list" } else { "get" },
        gvk: (METRICS_GROUP, gv.version, kind),
        params: Vec::new(),
        body: None,
        responses: vec![(200, Payload::Json(format!("{METRICS}.{def}")))],
    };
    let item = |path: String, params: Vec<Param>, op: Operation| PathItem { path, params, operations: vec![op] };
    vec![
        item(
            format!("{prefix}/pods"),
            Vec::new(),
            read("listMetricsV1beta1PodMetricsForAllNamespaces", "PodMetrics", "PodMetricsList", "list PodMetrics"),
        ),
        item(
            format!("{prefix}/namespaces/{{namespace}}/pods"),
            vec![NAMESPACE],
            read("listMetricsV1beta1NamespacedPodMetrics", "PodMetrics", "PodMetricsList", "list PodMetrics"),
        ),
        item(
            format!("{prefix}/namespaces/{{namespace}}/pods/{{name}}"),
            vec![NAME, NAMESPACE],
            read("readMetricsV1beta1NamespacedPodMetrics", "PodMetrics", "PodMetrics", "read the specified PodMetrics"),
        ),
        item(
            format!("{prefix}/nodes"),
            Vec::new(),
            read("listMetricsV1beta1NodeMetrics", "NodeMetrics", "NodeMetricsList", "list NodeMetrics"),
        ),
        item(
            format!("{prefix}/nodes/{{name}}"),
            vec![NAME],
            read("readMetricsV1beta1NodeMetrics", "NodeMetrics", "NodeMetrics", "read the specified NodeMetrics"),
        ),
    ]
}

/// Every path of one group-version.
pub fn paths(gv: GroupVersion) -> Vec<PathItem> {
    if gv.group == METRICS_GROUP {
        return metrics_paths(gv);
    }
    ALL.iter().filter(|i| i.group == gv.group).flat_map(|info| Resource { gv, info }.paths()).collect()
}

/// The kinds (and their lists) a group-version's paths name: `(definition name, schema)`.
pub fn kind_definitions(gv: GroupVersion) -> Vec<(String, serde_json::Value)> {
    if gv.group == METRICS_GROUP {
        return Vec::new();
    }
    let mut out = Vec::new();
    for info in ALL.iter().filter(|i| i.group == gv.group) {
        out.push((definition_name(gv.group, gv.version, info.kind), kind_definition(gv, info)));
        let item = definition_name(gv.group, gv.version, info.kind);
        out.push((definition_name(gv.group, gv.version, info.list_kind), list_definition(gv, info.list_kind, &item)));
    }
    out
}

/// Renders path items into `paths` with one OpenAPI version's parameter and operation forms:
/// v3 and v2 differ only in those two.
pub fn render_into(
    paths: &mut serde_json::Map<String, serde_json::Value>,
    items: Vec<PathItem>,
    parameter: fn(&Param) -> serde_json::Value,
    operation: fn(&Operation) -> serde_json::Value,
) {
    for item in items {
        let mut path = serde_json::Map::new();
        path.insert("parameters".into(), serde_json::Value::Array(item.params.iter().map(parameter).collect()));
        for op in &item.operations {
            path.insert(op.method.into(), operation(op));
        }
        paths.insert(item.path, serde_json::Value::Object(path));
    }
}
