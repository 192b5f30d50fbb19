//! Probes and lifecycle hooks: when each probe of a running container is due, what its
//! verdict does (Unhealthy events, a restart, readiness), and the postStart and preStop
//! hooks. Their exec actions go through the container runtime's `exec`.

use super::{all_containers, grace_period, PodWorker};
use crate::events::{self, Reason};
use crate::probes::{self, exec, network, Outcome, ProbeKind, ProbeState, Verdict};
use crate::termination;
use coracle_config::core::{Container, ExecAction, HttpGetAction, LifecycleHandler, Pod, Probe, TcpSocketAction};
use coracle_config::meta::ObjectReference;
use std::time::{Duration, Instant};

/// The longest a postStart hook may run. The kubelet waits for as long as it takes; here a
/// hung hook would also hold the pod's deletion, so after this long it counts as failed.
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// The action of a probe or lifecycle hook: exactly one is set (validation sees to it).
#[derive(Clone, Copy)]
struct Handler<'a> {
    exec: &'a Option<ExecAction>,
    http_get: &'a Option<HttpGetAction>,
    tcp_socket: &'a Option<TcpSocketAction>,
}

impl<'a> Handler<'a> {
    fn of_probe(p: &'a Probe) -> Handler<'a> {
        Handler { exec: &p.exec, http_get: &p.http_get, tcp_socket: &p.tcp_socket }
    }

    fn of_hook(h: &'a LifecycleHandler) -> Handler<'a> {
        Handler { exec: &h.exec, http_get: &h.http_get, tcp_socket: &h.tcp_socket }
    }
}

/// The startup, liveness and readiness probes of a container that started at `started`.
pub(super) fn make_probes(c: &Container, started: Instant) -> Vec<ProbeState> {
    [
        (&c.startup_probe, ProbeKind::Startup),
        (&c.liveness_probe, ProbeKind::Liveness),
        (&c.readiness_probe, ProbeKind::Readiness),
    ]
    .into_iter()
    .filter_map(|(p, kind)| p.clone().map(|p| ProbeState::new(p, kind, started)))
    .collect()
}

impl PodWorker {
    /// Runs the probes that are due on running container `name`.
    pub(super) fn run_probes(&mut self, pod: &Pod, name: &str, wake: &mut Instant) {
        let now = Instant::now();
        let reference = self.reference(pod, name);
        let Some(slot) = self.slots.get(name) else { return };
        let startup_done = slot.probe(ProbeKind::Startup).is_none_or(|p| p.passing == Some(true));
        for p in 0..slot.probes.len() {
            let Some(state) = self.slots.get(name).map(|s| &s.probes[p]) else { return };
            let gated = state.kind != ProbeKind::Startup && !startup_done;
            if gated || (state.kind == ProbeKind::Startup && state.passing == Some(true)) {
                continue;
            }
            if state.next_run() > now {
                *wake = (*wake).min(state.next_run());
                continue;
            }
            let outcome = self.run_handler(pod, name, Handler::of_probe(&state.probe), state.timing().timeout);
            let Some(state) = self.slots.get_mut(name).map(|s| &mut s.probes[p]) else { return };
            let kind = state.kind;
            let verdict = state.record(outcome, now);
            *wake = (*wake).min(state.next_run());
            match verdict {
                Verdict::Unchanged | Verdict::Passed => {}
                Verdict::Failed(message) => self.unhealthy(&reference, kind, &message),
                Verdict::Tripped(message) => {
                    self.unhealthy(&reference, kind, &message);
                    if kind != ProbeKind::Readiness {
                        let what = if kind == ProbeKind::Liveness { "liveness" } else { "startup" };
                        let message = format!("Container {name} failed {what} probe, will be restarted");
                        events::record(&self.ctx.recorder, &reference, Reason::Killing, message);
                        self.stop_container(pod, name);
                        *wake = Instant::now();
                        return;
                    }
                }
            }
        }
    }

    /// Stops container `name`'s running instance for a restart: its preStop hook, SIGTERM,
    /// the pod's grace period, SIGKILL. The exit is seen (and acted on) by the next pass.
    pub(super) fn stop_container(&self, pod: &Pod, name: &str) {
        let Some(id) = self.slots.get(name).and_then(|s| s.id.clone()) else { return };
        let pre_stop = |name: &str, budget: Duration| self.run_pre_stop(pod, name, budget);
        termination::stop_container(&self.ctx, &self.uid, name, &id, grace_period(pod), &pre_stop);
    }

    fn unhealthy(&self, reference: &ObjectReference, kind: ProbeKind, message: &str) {
        events::record(
            &self.ctx.recorder,
            reference,
            Reason::Unhealthy,
            format!("{} probe failed: {message}", kind.as_str()),
        );
    }

    /// Runs an exec, httpGet or tcpSocket action (a probe's or a lifecycle hook's) against
    /// running container `name`.
    fn run_handler(&self, pod: &Pod, name: &str, handler: Handler, timeout: Duration) -> Outcome {
        let container = all_containers(pod).find(|(c, _)| c.name == name).map(|(c, _)| c);
        let ports = container.map(|c| c.ports.as_slice()).unwrap_or_default();
        let sandbox = self.sandbox.as_ref();
        let target = |host: Option<&String>| {
            let host_ip = host.and_then(|h| h.parse().ok());
            // A loopback-only pod's address (127.0.0.1) is only its own inside its namespace.
            let pod_ip = sandbox.and_then(|s| s.ip).filter(|ip| !ip.is_loopback());
            match (host_ip, pod_ip) {
                (Some(ip), _) | (None, Some(ip)) => network::NetTarget { ip, netns: None },
                (None, None) => network::NetTarget {
                    ip: [127, 0, 0, 1].into(),
                    netns: sandbox.and_then(|s| s.sandbox.netns_path.clone()),
                },
            }
        };
        if let Some(action) = handler.exec {
            let Some(id) = self.slots.get(name).and_then(|s| s.id.as_deref()) else {
                return Outcome::Failure("container is not running".into());
            };
            return exec::run(&*self.ctx.runtime, id, &action.command, timeout);
        }
        if let Some(action) = handler.http_get {
            if action.scheme.as_deref().is_some_and(|s| s.eq_ignore_ascii_case("https")) {
                return Outcome::Failure("httpGet scheme HTTPS is not supported by this node".into());
            }
            let port = match probes::resolve_port(&action.port, ports) {
                Ok(p) => p,
                Err(e) => return Outcome::Failure(e),
            };
            let request = network::HttpRequest {
                path: action.path.clone().unwrap_or_else(|| "/".into()),
                port,
                headers: action.http_headers.iter().map(|h| (h.name.clone(), h.value.clone())).collect(),
            };
            return network::http(&target(action.host.as_ref()), request, timeout);
        }
        if let Some(action) = handler.tcp_socket {
            return match probes::resolve_port(&action.port, ports) {
                Ok(port) => network::tcp(&target(action.host.as_ref()), port, timeout),
                Err(e) => Outcome::Failure(e),
            };
        }
        Outcome::Failure("names no handler (exec, httpGet or tcpSocket)".into())
    }

    /// Runs lifecycle hook `hook` of container `name` within `budget`.
    fn run_hook(&self, pod: &Pod, name: &str, hook: &LifecycleHandler, budget: Duration) -> Outcome {
        match &hook.sleep {
            Some(sleep) => {
                std::thread::sleep(Duration::from_secs(sleep.seconds.max(0) as u64).min(budget));
                Outcome::Success
            }
            None => self.run_handler(pod, name, Handler::of_hook(hook), budget.max(Duration::from_secs(1))),
        }
    }

    /// Runs container `name`'s preStop hook, if any, within `budget`; a failure is an event.
    pub(super) fn run_pre_stop(&self, pod: &Pod, name: &str, budget: Duration) {
        let container = all_containers(pod).find(|(c, _)| c.name == name).map(|(c, _)| c);
        let Some(hook) = container.and_then(|c| c.lifecycle.as_ref()?.pre_stop.as_ref()) else { return };
        if let Outcome::Failure(message) = self.run_hook(pod, name, hook, budget) {
            log::warn!("node: preStop hook of container {name} in pod {}: {message}", pod.metadata.name);
            events::record(
                &self.ctx.recorder,
                &self.reference(pod, name),
                Reason::FailedPreStopHook,
                format!("PreStopHook failed: {message}"),
            );
        }
    }

    /// Runs container `name`'s postStart hook, if any, right after its start, as the
    /// kubelet does: the pass waits for it, and a failed hook kills the container (which the
    /// restart policy then restarts, or not).
    pub(super) fn run_post_start(&self, pod: &Pod, container: &Container) {
        let Some(hook) = container.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) else { return };
        let name = container.name.as_str();
        let Outcome::Failure(message) = self.run_hook(pod, name, hook, POST_START_TIMEOUT) else { return };
        log::warn!("node: postStart hook of container {name} in pod {}: {message}", pod.metadata.name);
        let reference = self.reference(pod, name);
        let recorder = &self.ctx.recorder;
        events::record(recorder, &reference, Reason::FailedPostStartHook, format!("PostStartHook failed: {message}"));
        // The kubelet's words for this kill.
        events::record(recorder, &reference, Reason::Killing, "FailedPostStartHook".to_string());
        self.stop_container(pod, name);
    }
}
