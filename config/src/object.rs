//! The kinds Coracle stores, and what the API and ctl need to know about each:
//! its group/version, plural, short names, scope and categories.

use crate::apps::{Deployment, ReplicaSet};
use crate::autoscaling::HorizontalPodAutoscaler;
use crate::core::{ConfigMap, Endpoints, Event, Namespace, Pod, Secret, Service, ServiceAccount};
use crate::meta::ObjectMeta;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Static facts about one resource type, as discovery (`/api/v1`, `/apis/apps/v1`) lists them.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    pub kind: &'static str,
    pub list_kind: &'static str,
    /// The REST path segment, e.g. `deployments`.
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    /// Empty for the core group.
    pub group: &'static str,
    /// The version objects are stored and served as by default.
    pub version: &'static str,
    pub namespaced: bool,
    pub categories: &'static [&'static str],
    /// Subresources served under `{plural}/{name}/…`.
    pub subresources: &'static [&'static str],
}

impl ResourceInfo {
    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, as Kubernetes names a resource in error messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The collection path, e.g. `/apis/apps/v1/namespaces/default/deployments`;
    /// `namespace` None gives the cluster-wide list path.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let prefix = if self.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{prefix}/namespaces/{ns}/{}", self.plural),
            _ => format!("{prefix}/{}", self.plural),
        }
    }

    /// The object path, e.g. `/api/v1/namespaces/default/pods/web`.
    pub fn object_path(&self, namespace: &str, name: &str) -> String {
        format!("{}/{name}", self.collection_path(Some(namespace)))
    }

    /// True for kinds whose values are confidential (Secrets): their files are 0600 and
    /// describe prints sizes, never values.
    pub fn confidential(&self) -> bool {
        self.group.is_empty() && self.kind == "Secret"
    }

    /// Finds a resource type by anything a user may type: kind, plural, singular or short
    /// name, case-insensitively, optionally qualified with its group (`deployments.apps`).
    pub fn lookup(name: &str) -> Option<&'static ResourceInfo> {
        let lower = name.to_ascii_lowercase();
        let (base, group) = match lower.split_once('.') {
            Some((b, g)) => (b.to_string(), Some(g.to_string())),
            None => (lower.clone(), None),
        };
        ALL.iter().copied().find(|info| {
            group.as_deref().is_none_or(|g| g == info.group)
                && (base == info.plural
                    || base == info.singular
                    || base == info.kind.to_ascii_lowercase()
                    || info.short_names.contains(&base.as_str()))
        })
    }

    /// Finds a resource type by its kind and apiVersion, as manifests name them. Both served
    /// versions of the autoscaler resolve to the one stored type.
    pub fn for_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        ALL.iter().copied().find(|info| info.kind == kind && info.group == group)
    }
}

/// Every resource type Coracle serves, in discovery order.
pub static ALL: &[&ResourceInfo] = &[
    &Pod::INFO,
    &Service::INFO,
    &Endpoints::INFO,
    &Event::INFO,
    &Namespace::INFO,
    &ConfigMap::INFO,
    &Secret::INFO,
    &ServiceAccount::INFO,
    &Deployment::INFO,
    &ReplicaSet::INFO,
    &HorizontalPodAutoscaler::INFO,
];

/// A typed Kubernetes object: one kind of [`Object`], knowing its own [`ResourceInfo`].
pub trait Resource: Serialize + DeserializeOwned + Clone + Send + Sync + Into<Object> + 'static {
    const INFO: ResourceInfo;
    /// This kind inside `obj`, borrowed; None when `obj` holds another kind.
    fn from_object(obj: &Object) -> Option<&Self>;
    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// Fills `apiVersion` and `kind` with this type's own.
    fn set_type_meta(&mut self);
    /// The part of the object whose change bumps `metadata.generation`; None for kinds
    /// without a spec, which carry no generation.
    fn spec_value(&self) -> Option<serde_json::Value>;
}

