//! `coracle port-forward TYPE/NAME [LOCAL:]REMOTE…`: local listeners whose connections reach
//! a port inside one Ready pod through coracled's `pods/{name}/portforward`, as kubectl's
//! port-forward does. Each connection travels on two upgraded requests, one per direction
//! (the protocol is described in the daemon's `api/portforward.rs`), so it works alike over
//! the unix socket and TCP, and for pods in every network mode.

use super::{decode, resolve_type, Context};
use crate::cli::PortForwardArgs;
use crate::client::{copy_flushing, with_query, Client};
use crate::error::CtlError;
use crate::selector::Selector;
use coracle_config::core::{Pod, Service};
use coracle_config::intstr::IntOrString;
use coracle_config::{Object, Resource, ResourceInfo};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};

pub use coracle_wire::port_forward::{PROTOCOL, SESSION_HEADER};

/// One forwarded port: local (0: any free one) → the port inside the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forward {
    pub local: u16,
    pub remote: u16,
}

/// Runs `port-forward`: listens, prints kubectl's lines, and forwards until interrupted.
pub fn run(ctx: &Context, args: &PortForwardArgs) -> Result<(), CtlError> {
    let (pod, service) = target_pod(ctx, &args.target)?;
    let forwards =
        args.ports.iter().map(|spec| resolve(spec, &pod, service.as_ref())).collect::<Result<Vec<_>, _>>()?;
    let addresses = listen_addresses(&args.address)?;
    let mut acceptors = Vec::new();
    for forward in forwards {
        for listener in bind(&addresses, forward)? {
            let address = listener.local_addr().map_err(|e| CtlError::client(format!("a listener's address: {e}")))?;
            outln!("Forwarding from {address} -> {}", forward.remote);
            let path = with_query(
                &format!("{}/portforward", ctx.object_path(pod_info(), &ctx.namespace, &pod.metadata.name)),
                &[("ports", &forward.remote.to_string())],
            );
            let client = ctx.client.clone();
            acceptors.push(std::thread::spawn(move || accept(listener, &client, &path, forward.remote)));
        }
    }
    let pod_path = ctx.object_path(pod_info(), &ctx.namespace, &pod.metadata.name);
    let uid = pod.metadata.uid.clone();
    let client = ctx.client.clone();
    std::thread::spawn(move || {
        let why = wait_until_gone(&client, &pod_path, &uid);
        // kubectl's words when its stream to the pod ends; the listeners go with the process.
        errln!("error: lost connection to pod ({why})");
        std::process::exit(1);
    });
    for acceptor in acceptors {
        let _ = acceptor.join();
    }
    Ok(())
}

/// How often the forwarded-to pod is looked at. Each connection is its own pair of
/// requests, so no stream breaks when the pod goes; this is what ends the command then.
const POD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Returns, saying why, once the pod at `path` (with `uid`) is deleted, replaced, terminating
/// or no longer running, or the daemon stops answering.
fn wait_until_gone(client: &Client, path: &str, uid: &str) -> String {
    loop {
        std::thread::sleep(POD_CHECK);
        let pod = match client.get(path) {
            // Through the object model's decoder: the ctl keeps no second copy of a pod's.
            Ok(value) => match Object::from_json(&Pod::INFO, value).map(Pod::try_from) {
                Ok(Ok(pod)) => pod,
                Ok(Err(other)) => return format!("not a pod: {}", other.info().kind),
                Err(e) => return format!("unreadable pod: {e}"),
            },
            Err(e) => return e.to_string(),
        };
        if pod.metadata.uid != *uid {
            return "the pod was replaced".into();
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return "the pod is terminating".into();
        }
        if phase(&pod) != "Running" {
            return format!("the pod is {}", phase(&pod));
        }
    }
}

fn pod_info() -> &'static ResourceInfo {
    ResourceInfo::lookup("po").expect("pods are registered")
}

