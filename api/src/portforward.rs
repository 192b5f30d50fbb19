//! `pods/{name}/portforward`: bytes carried between an API client and a port inside a pod's
//! network namespace, so forwarding works alike for CNI, hostNetwork and loopback-only pods.
//!
//! The protocol, `coracle-portforward.v1`, is plain HTTP/1.1 Upgrade. Each direction of a
//! forwarded connection travels on its own upgraded request ("leg"), and the two are paired
//! by a session id (the protocol was shaped by an HTTP server that could not read an upgraded
//! connection on one thread while another wrote it, and `coracle port-forward` speaks it):
//!
//! 1. `POST /api/v1/namespaces/NS/pods/NAME/portforward?ports=PORT` with
//!    `Connection: Upgrade` and `Upgrade: coracle-portforward.v1`. The daemon connects to
//!    `127.0.0.1:PORT` inside the pod's network namespace (the host's for host-network pods);
//!    any failure is an ordinary `Status` answer. On success: `101 Switching Protocols` with
//!    `X-Coracle-Portforward-Session: ID`, then the pod's bytes until the pod ends its side.
//! 2. The same request with `&session=ID`, within 10 s: `101`, after which the client's
//!    bytes go to the pod; the client ending its stream half-closes the pod connection.
//!
//! A broken leg closes the pod connection both ways, which ends the other leg too. Stock
//! kubectl asks for SPDY/3.1 or WebSocket here and gets a 400 naming this protocol instead
//! of a hang.

use super::context::ApiContext;
use super::errors::ApiError;
use super::http::Request;
use super::request::query_pairs;
use super::routes::{self, Route};
use coracle_config::core::Pod;
use coracle_config::object::Resource;
use coracle_proxy::endpoint_set::Backend;
use coracle_wire::stream::copy_flushing as pump;
use std::collections::HashMap;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `Upgrade` protocol both legs ask for, and the first leg's session header: one
/// definition for both ends, in the wire crate.
pub use coracle_wire::port_forward::{PROTOCOL, SESSION_HEADER};
/// How long a first leg waits for its second before the pod connection is closed.
const JOIN_WITHIN: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Pod connections whose first leg is streaming, waiting for (or joined by) the second leg;
/// one table per API server, kept in its context.
#[derive(Default)]
pub struct Sessions {
    waiting: Mutex<HashMap<String, Waiting>>,
}

struct Waiting {
    pod: TcpStream,
    /// The pod uid and port the session was opened for; the second leg must name the same.
    target: (String, u16),
    since: Instant,
}

/// One leg, ready to upgrade.
pub enum Leg {
    /// Pod → client, registered under `session` in `sessions`.
    Download { pod: TcpStream, session: String, sessions: Arc<Sessions> },
    /// Client → pod.
    Upload { pod: TcpStream },
}

/// Whether `url` names a pod's `portforward` subresource.
pub fn is_portforward(url: &str) -> bool {
    target(url.split('?').next().unwrap_or(url)).is_some()
}

/// `(namespace, pod name)` of a `…/namespaces/NS/pods/NAME/portforward` path.
fn target(path: &str) -> Option<(String, String)> {
    match routes::parse(path)? {
        Route::Resource(p) if p.resource.kind == "Pod" && p.subresource.as_deref() == Some("portforward") => {
            Some((p.namespace?, p.name?))
        }
        _ => None,
    }
}

