//! Probes and lifecycle hooks: exactly one handler each (exec, httpGet, tcpSocket, a hook's
//! sleep), the handler's own fields, and a probe's timings.

use super::field::{quote, FieldError, Path};
use super::names;
use super::pod::{at_most_max_seconds, nonnegative};
use crate::core::{ExecAction, HttpGetAction, LifecycleHandler, Probe, TcpSocketAction};
use crate::IntOrString;

pub(super) fn validate_probe(probe: &Probe, path: &Path, errs: &mut Vec<FieldError>) {
    let actions = Actions { exec: &probe.exec, http_get: &probe.http_get, tcp_socket: &probe.tcp_socket };
    actions.validate(&[], path, errs);
    for (field, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        if let Some(v) = v {
            nonnegative(v as i64, &path.child(field), errs);
        }
    }
    if let Some(g) = probe.termination_grace_period_seconds {
        let p = path.child("terminationGracePeriodSeconds");
        if g <= 0 {
            errs.push(FieldError::invalid(&p, g.to_string(), "must be greater than 0"));
        }
        at_most_max_seconds(g, &p, errs);
    }
}

pub(super) fn lifecycle_handler(h: &LifecycleHandler, grace: i64, path: &Path, errs: &mut Vec<FieldError>) {
    let actions = Actions { exec: &h.exec, http_get: &h.http_get, tcp_socket: &h.tcp_socket };
    actions.validate(&[("sleep", h.sleep.is_some())], path, errs);
    if let Some(s) = &h.sleep {
        if s.seconds < 0 || s.seconds > grace {
            errs.push(FieldError::invalid(
                &path.child("sleep").child("seconds"),
                s.seconds.to_string(),
                &format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
            ));
        }
    }
}

/// The handlers probes and lifecycle hooks both have.
struct Actions<'a> {
    exec: &'a Option<ExecAction>,
    http_get: &'a Option<HttpGetAction>,
    tcp_socket: &'a Option<TcpSocketAction>,
}

impl Actions<'_> {
    /// Exactly one handler among these and `others` (whose own checks are the caller's), and
    /// each of these that is set valid.
    fn validate(&self, others: &[(&str, bool)], path: &Path, errs: &mut Vec<FieldError>) {
        let mut handlers = vec![
            ("exec", self.exec.is_some()),
            ("httpGet", self.http_get.is_some()),
            ("tcpSocket", self.tcp_socket.is_some()),
        ];
        handlers.extend_from_slice(others);
        one_handler(&handlers, path, errs);
        if let Some(e) = self.exec {
            exec(e, &path.child("exec"), errs);
        }
        if let Some(h) = self.http_get {
            http_get(h, &path.child("httpGet"), errs);
        }
        if let Some(t) = self.tcp_socket {
            tcp_socket(t, &path.child("tcpSocket"), errs);
        }
    }
}

/// Exactly one handler: none is `Required`, each extra one `Forbidden`.
fn one_handler(handlers: &[(&str, bool)], path: &Path, errs: &mut Vec<FieldError>) {
    let mut seen = 0;
    for (name, set) in handlers {
        if *set {
            if seen > 0 {
                errs.push(FieldError::forbidden(&path.child(name), "may not specify more than 1 handler type"));
            }
            seen += 1;
        }
    }
    if seen == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn exec(e: &ExecAction, path: &Path, errs: &mut Vec<FieldError>) {
    if e.command.is_empty() {
        errs.push(FieldError::required(&path.child("command"), ""));
    }
}

fn http_get(h: &HttpGetAction, path: &Path, errs: &mut Vec<FieldError>) {
    if h.path.as_deref() == Some("") {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    port_num_or_name(&h.port, &path.child("port"), errs);
    if let Some(s) = &h.scheme {
        if s != "HTTP" && s != "HTTPS" {
            errs.push(FieldError::not_supported(&path.child("scheme"), s, &["HTTP", "HTTPS"]));
        }
    }
}

fn tcp_socket(t: &TcpSocketAction, path: &Path, errs: &mut Vec<FieldError>) {
    port_num_or_name(&t.port, &path.child("port"), errs);
}

/// A port given as a number (1–65535) or as a container port's name.
pub fn port_num_or_name(port: &IntOrString, path: &Path, errs: &mut Vec<FieldError>) {
    match port {
        IntOrString::Int(n) => {
            for msg in names::port_number(*n) {
                errs.push(FieldError::invalid(path, n.to_string(), &msg));
            }
        }
        IntOrString::String(s) => {
            for msg in names::port_name(s) {
                errs.push(FieldError::invalid(path, quote(s), &msg));
            }
        }
    }
}