/// The pod to forward to, and the Service it was chosen through (which maps the ports).
fn target_pod(ctx: &Context, target: &str) -> Result<(Pod, Option<Service>), CtlError> {
    let (type_, name) = target.split_once('/').unwrap_or(("pod", target));
    if name.is_empty() {
        return Err(CtlError::client(format!("resource name may not be empty: {target:?}")));
    }
    let info = resolve_type(type_)?;
    let object = decode(info, &ctx.get(info, &ctx.namespace, name)?)?;
    let (selector, service) = match object {
        Object::Pod(pod) => return running(pod).map(|p| (p, None)),
        Object::Service(svc) if svc.spec.selector.is_empty() => {
            return Err(CtlError::client(format!(
                "cannot attach to *v1.Service: invalid service '{name}': Service is defined without a selector"
            )))
        }
        Object::Service(svc) => {
            let text = svc.spec.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            (text, Some(svc))
        }
        Object::Deployment(d) => (d.spec.selector.to_sorted_query(), None),
        Object::ReplicaSet(rs) => (rs.spec.selector.to_sorted_query(), None),
        other => {
            return Err(CtlError::client(format!(
                "cannot port-forward to a {}: use a pod, service, deployment or replica set",
                other.info().kind
            )))
        }
    };
    let mut pods = Vec::new();
    for item in ctx.list(pod_info(), Some(&ctx.namespace), Some(&Selector::parse(&selector)?))? {
        if let Object::Pod(p) = decode(pod_info(), &item)? {
            pods.push(p);
        }
    }
    // Ready pods first (then Running ones), each group by name so the choice is stable.
    pods.sort_by_key(|p| (!is_ready(p), phase(p) != "Running", p.metadata.name.clone()));
    let pod = pods.into_iter().next().ok_or_else(|| CtlError::client(format!("no pods found for {target}")))?;
    running(pod).map(|p| (p, service))
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending")
}

fn is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// kubectl forwards only to running pods.
fn running(pod: Pod) -> Result<Pod, CtlError> {
    match phase(&pod) {
        "Running" => Ok(pod),
        other => {
            Err(CtlError::client(format!("unable to forward port because pod is not running. Current status={other}")))
        }
    }
}

/// `[LOCAL:]REMOTE` → ports. REMOTE is a port of the Service when there is one (by number or
/// name, mapped to the pod through its targetPort), else the pod's (by number or container
/// port name); LOCAL defaults to the port REMOTE names before that mapping, as in kubectl.
pub fn resolve(spec: &str, pod: &Pod, service: Option<&Service>) -> Result<Forward, CtlError> {
    let (local, remote) = match spec.split_once(':') {
        Some((local, remote)) => (Some(local), remote),
        None => (None, spec),
    };
    if remote.is_empty() {
        return Err(CtlError::client(format!("invalid port {spec:?}: expected [LOCAL_PORT:]REMOTE_PORT")));
    }
    let local = match local {
        None => None,
        Some("") => Some(0),
        Some(text) => Some(
            text.parse::<u16>().map_err(|_| CtlError::client(format!("invalid local port {text:?} in {spec:?}")))?,
        ),
    };
    let (named, in_pod) = match service {
        Some(svc) => {
            let port = service_port(svc, remote)?;
            (port, target_port(svc, port, pod)?)
        }
        None => {
            let port = match remote.parse::<u16>() {
                Ok(n) => n,
                Err(_) => container_port(pod, remote)?,
            };
            (port, port)
        }
    };
    if in_pod == 0 {
        return Err(CtlError::client(format!("invalid port {spec:?}: the remote port may not be 0")));
    }
    Ok(Forward { local: local.unwrap_or(named), remote: in_pod })
}

fn service_port(svc: &Service, remote: &str) -> Result<u16, CtlError> {
    let name = &svc.metadata.name;
    let port = match remote.parse::<i32>() {
        Ok(n) => svc.spec.ports.iter().find(|p| p.port == n),
        Err(_) => svc.spec.ports.iter().find(|p| p.name.as_deref() == Some(remote)),
    };
    let port = port.ok_or_else(|| CtlError::client(format!("Service {name} does not have a service port {remote}")))?;
    u16::try_from(port.port).map_err(|_| CtlError::client(format!("Service {name} has an invalid port {}", port.port)))
}

