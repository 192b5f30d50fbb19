//! Admission: the decode → default → validate pipeline every incoming object passes, whether
//! it arrives in an API request body or from a file in the manifests directory. Services
//! also get their ClusterIP and node ports here (`allocate`, `admit_update`), in the write
//! call itself as Kubernetes does, from the daemon's one [`ServiceAllocator`] that every
//! write path (POST, PUT, PATCH, server-side apply, the manifests folder) is handed. Each
//! returns a [`Reservation`] the caller settles with the store's answer to its write.

use coracle_config::core::{Pod, Service, ServiceAccount, DEFAULT_SERVICE_ACCOUNT};
use coracle_config::defaults;
use coracle_config::manifest::{self, Parsed};
use coracle_config::object::{Object, Resource, ResourceInfo};
use coracle_config::validation::{self, FieldError};
use coracle_net::services::allocator::{Reservation, ServiceAllocator};
use coracle_store::Store;
use std::fmt;

/// Why an object was refused before it reached the store.
#[derive(Clone, Debug, PartialEq)]
pub enum AdmissionError {
    /// The body is not a decodable object (malformed, unknown kind, wrong field type).
    Decode(String),
    /// The object decoded but breaks a validation rule.
    Invalid { resource: &'static ResourceInfo, name: String, errors: Vec<FieldError> },
    /// An admission plugin refused the object (a pod naming a missing ServiceAccount).
    Forbidden { resource: &'static ResourceInfo, name: String, reason: String },
}

impl fmt::Display for AdmissionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdmissionError::Decode(message) => f.write_str(message),
            AdmissionError::Invalid { resource, name, errors } => {
                write!(f, "{}", invalid_message(resource, name, errors))
            }
            AdmissionError::Forbidden { resource, name, reason } => {
                write!(f, "{} \"{name}\" is forbidden: {reason}", resource.qualified_plural())
            }
        }
    }
}

impl std::error::Error for AdmissionError {}

/// Kubernetes' wording: `Deployment.apps "web" is invalid: spec.replicas: Invalid value: …`,
/// with several errors bracketed and comma-separated.
pub fn invalid_message(resource: &ResourceInfo, name: &str, errors: &[FieldError]) -> String {
    let qualified_kind = if resource.group.is_empty() {
        resource.kind.to_string()
    } else {
        format!("{}.{}", resource.kind, resource.group)
    };
    let listed: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let body = if listed.len() == 1 { listed[0].clone() } else { format!("[{}]", listed.join(", ")) };
    format!("{qualified_kind} \"{name}\" is invalid: {body}")
}

/// Decodes one object from a JSON value. An `autoscaling/v1` autoscaler comes out in the
/// stored `autoscaling/v2` form, so every later step sees one shape.
pub fn decode(value: serde_json::Value) -> Result<Parsed, AdmissionError> {
    manifest::decode_object(value).map_err(|e| AdmissionError::Decode(e.to_string()))
}

/// Prepares a new object for the store: fills its namespace (`default_namespace` for
/// namespaced kinds that name none), applies defaults and validates it.
pub fn admit_create(mut object: Object, default_namespace: &str) -> Result<Object, AdmissionError> {
    place_in_namespace(&mut object, default_namespace);
    defaults::apply(&mut object);
    validation::validate(&object).map_err(|errors| invalid(&object, errors))?;
    Ok(object)
}

/// Gives an admitted new object what the cluster allocates at create time: a Service's
/// ClusterIP and node ports (taken or out-of-range requests are 422 naming the field). Call
/// right before the store's create and settle the reservation with the create's result
/// (`picks.settle(store.create(object))`); dropping it (a dry run) gives the picks back.
///
/// A pod's ServiceAccount is looked up here too, as Kubernetes' ServiceAccount admission
/// plugin does: one that names a missing account is refused (403). `default` is always
/// accepted: the service account controller creates it in every namespace, and a pod must
/// not fail for being created in the instant before it has.
pub fn allocate<'a>(
    services: &'a ServiceAllocator,
    store: &Store,
    object: &mut Object,
) -> Result<Reservation<'a>, AdmissionError> {
    if let Object::Pod(pod) = object {
        service_account(store, pod)?;
    }
    let Object::Service(svc) = object else { return Ok(services.nothing()) };
    services.allocate(store, svc).map_err(|error| invalid_service(svc, error))
}

/// Prepares a replacement of `old`: namespace, defaults, a Service's allocations (what the
/// user left unset is carried over from `old`, so re-applying a manifest without clusterIP
/// is no change of an immutable field), then both the object's own rules and the update
/// rules (immutable fields stay put). The reservation holds what was newly allocated; settle
/// it with the store's update.
pub fn admit_update<'a>(
    services: &'a ServiceAllocator,
    store: &Store,
    old: &Object,
    mut object: Object,
) -> Result<(Object, Reservation<'a>), AdmissionError> {
    let namespace = old.metadata().namespace.clone();
    place_in_namespace(&mut object, &namespace);
    defaults::apply(&mut object);
    let picks = match (old, &mut object) {
        (Object::Service(before), Object::Service(after)) => {
            services.allocate_update(store, before, after).map_err(|error| invalid_service(after, error))?
        }
        _ => services.nothing(),
    };
    validation::validate(&object).map_err(|errors| invalid(&object, errors))?;
    validation::validate_update(old, &object).map_err(|errors| invalid(&object, errors))?;
    Ok((object, picks))
}