macro_rules! resource {
    ($ty:ty, $variant:ident, spec: $spec:ident, $info:expr) => {
        impl Resource for $ty {
            const INFO: ResourceInfo = $info;
            fn from_object(obj: &Object) -> Option<&$ty> {
                match obj {
                    Object::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
            fn set_type_meta(&mut self) {
                self.api_version = Self::INFO.api_version();
                self.kind = Self::INFO.kind.to_string();
            }
            fn spec_value(&self) -> Option<serde_json::Value> {
                resource!(@spec self, $spec)
            }
        }
        impl From<$ty> for Object {
            fn from(v: $ty) -> Object {
                Object::$variant(v)
            }
        }
        impl TryFrom<Object> for $ty {
            type Error = Object;
            fn try_from(o: Object) -> Result<$ty, Object> {
                match o {
                    Object::$variant(v) => Ok(v),
                    other => Err(other),
                }
            }
        }
    };
    (@spec $self:ident, spec) => {
        Some(serde_json::to_value(&$self.spec).expect("spec serializes"))
    };
    (@spec $self:ident, none) => {
        None
    };
}

resource!(Pod, Pod, spec: spec, ResourceInfo {
    kind: "Pod",
    list_kind: "PodList",
    plural: "pods",
    singular: "pod",
    short_names: &["po"],
    group: "",
    version: "v1",
    namespaced: true,
    categories: &["all"],
    subresources: &["status", "log"],
});
resource!(Service, Service, spec: spec, ResourceInfo {
    kind: "Service",
    list_kind: "ServiceList",
    plural: "services",
    singular: "service",
    short_names: &["svc"],
    group: "",
    version: "v1",
    namespaced: true,
    categories: &["all"],
    subresources: &["status"],
});
resource!(Endpoints, Endpoints, spec: none, ResourceInfo {
    kind: "Endpoints",
    list_kind: "EndpointsList",
    plural: "endpoints",
    singular: "endpoints",
    short_names: &["ep"],
    group: "",
    version: "v1",
    namespaced: true,
    categories: &[],
    subresources: &[],
});
resource!(Event, Event, spec: none, ResourceInfo {
    kind: "Event",
    list_kind: "EventList",
    plural: "events",
    singular: "event",
    short_names: &["ev"],
    group: "",
    version: "v1",
    namespaced: true,
    categories: &[],
    subresources: &[],
});
resource!(Namespace, Namespace, spec: none, ResourceInfo {
    kind: "Namespace",
    list_kind: "NamespaceList",
    plural: "namespaces",
    singular: "namespace",
    short_names: &["ns"],
    group: "",
    version: "v1",
    namespaced: false,
    categories: &[],
    subresources: &["status"],
});
resource!(ConfigMap, ConfigMap, spec: none, ResourceInfo {
    kind: "ConfigMap",
    list_kind: "ConfigMapList",
    plural: "configmaps",
    singular: "configmap",
    short_names: &["cm"],
    group: "",
    version: "v1",
    namespaced: true,
    categories: &[],
    subresources: &[],
});
resource!(Secret, Secret, spec: none, ResourceInfo {
    kind: "Secret",
    list_kind: "SecretList",
    plural: "secrets",
    singular: "secret",
    short_names: &[],
    group: "",
    version: "v1",
    namespaced: true,
    categories: &[],
    subresources: &[],
});
resource!(ServiceAccount, ServiceAccount, spec: none, ResourceInfo {
    kind: "ServiceAccount",
    list_kind: "ServiceAccountList",
    plural: "serviceaccounts",
    singular: "serviceaccount",
    short_names: &["sa"],
    group: "",
    version: "v1",
    namespaced: true,
    categories: &[],
    subresources: &[],
});
resource!(Deployment, Deployment, spec: spec, ResourceInfo {
    kind: "Deployment",
    list_kind: "DeploymentList",
    plural: "deployments",
    singular: "deployment",
    short_names: &["deploy"],
    group: "apps",
    version: "v1",
    namespaced: true,
    categories: &["all"],
    subresources: &["status", "scale"],
});
resource!(ReplicaSet, ReplicaSet, spec: spec, ResourceInfo {
    kind: "ReplicaSet",
    list_kind: "ReplicaSetList",
    plural: "replicasets",
    singular: "replicaset",
    short_names: &["rs"],
    group: "apps",
    version: "v1",
    namespaced: true,
    categories: &["all"],
    subresources: &["status", "scale"],
});
resource!(HorizontalPodAutoscaler, HorizontalPodAutoscaler, spec: spec, ResourceInfo {
    kind: "HorizontalPodAutoscaler",
    list_kind: "HorizontalPodAutoscalerList",
    plural: "horizontalpodautoscalers",
    singular: "horizontalpodautoscaler",
    short_names: &["hpa"],
    group: "autoscaling",
    version: "v2",
    namespaced: true,
    categories: &["all"],
    subresources: &["status"],
});

/// Any stored object.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Pod(Pod),
    Service(Service),
    Endpoints(Endpoints),
    Event(Event),
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    Secret(Secret),
    ServiceAccount(ServiceAccount),
    Deployment(Deployment),
    ReplicaSet(ReplicaSet),
    HorizontalPodAutoscaler(HorizontalPodAutoscaler),
}

macro_rules! each_variant {
    ($self:expr, $v:ident => $body:expr) => {
        match $self {
            Object::Pod($v) => $body,
            Object::Service($v) => $body,
            Object::Endpoints($v) => $body,
            Object::Event($v) => $body,
            Object::Namespace($v) => $body,
            Object::ConfigMap($v) => $body,
            Object::Secret($v) => $body,
            Object::ServiceAccount($v) => $body,
            Object::Deployment($v) => $body,
            Object::ReplicaSet($v) => $body,
            Object::HorizontalPodAutoscaler($v) => $body,
        }
    };
}

fn info_of<T: Resource>(_: &T) -> &'static ResourceInfo {
    // A reference to a constant is promoted to 'static. Copies may sit at different
    // addresses: infos compare by value, never by address.
    &T::INFO
}