/// The container port a Service port reaches on `pod`.
fn target_port(svc: &Service, port: u16, pod: &Pod) -> Result<u16, CtlError> {
    let sp = svc.spec.ports.iter().find(|p| p.port == i32::from(port)).expect("service_port found it");
    match &sp.target_port {
        None | Some(IntOrString::Int(0)) => Ok(port),
        Some(IntOrString::Int(n)) => u16::try_from(*n)
            .map_err(|_| CtlError::client(format!("Service {} has an invalid targetPort {n}", svc.metadata.name))),
        Some(IntOrString::String(name)) => container_port(pod, name),
    }
}

fn container_port(pod: &Pod, name: &str) -> Result<u16, CtlError> {
    pod.spec
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| CtlError::client(format!("Pod '{}' does not have a named port '{name}'", pod.metadata.name)))
}

/// `--address`: `localhost` is 127.0.0.1 and ::1, anything else one IP address.
fn listen_addresses(flags: &[String]) -> Result<Vec<(IpAddr, bool)>, CtlError> {
    let mut out = Vec::new();
    for flag in flags.iter().flat_map(|f| f.split(',')).map(str::trim).filter(|f| !f.is_empty()) {
        if flag == "localhost" {
            // ::1 is best effort: a host without IPv6 still forwards on 127.0.0.1.
            out.push((IpAddr::V4(Ipv4Addr::LOCALHOST), true));
            out.push((IpAddr::V6(Ipv6Addr::LOCALHOST), false));
        } else {
            let ip = flag
                .parse::<IpAddr>()
                .map_err(|_| CtlError::client(format!("--address {flag:?}: expected localhost or an IP address")))?;
            out.push((ip, true));
        }
    }
    if out.is_empty() {
        return Err(CtlError::client("--address names no address to listen on"));
    }
    Ok(out)
}

/// Listeners for `forward` on every address; a free port picked on the first is used on all.
fn bind(addresses: &[(IpAddr, bool)], forward: Forward) -> Result<Vec<TcpListener>, CtlError> {
    let mut port = forward.local;
    let mut listeners = Vec::new();
    for &(ip, required) in addresses {
        match TcpListener::bind(SocketAddr::new(ip, port)) {
            Ok(listener) => {
                port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
                listeners.push(listener);
            }
            Err(e) if required => {
                return Err(CtlError::client(format!("unable to listen on {}: {e}", SocketAddr::new(ip, port))))
            }
            Err(e) => log::debug!("not listening on {}: {e}", SocketAddr::new(ip, port)),
        }
    }
    Ok(listeners)
}

fn accept(listener: TcpListener, client: &Client, path: &str, remote: u16) {
    let local = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    for conn in listener.incoming() {
        let conn = match conn {
            Ok(c) => c,
            Err(e) => {
                errln!("error: accepting a connection on port {local}: {e}");
                continue;
            }
        };
        outln!("Handling connection for {local}");
        let (client, path) = (client.clone(), path.to_string());
        std::thread::spawn(move || {
            if let Err(e) = forward_connection(&client, &path, conn) {
                errln!("error: an error occurred forwarding {local} -> {remote}: {e}");
            }
        });
    }
}

