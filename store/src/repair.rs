//! Repair at load: a stored object that an older daemon accepted with a number no clock can
//! count (a grace period of 2^63-1 seconds) is brought within bounds as it is read, so the
//! daemon can never crash-loop on its own state. Each repair is logged and kept for the
//! daemon to record as an Event; the repaired object reaches disk with the next flush.

use coracle_config::core::{Container, PodSpec};
use coracle_config::object::Object;
use coracle_config::time::MAX_SPAN_SECONDS;

/// Brings `value` into `min..=max`, noting the change under `field`.
fn bound(value: &mut i64, min: i64, max: i64, field: &str, repairs: &mut Vec<String>) {
    let bounded = (*value).clamp(min, max);
    if bounded != *value {
        repairs.push(format!("{field}: {value} is outside {min}..={max}; set to {bounded}"));
        *value = bounded;
    }
}

fn bound_container(c: &mut Container, field: &str, repairs: &mut Vec<String>) {
    let probes = [("livenessProbe", &mut c.liveness_probe), ("readinessProbe", &mut c.readiness_probe)];
    let probes = probes.into_iter().chain([("startupProbe", &mut c.startup_probe)]);
    for (name, probe) in probes {
        if let Some(g) = probe.as_mut().and_then(|p| p.termination_grace_period_seconds.as_mut()) {
            bound(g, 1, MAX_SPAN_SECONDS, &format!("{field}.{name}.terminationGracePeriodSeconds"), repairs);
        }
    }
    let hooks = c.lifecycle.as_mut().map(|l| [("postStart", &mut l.post_start), ("preStop", &mut l.pre_stop)]);
    for (name, hook) in hooks.into_iter().flatten() {
        if let Some(sleep) = hook.as_mut().and_then(|h| h.sleep.as_mut()) {
            bound(&mut sleep.seconds, 0, MAX_SPAN_SECONDS, &format!("{field}.lifecycle.{name}.sleep.seconds"), repairs);
        }
    }
}

fn bound_pod_spec(spec: &mut PodSpec, field: &str, repairs: &mut Vec<String>) {
    if let Some(g) = spec.termination_grace_period_seconds.as_mut() {
        bound(g, 0, MAX_SPAN_SECONDS, &format!("{field}.terminationGracePeriodSeconds"), repairs);
    }
    // Kubernetes' own bounds on the deadline.
    if let Some(d) = spec.active_deadline_seconds.as_mut() {
        bound(d, 1, i64::from(i32::MAX), &format!("{field}.activeDeadlineSeconds"), repairs);
    }
    for (list, name) in [(&mut spec.init_containers, "initContainers"), (&mut spec.containers, "containers")] {
        for (i, c) in list.iter_mut().enumerate() {
            bound_container(c, &format!("{field}.{name}[{i}]"), repairs);
        }
    }
}

/// Repairs `obj` in place; what was changed, one line per field (empty: nothing).
pub(crate) fn repair(obj: &mut Object) -> Vec<String> {
    let mut repairs = Vec::new();
    if let Some(g) = obj.metadata_mut().deletion_grace_period_seconds.as_mut() {
        bound(g, 0, MAX_SPAN_SECONDS, "metadata.deletionGracePeriodSeconds", &mut repairs);
    }
    match obj {
        Object::Pod(p) => bound_pod_spec(&mut p.spec, "spec", &mut repairs),
        Object::Deployment(d) => bound_pod_spec(&mut d.spec.template.spec, "spec.template.spec", &mut repairs),
        Object::ReplicaSet(r) => bound_pod_spec(&mut r.spec.template.spec, "spec.template.spec", &mut repairs),
        _ => {}
    }
    repairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::apps::Deployment;
    use coracle_config::core::{LifecycleHandler, Pod, Probe, SleepAction};

    #[test]
    fn numbers_no_clock_can_count_are_brought_within_bounds() {
        let mut pod = Pod::default();
        pod.spec.termination_grace_period_seconds = Some(i64::MAX);
        pod.spec.active_deadline_seconds = Some(i64::MAX);
        pod.metadata.deletion_grace_period_seconds = Some(i64::MAX);
        let mut c = Container { name: "app".into(), ..Default::default() };
        c.liveness_probe = Some(Probe { termination_grace_period_seconds: Some(i64::MAX), ..Default::default() });
        let hook = LifecycleHandler { sleep: Some(SleepAction { seconds: i64::MAX }), ..Default::default() };
        c.lifecycle = Some(coracle_config::core::Lifecycle { pre_stop: Some(hook), ..Default::default() });
        pod.spec.containers.push(c);
        let mut obj: Object = pod.into();
        let repairs = repair(&mut obj);
        assert_eq!(repairs.len(), 5, "{repairs:#?}");
        assert_eq!(
            repairs[1],
            "spec.terminationGracePeriodSeconds: 9223372036854775807 is outside 0..=2147483647; set to 2147483647"
        );
        assert!(repairs[4].starts_with("spec.containers[0].lifecycle.preStop.sleep.seconds: "), "{}", repairs[4]);
        let Object::Pod(p) = &obj else { unreachable!() };
        assert_eq!(p.spec.termination_grace_period_seconds, Some(MAX_SPAN_SECONDS));
        assert_eq!(p.spec.active_deadline_seconds, Some(i64::from(i32::MAX)));
        assert_eq!(p.metadata.deletion_grace_period_seconds, Some(MAX_SPAN_SECONDS));
        // Once within bounds, nothing more to do.
        assert!(repair(&mut obj).is_empty());
    }

    #[test]
    fn templates_are_repaired_and_sound_objects_left_alone() {
        let mut d = Deployment::default();
        d.spec.template.spec.termination_grace_period_seconds = Some(i64::MAX);
        let mut obj: Object = d.into();
        assert_eq!(repair(&mut obj).len(), 1);
        let mut sound = Pod::default();
        sound.spec.termination_grace_period_seconds = Some(30);
        sound.spec.active_deadline_seconds = Some(5);
        let mut obj: Object = sound.into();
        let before = obj.clone();
        assert!(repair(&mut obj).is_empty());
        assert_eq!(obj, before);
    }
}