/// Checks a port-forward request and opens (or finds) its pod connection; nothing is sent
/// to the client yet, so every failure can still be answered as a `Status`.
pub fn open(ctx: &ApiContext, request: &Request) -> Result<Leg, ApiError> {
    let (path, query) = request.url().split_once('?').unwrap_or((request.url(), ""));
    let method = request.method();
    if method != "POST" && method != "GET" {
        return Err(ApiError::MethodNotAllowed { method: method.into(), path: path.into() });
    }
    check_upgrade(request.header("Connection"), request.header("Upgrade"))?;
    let (namespace, name) = target(path).ok_or_else(|| ApiError::PathNotFound(path.into()))?;
    let pairs = query_pairs(query);
    let port = parse_port(pairs.iter().find(|(k, _)| k == "ports").map(|(_, v)| v.as_str()))?;
    let pod = running_pod(ctx, &namespace, &name)?;
    let uid = pod.metadata.uid.clone();
    if let Some((_, session)) = pairs.iter().find(|(k, _)| k == "session") {
        return Ok(Leg::Upload { pod: ctx.port_forwards.join(session, &(uid, port))? });
    }
    let netns = ctx.sandboxes.as_ref().and_then(|s| s.paths.netns_path(&uid));
    let helpers = ctx.sandboxes.as_ref().map(|s| &*s.helpers);
    let backend = Backend { addr: SocketAddr::from(([127, 0, 0, 1], port)), netns, pod_uid: uid.clone() };
    let pod_conn = smol::block_on(coracle_proxy::upstream::connect_tcp(&backend, CONNECT_TIMEOUT, helpers))
        .and_then(|s| s.into_inner())
        .and_then(|s| s.set_nonblocking(false).map(|()| s))
        .map_err(|e| {
            let place = backend
                .netns
                .as_ref()
                .map_or("the host's network namespace".to_string(), |p| format!("network namespace {}", p.display()));
            ApiError::Internal(format!(
                "error forwarding port {port} to pod {name}, uid {uid}: connecting to 127.0.0.1:{port} in {place}: {e}"
            ))
        })?;
    let session = new_session_id()?;
    let copy = pod_conn.try_clone().map_err(|e| ApiError::Internal(format!("duplicating the pod connection: {e}")))?;
    ctx.port_forwards.register(&session, Waiting { pod: copy, target: (uid, port), since: Instant::now() });
    Ok(Leg::Download { pod: pod_conn, session, sessions: ctx.port_forwards.clone() })
}

/// Only our own protocol upgrades; kubectl's SPDY/WebSocket get an answer that says so.
fn check_upgrade(connection: Option<&str>, upgrade: Option<&str>) -> Result<(), ApiError> {
    let upgrading = connection.is_some_and(|c| c.to_ascii_lowercase().contains("upgrade"));
    match upgrade.map(str::trim) {
        Some(p) if upgrading && p.eq_ignore_ascii_case(PROTOCOL) => Ok(()),
        Some(p) if !p.is_empty() => Err(ApiError::BadRequest(format!(
            "port-forward over {p} is not supported: coracled speaks {PROTOCOL} (HTTP/1.1 Upgrade); \
             use `coracle port-forward`"
        ))),
        _ => Err(ApiError::BadRequest(format!(
            "port-forward needs `Connection: Upgrade` and `Upgrade: {PROTOCOL}`; use `coracle port-forward`"
        ))),
    }
}

fn parse_port(value: Option<&str>) -> Result<u16, ApiError> {
    let value = value.ok_or_else(|| ApiError::BadRequest("port-forward needs a ports=PORT parameter".into()))?;
    value
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ApiError::BadRequest(format!("ports={value:?}: expected one port number between 1 and 65535")))
}

fn running_pod(ctx: &ApiContext, namespace: &str, name: &str) -> Result<Pod, ApiError> {
    let not_found = || ApiError::NotFound { resource: &Pod::INFO, name: name.to_string() };
    let pod = (*ctx.store.get_as::<Pod>(namespace, name).ok_or_else(not_found)?).clone();
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
    if phase != "Running" || pod.metadata.deletion_timestamp.is_some() {
        return Err(ApiError::BadRequest(format!(
            "unable to forward port because pod is not running. Current status={phase}"
        )));
    }
    Ok(pod)
}