impl Object {
    pub fn info(&self) -> &'static ResourceInfo {
        each_variant!(self, v => info_of(v))
    }

    /// This object as a `T`, borrowed; None when it is another kind.
    pub fn downcast_ref<T: Resource>(&self) -> Option<&T> {
        T::from_object(self)
    }

    /// True when this object is a `T`.
    pub fn is<T: Resource>(&self) -> bool {
        T::from_object(self).is_some()
    }

    pub fn metadata(&self) -> &ObjectMeta {
        each_variant!(self, v => v.metadata())
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each_variant!(self, v => v.metadata_mut())
    }

    pub fn set_type_meta(&mut self) {
        each_variant!(self, v => v.set_type_meta())
    }

    pub fn spec_value(&self) -> Option<serde_json::Value> {
        each_variant!(self, v => v.spec_value())
    }

    pub fn to_json(&self) -> serde_json::Value {
        each_variant!(self, v => serde_json::to_value(v).expect("objects serialize"))
    }

    /// Decodes a JSON object of a known resource type, strictly typed (unknown fields are
    /// ignored here; `manifest` reports them). The error names the failing field's path.
    pub fn from_json(info: &ResourceInfo, value: serde_json::Value) -> Result<Object, serde_json::Error> {
        // Through the decoder manifests use: one instantiation of every kind's decoding code.
        fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, serde_json::Error> {
            crate::tracked::from_value(value).map_err(<serde_json::Error as serde::de::Error>::custom)
        }
        Ok(match info.kind {
            "Pod" => Object::Pod(typed(value)?),
            "Service" => Object::Service(typed(value)?),
            "Endpoints" => Object::Endpoints(typed(value)?),
            "Event" => Object::Event(typed(value)?),
            "Namespace" => Object::Namespace(typed(value)?),
            "ConfigMap" => Object::ConfigMap(typed(value)?),
            "Secret" => Object::Secret(typed(value)?),
            "ServiceAccount" => Object::ServiceAccount(typed(value)?),
            "Deployment" => Object::Deployment(typed(value)?),
            "ReplicaSet" => Object::ReplicaSet(typed(value)?),
            "HorizontalPodAutoscaler" => Object::HorizontalPodAutoscaler(typed(value)?),
            other => unreachable!("unregistered kind {other}"),
        })
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub fn key(&self) -> String {
        let m = self.metadata();
        if m.namespace.is_empty() {
            m.name.clone()
        } else {
            format!("{}/{}", m.namespace, m.name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_accepts_what_kubectl_users_type() {
        for name in [
            "po",
            "pods",
            "pod",
            "Pod",
            "deploy",
            "deployments.apps",
            "rs",
            "svc",
            "ep",
            "hpa",
            "ns",
            "cm",
            "sa",
            "secrets",
        ] {
            assert!(ResourceInfo::lookup(name).is_some(), "{name}");
        }
        assert!(ResourceInfo::lookup("deployments.batch").is_none());
        assert_eq!(ResourceInfo::lookup("hpa").unwrap().api_version(), "autoscaling/v2");
    }

    #[test]
    fn for_kind_resolves_both_autoscaler_versions() {
        let v1 = ResourceInfo::for_kind("autoscaling/v1", "HorizontalPodAutoscaler").unwrap();
        let v2 = ResourceInfo::for_kind("autoscaling/v2", "HorizontalPodAutoscaler").unwrap();
        assert_eq!(v1, v2);
        assert!(ResourceInfo::for_kind("v1", "Deployment").is_none());
    }

    #[test]
    fn downcast_borrows_the_kind_inside_the_object() {
        let mut pod = Pod::default();
        pod.metadata.name = "p".into();
        let obj = Object::from(pod);
        let Object::Pod(inside) = &obj else { unreachable!() };
        let typed = obj.downcast_ref::<Pod>().expect("a pod");
        assert!(std::ptr::eq(typed, inside), "a borrow of the object, not a copy");
        assert_eq!(typed.metadata.name, "p");
        assert!(obj.downcast_ref::<Service>().is_none());
        assert!(obj.is::<Pod>() && !obj.is::<Deployment>());
    }

    #[test]
    fn every_kind_reports_its_registered_info() {
        let objects: Vec<Object> = vec![
            Pod::default().into(),
            Service::default().into(),
            Endpoints::default().into(),
            Event::default().into(),
            Namespace::default().into(),
            ConfigMap::default().into(),
            Secret::default().into(),
            ServiceAccount::default().into(),
            Deployment::default().into(),
            ReplicaSet::default().into(),
            HorizontalPodAutoscaler::default().into(),
        ];
        let infos: Vec<&ResourceInfo> = objects.iter().map(Object::info).collect();
        assert_eq!(infos, ALL);
    }

    #[test]
    fn paths_follow_the_kubernetes_layout() {
        let d = ResourceInfo::lookup("deploy").unwrap();
        assert_eq!(d.object_path("default", "web"), "/apis/apps/v1/namespaces/default/deployments/web");
        assert_eq!(Pod::INFO.collection_path(None), "/api/v1/pods");
        assert_eq!(Namespace::INFO.collection_path(Some("x")), "/api/v1/namespaces");
    }
}
