//! Pod and container status exactly as Kubernetes shows it: states and reasons, phase,
//! conditions and QoS class. Pure functions: the pod worker feeds them what it observed.

use coracle_config::core::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
};
use coracle_config::meta::Condition;
use coracle_runtime::ContainerState as RuntimeState;
use std::time::Duration;

/// The pod's restart policy, `Always` by default.
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec.restart_policy.as_deref().unwrap_or("Always")
}

/// Whether a container that exited with `exit_code` is started again under `policy`.
/// Init containers treat `Always` as `OnFailure`.
pub fn should_restart(policy: &str, exit_code: i32, init: bool) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ if init => exit_code != 0,
        _ => true,
    }
}

/// `coracle://<id>`, the containerID the status shows.
pub fn container_id_uri(id: &str) -> String {
    format!("coracle://{id}")
}

/// A waiting state.
pub fn waiting(reason: &str, message: impl Into<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: reason.to_string(), message: message.into() }),
        ..Default::default()
    }
}

/// A running state since `started_at`.
pub fn running(started_at: &str) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning { started_at: Some(started_at.to_string()).filter(|s| !s.is_empty()) }),
        ..Default::default()
    }
}

/// A terminated state from what the runtime recorded. `oom`: the container's cgroup counted
/// an OOM kill, so a SIGKILL is reported as OOMKilled.
pub fn terminated(exit: &RuntimeState, oom: bool, id: &str) -> Option<ContainerStateTerminated> {
    let RuntimeState::Exited { code, signal, finished_at, started_at, reason, message } = exit else { return None };
    let killed = *signal == Some(libc::SIGKILL) || *code == 137;
    let reason = match reason {
        Some(r) => r.clone(),
        None if oom && killed => "OOMKilled".into(),
        None if *code == 0 => "Completed".into(),
        None => "Error".into(),
    };
    let non_empty = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
    Some(ContainerStateTerminated {
        exit_code: if oom && killed { 137 } else { *code },
        signal: *signal,
        reason,
        message: message.clone().unwrap_or_default(),
        started_at: non_empty(started_at),
        finished_at: non_empty(finished_at),
        container_id: Some(container_id_uri(id)),
    })
}

/// The CrashLoopBackOff message, word for word as the kubelet writes it.
pub fn crash_loop_message(delay: Duration, container: &str, pod: &Pod) -> String {
    format!(
        "back-off {} restarting failed container={container} pod={}_{}({})",
        super::backoff::go_duration(delay),
        pod.metadata.name,
        pod.metadata.namespace,
        pod.metadata.uid
    )
}

fn is_terminated_with(s: &ContainerStatus, ok: bool) -> bool {
    s.state.terminated.as_ref().is_some_and(|t| (t.exit_code == 0) == ok)
}

/// True once every init container has completed successfully.
pub fn initialized(init: &[ContainerStatus], init_count: usize) -> bool {
    init.len() == init_count && init.iter().all(|s| is_terminated_with(s, true))
}