fn service_account(store: &Store, pod: &Pod) -> Result<(), AdmissionError> {
    let Some(name) = pod.spec.service_account_name.as_deref().filter(|n| !n.is_empty()) else { return Ok(()) };
    let namespace = &pod.metadata.namespace;
    if name == DEFAULT_SERVICE_ACCOUNT || store.get(&ServiceAccount::INFO, namespace, name).is_some() {
        return Ok(());
    }
    Err(AdmissionError::Forbidden {
        resource: &Pod::INFO,
        name: pod.metadata.name.clone(),
        reason: format!("error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"),
    })
}

fn place_in_namespace(object: &mut Object, namespace: &str) {
    let namespaced = object.info().namespaced;
    let meta = object.metadata_mut();
    if !namespaced {
        meta.namespace.clear();
    } else if meta.namespace.is_empty() {
        meta.namespace = namespace.to_string();
    }
}

fn invalid_service(svc: &Service, error: FieldError) -> AdmissionError {
    AdmissionError::Invalid { resource: &Service::INFO, name: svc.metadata.name.clone(), errors: vec![error] }
}

fn invalid(object: &Object, errors: Vec<FieldError>) -> AdmissionError {
    let meta = object.metadata();
    let name = if meta.name.is_empty() { meta.generate_name.clone() } else { meta.name.clone() };
    AdmissionError::Invalid { resource: object.info(), name, errors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::validation::FieldErrorKind;

    fn field_error(field: &str) -> FieldError {
        FieldError { field: field.into(), kind: FieldErrorKind::Required, detail: String::new() }
    }

    #[test]
    fn v1_autoscalers_decode_to_v2_with_their_unknown_fields_named() {
        let v1 = serde_json::json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h"}, "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentag": 5,
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "w"}}});
        let parsed = decode(v1).unwrap();
        assert_eq!(parsed.object.info().api_version(), "autoscaling/v2");
        assert_eq!(parsed.warnings, ["unknown field \"spec.targetCPUUtilizationPercentag\""]);
    }

    #[test]
    fn invalid_message_names_kind_group_and_object() {
        let deploy = ResourceInfo::lookup("deployments").unwrap();
        let one = invalid_message(deploy, "web", &[field_error("spec.template.spec.containers[0].image")]);
        assert_eq!(one, "Deployment.apps \"web\" is invalid: spec.template.spec.containers[0].image: Required value");
        let pod = ResourceInfo::lookup("pods").unwrap();
        let two = invalid_message(pod, "p", &[field_error("spec.containers"), field_error("metadata.name")]);
        assert_eq!(two, "Pod \"p\" is invalid: [spec.containers: Required value, metadata.name: Required value]");
    }
    fn service(name: &str, body: serde_json::Value) -> Object {
        let mut value = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}});
        value.as_object_mut().unwrap().insert("spec".into(), body);
        admit_create(decode(value).unwrap().object, "default").unwrap()
    }

    fn spec(object: &Object) -> &coracle_config::core::ServiceSpec {
        let Object::Service(s) = object else { panic!("not a service") };
        &s.spec
    }

    fn services() -> ServiceAllocator {
        ServiceAllocator::new("10.96.0.0/16".parse().unwrap())
    }

    #[test]
    fn services_get_allocations_that_a_second_apply_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let services = services();
        let mut web = service("web", serde_json::json!({"type": "NodePort", "ports": [{"port": 80}]}));
        let picks = allocate(&services, &store, &mut web).unwrap();
        let stored = picks.settle(store.create(web.clone())).unwrap();
        let ip = spec(&stored).cluster_ip.clone().unwrap();
        assert!(ip.starts_with("10.96."), "{ip}");
        let node_port = spec(&stored).ports[0].node_port.unwrap();
        // The same manifest again, without clusterIP or nodePort: no "field is immutable".
        let again = service("web", serde_json::json!({"type": "NodePort", "ports": [{"port": 80}]}));
        let (updated, _picks) = admit_update(&services, &store, &stored, again).unwrap();
        assert_eq!(
            (spec(&updated).cluster_ip.clone(), spec(&updated).ports[0].node_port),
            (Some(ip.clone()), Some(node_port))
        );
        // Asking for what "web" holds is 422 naming the field.
        let mut clash = service("other", serde_json::json!({"clusterIP": ip, "ports": [{"port": 80}]}));
        let e = allocate(&services, &store, &mut clash).unwrap_err().to_string();
        assert_eq!(e, format!("Service \"other\" is invalid: spec.clusterIP: Invalid value: \"{ip}\": provided IP is already allocated"));
        let mut taken =
            service("np", serde_json::json!({"type": "NodePort", "ports": [{"port": 81, "nodePort": node_port}]}));
        let e = allocate(&services, &store, &mut taken).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated"
            )),
            "{e}"
        );
        // After the delete, the address is free again.
        store.delete(&Service::INFO, "default", "web", &coracle_store::DeleteOptions::default()).unwrap();
        let _picks = allocate(&services, &store, &mut clash).unwrap();
    }

    #[test]
    fn node_ports_out_of_range_are_refused_with_kubernetes_wording() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut low = service("low", serde_json::json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}));
        let Err(e) = allocate(&services(), &store, &mut low) else { panic!("nodePort 80 allocated") };
        let e = e.to_string();
        assert_eq!(e, "Service \"low\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767");
        // Not a port at all: refused before any allocation.
        let value = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "big"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 70000}]}});
        let e = admit_create(decode(value).unwrap().object, "default").unwrap_err().to_string();
        assert_eq!(e, "Service \"big\" is invalid: spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive");
    }
}
