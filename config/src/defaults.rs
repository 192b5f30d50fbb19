//! Defaulting as the Kubernetes API server does it, applied before validation and storage.
//! Each function mirrors one `SetDefaults_*` of `pkg/apis/*/v1/defaults.go`: it fills only
//! what is unset, so applying defaults twice changes nothing.

use crate::apps::{Deployment, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment};
use crate::autoscaling::{
    HorizontalPodAutoscaler, HpaScalingPolicy, HpaScalingRules, MetricSpec, MetricTarget, ResourceMetricSource,
};
use crate::base64::Base64Bytes;
use crate::core::{secret, Secret};
use crate::core::{
    ClientIpConfig, Container, EmptyDirVolumeSource, Endpoints, HttpGetAction, LifecycleHandler, Pod, PodSpec, Probe,
    Service, SessionAffinityConfig,
};
use crate::object::Object;
use crate::IntOrString;

/// The namespace objects land in when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Fills every defaulted field of `obj` (RollingUpdate 25%/25%, restartPolicy Always, …).
pub fn apply(obj: &mut Object) {
    obj.set_type_meta();
    let namespaced = obj.info().namespaced;
    let meta = obj.metadata_mut();
    if !namespaced {
        meta.namespace.clear();
    } else if meta.namespace.is_empty() {
        meta.namespace = DEFAULT_NAMESPACE.to_string();
    }
    match obj {
        Object::Pod(p) => pod(p),
        Object::Service(s) => service(s),
        Object::Endpoints(e) => endpoints(e),
        Object::Deployment(d) => deployment(d),
        Object::ReplicaSet(r) => replica_set(r),
        Object::HorizontalPodAutoscaler(h) => autoscaler(h),
        Object::Secret(s) => secret(s),
        Object::Event(_) | Object::Namespace(_) | Object::ConfigMap(_) | Object::ServiceAccount(_) => {}
    }
}

/// `SetDefaults_Secret`, and the conversion's folding of the write-only `stringData` into
/// `data` (a key in both takes the `stringData` value), so it is never stored or served.
fn secret(s: &mut Secret) {
    if s.type_.as_deref().is_none_or(str::is_empty) {
        s.type_ = Some(secret::types::OPAQUE.into());
    }
    for (key, value) in std::mem::take(&mut s.string_data) {
        s.data.insert(key, Base64Bytes(value.into_bytes()));
    }
}

fn set<T>(field: &mut Option<T>, value: T) {
    if field.is_none() {
        *field = Some(value);
    }
}

fn pod(p: &mut Pod) {
    pod_spec(&mut p.spec);
    // Only a bare pod copies limits into missing requests (`SetDefaults_Pod`), not templates.
    for c in p.spec.init_containers.iter_mut().chain(p.spec.containers.iter_mut()) {
        let r = &mut c.resources;
        for (name, limit) in &r.limits {
            r.requests.entry(name.clone()).or_insert(*limit);
        }
    }
}

/// `SetDefaults_PodSpec` plus the container, port, probe and volume defaults beneath it.
pub fn pod_spec(spec: &mut PodSpec) {
    set(&mut spec.dns_policy, "ClusterFirst".into());
    set(&mut spec.restart_policy, "Always".into());
    set(&mut spec.termination_grace_period_seconds, 30);
    set(&mut spec.scheduler_name, "default-scheduler".into());
    set(&mut spec.enable_service_links, true);
    let host_network = spec.host_network == Some(true);
    for c in spec.init_containers.iter_mut().chain(spec.containers.iter_mut()) {
        container(c, host_network);
    }
    for v in &mut spec.volumes {
        // `SetDefaults_ConfigMapVolumeSource`, `SetDefaults_SecretVolumeSource`.
        if let Some(cm) = &mut v.config_map {
            set(&mut cm.default_mode, crate::core::config_volume::DEFAULT_MODE);
        } else if let Some(s) = &mut v.secret {
            set(&mut s.default_mode, crate::core::config_volume::DEFAULT_MODE);
        } else if let Some(p) = &mut v.projected {
            set(&mut p.default_mode, crate::core::config_volume::DEFAULT_MODE);
        } else if v.empty_dir.is_none() && v.host_path.is_none() {
            v.empty_dir = Some(EmptyDirVolumeSource::default());
        }
    }
}