/// 128 random bits from the kernel, in hex: a second leg cannot be joined by guessing.
fn new_session_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| ApiError::Internal(format!("reading /dev/urandom for a session id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Waiting>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a first leg's pod connection; sessions never joined in time are closed here.
    fn register(&self, session: &str, waiting: Waiting) {
        let mut map = self.lock();
        map.retain(|id, w| {
            let fresh = w.since.elapsed() < JOIN_WITHIN;
            if !fresh {
                log::debug!("port-forward session {id} was never joined; closing its pod connection");
                let _ = w.pod.shutdown(Shutdown::Both);
            }
            fresh
        });
        map.insert(session.to_string(), waiting);
    }

    /// The pod connection of a session, taken out so no third leg can join.
    fn join(&self, session: &str, target: &(String, u16)) -> Result<TcpStream, ApiError> {
        let mut map = self.lock();
        match map.remove(session) {
            Some(w) if &w.target == target => Ok(w.pod),
            Some(w) => {
                let message = format!("port-forward session {session} was opened for another pod or port");
                map.insert(session.to_string(), w);
                Err(ApiError::BadRequest(message))
            }
            None => Err(ApiError::Status {
                code: 404,
                reason: "NotFound",
                message: format!("port-forward session {session} not found: never opened, expired or already joined"),
            }),
        }
    }

    fn forget(&self, session: &str) {
        self.lock().remove(session);
    }
}

impl Leg {
    /// Answers 101 and carries this leg's bytes until its direction ends.
    pub fn run(self, request: Request) {
        match self {
            Leg::Download { mut pod, session, sessions } => {
                let id = [(SESSION_HEADER.to_string(), session.clone())];
                let result = request.upgrade(PROTOCOL, &id).and_then(|mut client| pump(&mut pod, &mut client));
                sessions.forget(&session);
                if let Err(e) = result {
                    log::debug!("port-forward {session}: pod → client ended: {e}");
                    let _ = pod.shutdown(Shutdown::Both);
                }
            }
            Leg::Upload { mut pod } => {
                // The client may be quiet for as long as it likes: no read deadline.
                let upgraded = request.upgrade(PROTOCOL, &[]).and_then(|c| c.without_read_timeout());
                match upgraded.and_then(|mut client| pump(&mut client, &mut pod)) {
                    Ok(_) => {
                        let _ = pod.shutdown(Shutdown::Write);
                    }
                    Err(e) => {
                        log::debug!("port-forward: client → pod ended: {e}");
                        let _ = pod.shutdown(Shutdown::Both);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pod_portforward_paths_are_claimed() {
        assert!(is_portforward("/api/v1/namespaces/default/pods/web/portforward?ports=80"));
        assert!(!is_portforward("/api/v1/namespaces/default/pods/web/log"));
        assert!(!is_portforward("/api/v1/namespaces/default/services/web/portforward"));
        assert!(!is_portforward("/api/v1/pods"));
    }

    #[test]
    fn kubectl_protocols_get_a_clear_refusal() {
        assert!(check_upgrade(Some("Upgrade"), Some(PROTOCOL)).is_ok());
        let spdy = check_upgrade(Some("Upgrade"), Some("SPDY/3.1")).unwrap_err().to_string();
        assert!(spdy.contains("SPDY/3.1 is not supported") && spdy.contains(PROTOCOL), "{spdy}");
        let ws = check_upgrade(Some("Upgrade"), Some("websocket")).unwrap_err().to_string();
        assert!(ws.contains("websocket is not supported"), "{ws}");
        let plain = check_upgrade(None, None).unwrap_err().to_string();
        assert!(plain.contains("needs `Connection: Upgrade`"), "{plain}");
        assert!(check_upgrade(Some("keep-alive"), Some(PROTOCOL)).is_err());
    }

    #[test]
    fn ports_must_be_one_number() {
        assert_eq!(parse_port(Some("8080")).unwrap(), 8080);
        for bad in ["0", "http", "80,81", "70000", ""] {
            let e = parse_port(Some(bad)).unwrap_err().to_string();
            assert!(e.contains(&format!("ports={bad:?}")), "{e}");
        }
        assert!(parse_port(None).is_err());
    }

    #[test]
    fn a_session_is_joined_once_and_only_for_its_target() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let conn = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let session = new_session_id().unwrap();
        assert_eq!(session.len(), 32);
        let target = ("uid-1".to_string(), 80);
        let sessions = Sessions::default();
        sessions.register(&session, Waiting { pod: conn, target: target.clone(), since: Instant::now() });
        let wrong = sessions.join(&session, &("uid-2".to_string(), 80)).unwrap_err();
        assert!(wrong.to_string().contains("another pod or port"), "{wrong}");
        sessions.join(&session, &target).unwrap();
        let again = sessions.join(&session, &target).unwrap_err();
        assert_eq!(again.status().code, 404, "{again}");
    }
}