/// Opens both legs for one local connection and carries its bytes until both sides end.
fn forward_connection(client: &Client, path: &str, local: TcpStream) -> Result<(), CtlError> {
    let (headers, mut down) = client.upgrade("POST", path, PROTOCOL)?;
    let session = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(SESSION_HEADER))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| CtlError::client(format!("POST {path}: the answer carries no {SESSION_HEADER}")))?;
    let (_, up) = client.upgrade("POST", &with_query(path, &[("session", &session)]), PROTOCOL)?;
    let mut reader = local.try_clone().map_err(|e| CtlError::client(format!("duplicating a local socket: {e}")))?;
    let upload = std::thread::spawn(move || {
        let mut up = up;
        // Dropping `up` at the end tells the daemon the client is done sending.
        copy_flushing(&mut reader, &mut up)
    });
    let mut writer = &local;
    let downloaded = copy_flushing(&mut down, &mut writer);
    let _ = local.shutdown(if downloaded.is_ok() { Shutdown::Write } else { Shutdown::Both });
    let uploaded = upload.join().unwrap_or_else(|_| Err(io::Error::other("the upload thread panicked")));
    downloaded.and(uploaded).map(|_| ()).map_err(|e| CtlError::client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::{Container, ContainerPort, ServicePort};

    fn pod() -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = "web-1".into();
        pod.spec.containers.push(Container {
            name: "web".into(),
            ports: vec![ContainerPort { name: Some("http".into()), container_port: 8080, ..Default::default() }],
            ..Default::default()
        });
        pod
    }

    fn service(target: Option<IntOrString>) -> Service {
        let mut svc = Service::default();
        svc.metadata.name = "web".into();
        svc.spec.ports.push(ServicePort {
            name: Some("front".into()),
            port: 80,
            target_port: target,
            ..Default::default()
        });
        svc
    }

    #[test]
    fn pod_ports_by_number_and_name() {
        let p = pod();
        assert_eq!(resolve("9000", &p, None).unwrap(), Forward { local: 9000, remote: 9000 });
        assert_eq!(resolve("7000:8080", &p, None).unwrap(), Forward { local: 7000, remote: 8080 });
        assert_eq!(resolve(":8080", &p, None).unwrap(), Forward { local: 0, remote: 8080 });
        assert_eq!(resolve("http", &p, None).unwrap(), Forward { local: 8080, remote: 8080 });
        let e = resolve("grpc", &p, None).unwrap_err().to_string();
        assert_eq!(e, "error: Pod 'web-1' does not have a named port 'grpc'");
        assert!(resolve("x:80", &p, None).unwrap_err().to_string().contains("invalid local port \"x\""));
        assert!(resolve("80:", &p, None).is_err());
    }

    #[test]
    fn service_ports_map_through_the_target_port() {
        let p = pod();
        let named = service(Some(IntOrString::String("http".into())));
        assert_eq!(resolve("80", &p, Some(&named)).unwrap(), Forward { local: 80, remote: 8080 });
        assert_eq!(resolve("front", &p, Some(&named)).unwrap(), Forward { local: 80, remote: 8080 });
        assert_eq!(resolve("9999:80", &p, Some(&named)).unwrap(), Forward { local: 9999, remote: 8080 });
        let numbered = service(Some(IntOrString::Int(8081)));
        assert_eq!(resolve("80", &p, Some(&numbered)).unwrap(), Forward { local: 80, remote: 8081 });
        assert_eq!(resolve("80", &p, Some(&service(None))).unwrap(), Forward { local: 80, remote: 80 });
        let e = resolve("81", &p, Some(&named)).unwrap_err().to_string();
        assert_eq!(e, "error: Service web does not have a service port 81");
    }

    #[test]
    fn localhost_is_both_loopbacks_and_only_ipv4_is_required() {
        let a = listen_addresses(&["localhost".into()]).unwrap();
        assert_eq!(a, vec![("127.0.0.1".parse().unwrap(), true), ("::1".parse().unwrap(), false)]);
        let a = listen_addresses(&["127.0.0.1,0.0.0.0".into()]).unwrap();
        assert_eq!(a.len(), 2);
        assert!(listen_addresses(&["board".into()]).unwrap_err().to_string().contains("--address \"board\""));
    }

    #[test]
    fn a_picked_port_is_the_same_on_every_address() {
        let addresses = listen_addresses(&["localhost".into()]).unwrap();
        let listeners = bind(&addresses, Forward { local: 0, remote: 80 }).unwrap();
        let ports: Vec<u16> = listeners.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert!(!ports.is_empty() && ports.iter().all(|p| *p == ports[0] && *p != 0), "{ports:?}");
    }
}