fn container(c: &mut Container, host_network: bool) {
    set(&mut c.termination_message_path, "/dev/termination-log".into());
    set(&mut c.termination_message_policy, "File".into());
    set(&mut c.image_pull_policy, pull_policy_for(&c.image).into());
    for port in &mut c.ports {
        set(&mut port.protocol, "TCP".into());
        if host_network {
            set(&mut port.host_port, port.container_port);
        }
    }
    for probe in [&mut c.liveness_probe, &mut c.readiness_probe, &mut c.startup_probe].into_iter().flatten() {
        self::probe(probe);
    }
    if let Some(l) = &mut c.lifecycle {
        for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
            handler(h);
        }
    }
    for env in &mut c.env {
        if let Some(f) = env.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            set(&mut f.api_version, "v1".into());
        }
    }
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent`.
pub fn pull_policy_for(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    // A colon in the last path segment starts the tag; one before it is a registry port.
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// `SetDefaults_Probe`. These fields are plain int32 in Kubernetes, so an explicit 0 is
/// "unset" there and gets the default too; a probe every 0 seconds would spin.
fn probe(p: &mut Probe) {
    for (field, default) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.is_none_or(|v| v == 0) {
            *field = Some(default);
        }
    }
    if let Some(h) = &mut p.http_get {
        http_get(h);
    }
}

fn handler(h: &mut LifecycleHandler) {
    if let Some(g) = &mut h.http_get {
        http_get(g);
    }
}

fn http_get(h: &mut HttpGetAction) {
    set(&mut h.path, "/".into());
    set(&mut h.scheme, "HTTP".into());
}

fn service(s: &mut Service) {
    let spec = &mut s.spec;
    set(&mut spec.type_, "ClusterIP".into());
    set(&mut spec.session_affinity, "None".into());
    if spec.session_affinity.as_deref() == Some("ClientIP") {
        let cfg = spec.session_affinity_config.get_or_insert_with(SessionAffinityConfig::default);
        let ip = cfg.client_ip.get_or_insert_with(ClientIpConfig::default);
        set(&mut ip.timeout_seconds, 10800);
    }
    let type_ = spec.type_.as_deref().unwrap_or_default();
    if type_ != "ExternalName" {
        set(&mut spec.internal_traffic_policy, "Cluster".into());
    }
    if type_ == "NodePort" || type_ == "LoadBalancer" {
        set(&mut spec.external_traffic_policy, "Cluster".into());
    }
    for p in &mut spec.ports {
        set(&mut p.protocol, "TCP".into());
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
}

fn endpoints(e: &mut Endpoints) {
    for port in e.subsets.iter_mut().flat_map(|s| s.ports.iter_mut()) {
        set(&mut port.protocol, "TCP".into());
    }
}

fn deployment(d: &mut Deployment) {
    let spec = &mut d.spec;
    set(&mut spec.replicas, 1);
    let strategy = spec.strategy.get_or_insert_with(DeploymentStrategy::default);
    set(&mut strategy.type_, "RollingUpdate".into());
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy.rolling_update.get_or_insert_with(RollingUpdateDeployment::default);
        set(&mut ru.max_unavailable, IntOrString::from("25%"));
        set(&mut ru.max_surge, IntOrString::from("25%"));
    }
    set(&mut spec.revision_history_limit, 10);
    set(&mut spec.progress_deadline_seconds, 600);
    pod_spec(&mut spec.template.spec);
}

fn replica_set(r: &mut ReplicaSet) {
    set(&mut r.spec.replicas, 1);
    pod_spec(&mut r.spec.template.spec);
}

/// The CPU utilization an autoscaler without metrics aims for.
pub const DEFAULT_CPU_UTILIZATION: i32 = 80;

fn autoscaler(h: &mut HorizontalPodAutoscaler) {
    let spec = &mut h.spec;
    set(&mut spec.min_replicas, 1);
    if spec.metrics.is_empty() {
        spec.metrics.push(MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..Default::default()
                },
            }),
        });
    }
    // As in Kubernetes, a given `behavior` is completed; an absent one stays absent and the
    // controller uses the same defaults.
    if let Some(b) = &mut spec.behavior {
        scaling_rules(b.scale_up.get_or_insert_with(Default::default), 0, &scale_up_policies());
        scaling_rules(b.scale_down.get_or_insert_with(Default::default), 300, &scale_down_policies());
    }
}

fn policy(type_: &str, value: i32) -> HpaScalingPolicy {
    HpaScalingPolicy { type_: type_.into(), value, period_seconds: 15 }
}

/// Scale up by the larger of 4 pods or 100% per 15 s.
pub fn scale_up_policies() -> Vec<HpaScalingPolicy> {
    vec![policy("Pods", 4), policy("Percent", 100)]
}

/// Scale down by up to 100% per 15 s.
pub fn scale_down_policies() -> Vec<HpaScalingPolicy> {
    vec![policy("Percent", 100)]
}

fn scaling_rules(r: &mut HpaScalingRules, window: i32, policies: &[HpaScalingPolicy]) {
    set(&mut r.stabilization_window_seconds, window);
    set(&mut r.select_policy, "Max".into());
    if r.policies.is_empty() {
        r.policies = policies.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_documents;

    fn defaulted(yaml: &str) -> Object {
        let mut obj = parse_documents(yaml).unwrap().remove(0).object;
        apply(&mut obj);
        obj
    }

    #[test]
    fn deployment_defaults_match_kubernetes() {
        let obj = defaulted(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: w}}\n  \
             template:\n    metadata: {labels: {app: w}}\n    spec:\n      containers:\n      - name: c\n        \
             image: nginx\n        ports: [{containerPort: 80}]\n        \
             readinessProbe: {httpGet: {port: 80}}\n",
        );
        let Object::Deployment(d) = obj else { panic!() };
        assert_eq!(d.metadata.namespace, "default");
        assert_eq!(d.api_version, "apps/v1");
        assert_eq!(d.spec.replicas, Some(1));
        assert_eq!(d.spec.revision_history_limit, Some(10));
        assert_eq!(d.spec.progress_deadline_seconds, Some(600));
        let s = d.spec.strategy.unwrap();
        assert_eq!(s.type_.as_deref(), Some("RollingUpdate"));
        let ru = s.rolling_update.unwrap();
        assert_eq!((ru.max_surge.unwrap(), ru.max_unavailable.unwrap()), ("25%".into(), "25%".into()));
        let pod = &d.spec.template.spec;
        assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
        assert_eq!(pod.termination_grace_period_seconds, Some(30));
        assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
        assert_eq!(pod.scheduler_name.as_deref(), Some("default-scheduler"));
        let c = &pod.containers[0];
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(c.termination_message_path.as_deref(), Some("/dev/termination-log"));
        assert_eq!(c.termination_message_policy.as_deref(), Some("File"));
        assert_eq!(c.ports[0].protocol.as_deref(), Some("TCP"));
        let p = c.readiness_probe.as_ref().unwrap();
        assert_eq!(
            (p.timeout_seconds, p.period_seconds, p.success_threshold, p.failure_threshold),
            (Some(1), Some(10), Some(1), Some(3))
        );
        let g = p.http_get.as_ref().unwrap();
        assert_eq!((g.path.as_deref(), g.scheme.as_deref()), (Some("/"), Some("HTTP")));
    }

    #[test]
    fn probe_timings_of_zero_are_defaulted_as_unset() {
        let obj = defaulted(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: i\n    \
             livenessProbe: {exec: {command: [\"true\"]}, timeoutSeconds: 0, periodSeconds: 0, successThreshold: 0, \
             failureThreshold: 0, initialDelaySeconds: 0}\n    readinessProbe: {exec: {command: [\"true\"]}, periodSeconds: 7}\n",
        );
        let Object::Pod(pod) = obj else { panic!() };
        let c = &pod.spec.containers[0];
        let timings = |p: &Probe| {
            (p.initial_delay_seconds, p.timeout_seconds, p.period_seconds, p.success_threshold, p.failure_threshold)
        };
        assert_eq!(timings(c.liveness_probe.as_ref().unwrap()), (Some(0), Some(1), Some(10), Some(1), Some(3)));
        assert_eq!(timings(c.readiness_probe.as_ref().unwrap()), (None, Some(1), Some(7), Some(1), Some(3)));
    }

    #[test]
    fn defaulting_twice_changes_nothing() {
        let mut obj = defaulted(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: c, image: busybox:1.36, \
             resources: {limits: {cpu: 500m}}}\n",
        );
        let once = obj.clone();
        apply(&mut obj);
        assert_eq!(obj, once);
        let Object::Pod(p) = obj else { panic!() };
        assert_eq!(p.spec.containers[0].resources.requests["cpu"].to_string(), "500m");
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        for (image, want) in [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.14.2", "IfNotPresent"),
            ("localhost:5000/app", "Always"),
            ("localhost:5000/app:v2", "IfNotPresent"),
            ("busybox@sha256:abcd", "IfNotPresent"),
        ] {
            assert_eq!(pull_policy_for(image), want, "{image}");
        }
    }

    #[test]
    fn service_and_autoscaler_defaults() {
        let Object::Service(s) =
            defaulted("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{port: 80}]\n")
        else {
            panic!()
        };
        assert_eq!(s.spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(s.spec.session_affinity.as_deref(), Some("None"));
        assert_eq!(s.spec.ports[0].protocol.as_deref(), Some("TCP"));
        assert_eq!(s.spec.ports[0].target_port, Some(IntOrString::Int(80)));

        let Object::HorizontalPodAutoscaler(h) = defaulted(
            "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n  \
             scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 3\n  behavior: {scaleDown: {}}\n",
        ) else {
            panic!()
        };
        assert_eq!(h.spec.min_replicas, Some(1));
        assert_eq!(h.cpu_target_utilization(), Some(80));
        let b = h.spec.behavior.unwrap();
        assert_eq!(b.scale_down.unwrap().stabilization_window_seconds, Some(300));
        assert_eq!(b.scale_up.unwrap().policies, scale_up_policies());
    }

    #[test]
    fn cluster_scoped_kinds_lose_their_namespace() {
        let obj = defaulted("apiVersion: v1\nkind: Namespace\nmetadata: {name: n, namespace: x}\n");
        assert_eq!(obj.metadata().namespace, "");
    }
}