/// The pod phase from its containers' statuses (the kubelet's `getPhase`).
pub fn phase(pod: &Pod, init: &[ContainerStatus], containers: &[ContainerStatus]) -> &'static str {
    let policy = restart_policy(pod);
    let init_failed = init.iter().any(|s| {
        is_terminated_with(s, false)
            || (s.state.waiting.is_some() && s.last_state.terminated.as_ref().is_some_and(|t| t.exit_code != 0))
    });
    if init_failed && policy == "Never" {
        return "Failed";
    }
    if !initialized(init, pod.spec.init_containers.len()) {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for spec in &pod.spec.containers {
        let Some(s) = containers.iter().find(|s| s.name == spec.name) else {
            waiting += 1;
            continue;
        };
        if s.state.running.is_some() {
            running += 1;
        } else if let Some(t) = &s.state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s.last_state.terminated.is_some() {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == 0 {
        return "Pending";
    }
    match policy {
        "Always" => "Running",
        _ if stopped == succeeded => "Succeeded",
        "Never" => "Failed",
        _ => "Running",
    }
}

/// Guaranteed, Burstable or BestEffort from the containers' requests and limits.
pub fn qos_class(pod: &Pod) -> &'static str {
    let all: Vec<_> = pod.spec.init_containers.iter().chain(&pod.spec.containers).collect();
    let any_set = all.iter().any(|c| !c.resources.is_empty());
    if !any_set {
        return "BestEffort";
    }
    let guaranteed = all.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = c.resources.limits.get(*r);
            let request = c.resources.requests.get(*r).or(limit);
            limit.is_some() && request.map(|q| q.milli_value()) == limit.map(|q| q.milli_value())
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// PodScheduled, Initialized, ContainersReady and Ready, keeping each one's
/// lastTransitionTime unless its status flipped.
pub fn conditions(previous: &[Condition], initialized: bool, ready: bool, now: &str) -> Vec<Condition> {
    let make = |type_: &str, ok: bool, reason: &str| {
        let status = if ok { "True" } else { "False" };
        let old = previous.iter().find(|c| c.type_ == type_);
        let transition = match old {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Some(now.to_string()),
        };
        Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            last_probe_time: None,
            last_update_time: None,
            last_transition_time: transition,
            reason: if ok { String::new() } else { reason.to_string() },
            message: String::new(),
        }
    };
    vec![
        make("Initialized", initialized, "ContainersNotInitialized"),
        make("Ready", ready, "ContainersNotReady"),
        make("ContainersReady", ready, "ContainersNotReady"),
        make("PodScheduled", true, ""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{Container, ResourceRequirements};
    use coracle_config::Quantity;

    fn pod(policy: &str, names: &[&str]) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = "web".into();
        p.metadata.namespace = "default".into();
        p.metadata.uid = "u1".into();
        p.spec.restart_policy = Some(policy.into());
        p.spec.containers = names.iter().map(|n| Container { name: n.to_string(), ..Default::default() }).collect();
        p
    }

    fn status(name: &str, state: ContainerState, last: ContainerState) -> ContainerStatus {
        ContainerStatus { name: name.into(), state, last_state: last, ..Default::default() }
    }

    fn exited(code: i32) -> ContainerState {
        let t = ContainerStateTerminated { exit_code: code, ..Default::default() };
        ContainerState { terminated: Some(t), ..Default::default() }
    }

    #[test]
    fn phases_follow_the_kubelet() {
        let p = pod("Always", &["a", "b"]);
        let none = ContainerState::default();
        assert_eq!(phase(&p, &[], &[]), "Pending");
        let run = running("t");
        assert_eq!(phase(&p, &[], &[status("a", run.clone(), none.clone())]), "Pending");
        let both = [status("a", run.clone(), none.clone()), status("b", run.clone(), none.clone())];
        assert_eq!(phase(&p, &[], &both), "Running");
        let crash = waiting("CrashLoopBackOff", "");
        let looping = [status("a", crash.clone(), exited(1)), status("b", crash, exited(1))];
        assert_eq!(phase(&p, &[], &looping), "Running");
        let never = pod("Never", &["a"]);
        assert_eq!(phase(&never, &[], &[status("a", exited(0), none.clone())]), "Succeeded");
        assert_eq!(phase(&never, &[], &[status("a", exited(2), none.clone())]), "Failed");
        let on_failure = pod("OnFailure", &["a"]);
        assert_eq!(phase(&on_failure, &[], &[status("a", exited(0), none.clone())]), "Succeeded");
        let mut with_init = pod("Never", &["a"]);
        with_init.spec.init_containers = vec![Container { name: "i".into(), ..Default::default() }];
        assert_eq!(phase(&with_init, &[status("i", run, none.clone())], &[]), "Pending");
        assert_eq!(phase(&with_init, &[status("i", exited(3), none)], &[]), "Failed");
    }

    #[test]
    fn restart_rules_match_the_policy() {
        assert!(should_restart("Always", 0, false));
        assert!(!should_restart("Always", 0, true));
        assert!(should_restart("OnFailure", 1, false));
        assert!(!should_restart("OnFailure", 0, false));
        assert!(!should_restart("Never", 1, false));
    }

    #[test]
    fn terminated_reasons_and_oom() {
        let exit = |code, signal| RuntimeState::Exited {
            code,
            signal,
            finished_at: "f".into(),
            started_at: "s".into(),
            reason: None,
            message: None,
        };
        assert_eq!(terminated(&exit(0, None), false, "x").unwrap().reason, "Completed");
        assert_eq!(terminated(&exit(1, None), false, "x").unwrap().reason, "Error");
        let oom = terminated(&exit(137, Some(9)), true, "x").unwrap();
        assert_eq!((oom.reason.as_str(), oom.exit_code), ("OOMKilled", 137));
        assert_eq!(terminated(&exit(137, Some(9)), false, "x").unwrap().reason, "Error");
        assert_eq!(oom.container_id.as_deref(), Some("coracle://x"));
    }

    #[test]
    fn crash_loop_message_is_the_kubelets() {
        let p = pod("Always", &["app"]);
        assert_eq!(
            crash_loop_message(Duration::from_secs(40), "app", &p),
            "back-off 40s restarting failed container=app pod=web_default(u1)"
        );
    }

    #[test]
    fn qos_classes() {
        let mut p = pod("Always", &["a"]);
        assert_eq!(qos_class(&p), "BestEffort");
        let q = |s: &str| Quantity::parse(s).unwrap();
        p.spec.containers[0].resources = ResourceRequirements {
            limits: [("cpu".to_string(), q("500m")), ("memory".to_string(), q("64Mi"))].into(),
            requests: Default::default(),
        };
        assert_eq!(qos_class(&p), "Guaranteed");
        p.spec.containers[0].resources.requests.insert("cpu".into(), q("100m"));
        assert_eq!(qos_class(&p), "Burstable");
    }

    #[test]
    fn conditions_keep_transition_times_until_they_flip() {
        let first = conditions(&[], true, false, "t1");
        let again = conditions(&first, true, false, "t2");
        assert_eq!(first, again);
        let flipped = conditions(&again, true, true, "t3");
        let ready = flipped.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.last_transition_time.as_deref()), ("True", Some("t3")));
        let init = flipped.iter().find(|c| c.type_ == "Initialized").unwrap();
        assert_eq!(init.last_transition_time.as_deref(), Some("t1"));
    }
}
