//! httpGet and tcpSocket probes: connect to the pod IP, or to loopback inside the pod's
//! network namespace (entered with setns on a short-lived thread) when the pod has no IP.

use super::Outcome;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where a network probe connects.
#[derive(Clone, Debug)]
pub struct NetTarget {
    /// The address to connect to (`host`, the pod IP, or loopback in `netns`).
    pub ip: IpAddr,
    /// The pod's network namespace to enter first; None connects from the host.
    pub netns: Option<PathBuf>,
}

/// Runs `f` inside the network namespace at `netns` on a thread of its own (a thread that
/// has entered a namespace is not reused), or here when `netns` is None.
pub fn in_netns<T: Send + 'static>(netns: Option<&Path>, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    let Some(netns) = netns.map(Path::to_path_buf) else { return Ok(f()) };
    std::thread::Builder::new()
        .name("probe-netns".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let file = std::fs::File::open(&netns).map_err(|e| format!("open {}: {e}", netns.display()))?;
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("enter network namespace {}: {e}", netns.display()))?;
            Ok(f())
        })
        .map_err(|e| format!("spawning a probe thread: {e}"))?
        .join()
        .map_err(|_| "probe thread panicked".to_string())?
}

fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("dial tcp {addr}: connect: {e}"))
}

/// tcpSocket: success when the connection is accepted.
pub fn tcp(target: &NetTarget, port: u16, timeout: Duration) -> Outcome {
    let addr = SocketAddr::new(target.ip, port);
    match in_netns(target.netns.as_deref(), move || connect(addr, timeout).map(drop)) {
        Ok(Ok(())) => Outcome::Success,
        Ok(Err(e)) | Err(e) => Outcome::Failure(e),
    }
}

/// An httpGet probe's request.
#[derive(Clone, Debug)]
pub struct HttpRequest {
    /// Request path, `/` by default.
    pub path: String,
    /// Port on the target.
    pub port: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

/// httpGet: success on a status in 200..400 within `timeout`.
pub fn http(target: &NetTarget, request: HttpRequest, timeout: Duration) -> Outcome {
    let addr = SocketAddr::new(target.ip, request.port);
    let result = in_netns(target.netns.as_deref(), move || http_status(addr, &request, timeout));
    match result {
        Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
        Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Ok(Err(e)) | Err(e) => Outcome::Failure(format!("Get \"http://{addr}\": {e}")),
    }
}

fn http_status(addr: SocketAddr, request: &HttpRequest, timeout: Duration) -> Result<u16, String> {
    let mut stream = connect(addr, timeout)?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| e.to_string())?;
    let path = if request.path.starts_with('/') { request.path.clone() } else { format!("/{}", request.path) };
    let mut text = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\nConnection: close\r\n"
    );
    for (name, value) in &request.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).map_err(|e| format!("write request: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).map_err(|e| format!("read response: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let code = line.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok());
    code.ok_or_else(|| format!("malformed HTTP response: {:?}", line.lines().next().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(status: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
            }
        });
        port
    }

    fn local() -> NetTarget {
        NetTarget { ip: IpAddr::from([127, 0, 0, 1]), netns: None }
    }

    #[test]
    fn http_success_is_2xx_and_3xx() {
        let t = Duration::from_secs(5);
        let req = |port| HttpRequest { path: "/healthz".into(), port, headers: vec![] };
        assert_eq!(http(&local(), req(serve_once("200 OK")), t), Outcome::Success);
        assert_eq!(http(&local(), req(serve_once("302 Found")), t), Outcome::Success);
        let failed = http(&local(), req(serve_once("500 Internal Server Error")), t);
        assert!(matches!(failed, Outcome::Failure(m) if m.contains("statuscode: 500")));
    }

    #[test]
    fn tcp_needs_a_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(tcp(&local(), port, Duration::from_secs(1)), Outcome::Success);
        drop(listener);
        assert!(matches!(tcp(&local(), port, Duration::from_secs(1)), Outcome::Failure(m) if m.contains("connect")));
    }
}
