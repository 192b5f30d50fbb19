//! Validation with Kubernetes' rules; every problem carries its field path, and all
//! problems are reported together, not just the first.

mod apps;
mod autoscaling;
mod config_data;
mod config_volume;
mod env_source;
mod field;
mod handlers;
mod meta;
pub mod names;
mod pod;
mod pod_update;
mod security;
mod service;

pub use config_data::MAX_SIZE as MAX_CONFIG_SIZE;
pub use field::{invalid_message, FieldError, FieldErrorKind, Path};
pub use meta::go_selector;
pub use pod::MAX_SECONDS;
pub use security::{sysctl_name, SAFE_SYSCTLS};
pub use service::NODE_PORT_RANGE;

use crate::core::Event;
use crate::object::Object;
use field::quote;
use pod::PodSpecOwner;

/// Checks a new object.
pub fn validate(obj: &Object) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    let info = obj.info();
    meta::object_meta(obj.metadata(), info.namespaced, name_rule(obj), &Path::new("metadata"), &mut errs);
    match obj {
        Object::Pod(p) => {
            security::app_armor_annotations(
                &p.metadata.annotations,
                &Path::new("metadata").child("annotations"),
                &mut errs,
            );
            pod::validate_pod_spec(&p.spec, PodSpecOwner::Pod, &Path::new("spec"), &mut errs)
        }
        Object::Service(s) => service::service_spec(&s.spec, &mut errs),
        Object::Endpoints(e) => service::endpoints(e, &mut errs),
        Object::Event(e) => event(e, &mut errs),
        Object::Namespace(_) | Object::ServiceAccount(_) => {}
        Object::ConfigMap(c) => config_data::config_map(c, &mut errs),
        Object::Secret(s) => config_data::secret(s, &mut errs),
        Object::Deployment(d) => apps::deployment_spec(&d.spec, &mut errs),
        Object::ReplicaSet(r) => apps::replica_set_spec(&r.spec, &mut errs),
        Object::HorizontalPodAutoscaler(h) => autoscaling::hpa_spec(&h.spec, &mut errs),
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Checks an update of `old` to `new` (immutable fields such as selectors stay put), and
/// the new object itself.
pub fn validate_update(old: &Object, new: &Object) -> Result<(), Vec<FieldError>> {
    let mut errs = Vec::new();
    if old.info().kind != new.info().kind {
        errs.push(FieldError::invalid(&Path::new("kind"), quote(new.info().kind), "field is immutable"));
        return Err(errs);
    }
    let (om, nm) = (old.metadata(), new.metadata());
    let meta = Path::new("metadata");
    for (field, before, after) in
        [("name", &om.name, &nm.name), ("namespace", &om.namespace, &nm.namespace), ("uid", &om.uid, &nm.uid)]
    {
        // An empty uid in an update means "not given", and the store keeps the old one.
        if before != after && !(field == "uid" && after.is_empty()) {
            errs.push(FieldError::invalid(&meta.child(field), quote(after), "field is immutable"));
        }
    }
    let selectors = match (old, new) {
        (Object::Deployment(o), Object::Deployment(n)) => Some((&o.spec.selector, &n.spec.selector)),
        (Object::ReplicaSet(o), Object::ReplicaSet(n)) => Some((&o.spec.selector, &n.spec.selector)),
        _ => None,
    };
    if let Some((before, after)) = selectors {
        if before != after {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("selector"),
                go_selector(after),
                "field is immutable",
            ));
        }
    }
    if let (Object::Service(o), Object::Service(n)) = (old, new) {
        let (before, after) = (o.spec.cluster_ip.as_deref().unwrap_or(""), n.spec.cluster_ip.as_deref().unwrap_or(""));
        let external = n.spec.type_.as_deref() == Some("ExternalName");
        if !before.is_empty() && before != after && !external {
            errs.push(FieldError::invalid(&Path::new("spec").child("clusterIP"), quote(after), "field is immutable"));
        }
    }
    match (old, new) {
        (Object::Pod(o), Object::Pod(n)) => pod_update::validate_pod_update(o, n, &mut errs),
        (Object::ConfigMap(o), Object::ConfigMap(n)) => config_data::config_map_update(o, n, &mut errs),
        (Object::Secret(o), Object::Secret(n)) => config_data::secret_update(o, n, &mut errs),
        _ => {}
    }
    if let Err(more) = validate(new) {
        errs.extend(more);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// The `metadata.name` rule of each kind, as its Kubernetes validation picks it.
fn name_rule(obj: &Object) -> meta::NameCheck {
    match obj {
        Object::Service(_) => names::dns1035_label,
        Object::Namespace(_) => names::dns1123_label,
        Object::HorizontalPodAutoscaler(_) => names::path_segment_name,
        _ => names::dns1123_subdomain,
    }
}

fn event(e: &Event, errs: &mut Vec<FieldError>) {
    let involved = &e.involved_object.namespace;
    let own = &e.metadata.namespace;
    let mismatch = if involved.is_empty() { !own.is_empty() && own != "default" } else { involved != own };
    if mismatch {
        errs.push(FieldError::invalid(
            &Path::new("involvedObject").child("namespace"),
            quote(involved),
            "does not match event.namespace",
        ));
    }
}

#[cfg(test)]
mod config_data_tests;
#[cfg(test)]
mod tests;
