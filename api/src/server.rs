//! The API's HTTP edge: the unix-socket and TCP listeners, a thread per request (watches hold
//! theirs for as long as they stream), bearer-token auth on TCP, and turning replies into
//! HTTP responses.

use super::context::ApiContext;
use super::errors::ApiError;
use super::handlers::{self, Reply};
use super::portforward;
use super::request::{self, HttpParts, MAX_BODY};
use super::socket_group::{self, SocketAccess};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tiny_http::{Header, Request, Response, Server};

/// Where and how the API is served.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The unix socket (mode 0660); its parent directory is created.
    pub socket: PathBuf,
    /// The group given the socket (root:GROUP 0660) when /etc/group has it; None: root only.
    pub socket_group: Option<String>,
    /// `ADDR:PORT` for the TCP listener, which requires `token`.
    pub listen: Option<String>,
    /// The bearer token TCP clients must present.
    pub token: Option<String>,
}

/// The running listeners.
pub struct ApiServer {
    servers: Vec<Arc<Server>>,
    acceptors: Vec<JoinHandle<()>>,
    stopping: Arc<AtomicBool>,
    socket: PathBuf,
    tcp_addr: Option<std::net::SocketAddr>,
}

fn io_context(context: String) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> io::Error {
    move |e| io::Error::other(format!("{context}: {e}"))
}

/// Binds the unix socket: parent created, a stale socket removed (a live one is an error),
/// mode 0660, group `group` when the system has it.
fn bind_unix(socket: &Path, group: Option<&str>) -> io::Result<Server> {
    if let Some(parent) = socket.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| io::Error::new(e.kind(), format!("creating socket directory {}: {e}", parent.display())))?;
    }
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is served by a running process (another coracled?)", socket.display()),
            ));
        }
        std::fs::remove_file(socket)
            .map_err(|e| io::Error::new(e.kind(), format!("removing stale socket {}: {e}", socket.display())))?;
    }
    let server = Server::http_unix(socket).map_err(io_context(format!("binding {}", socket.display())))?;
    let access = socket_group::restrict(socket, group, Path::new(socket_group::GROUP_FILE))?;
    match access {
        SocketAccess::RootOnly { .. } if group.is_some_and(|g| !g.is_empty()) => {
            log::warn!("{}", access.describe(socket))
        }
        _ => log::info!("{}", access.describe(socket)),
    }
    Ok(server)
}

impl ApiServer {
    /// Starts serving `context` on the unix socket and, if configured, on TCP.
    pub fn start(context: ApiContext, config: &ApiConfig) -> io::Result<ApiServer> {
        let stopping = Arc::new(AtomicBool::new(false));
        let mut servers = vec![(Arc::new(bind_unix(&config.socket, config.socket_group.as_deref())?), None)];
        let mut tcp_addr = None;
        if let Some(addr) = &config.listen {
            let token = config.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("--listen {addr} needs a non-empty --token-file"))
            })?;
            let server = Server::http(addr.as_str()).map_err(io_context(format!("listening on {addr}")))?;
            tcp_addr = server.server_addr().to_ip();
            servers.push((Arc::new(server), Some(Arc::new(token))));
        }
        let acceptors = servers
            .iter()
            .map(|(server, token)| {
                let (server, token, context, stopping) =
                    (server.clone(), token.clone(), context.clone(), stopping.clone());
                std::thread::Builder::new()
                    .name("api-accept".into())
                    .spawn(move || accept_loop(&server, &context, token, &stopping))
                    .expect("spawning the API acceptor")
            })
            .collect();
        log::info!("API serving on {}", config.socket.display());
        if let Some(addr) = tcp_addr {
            log::info!("API serving on tcp {addr} (bearer token required)");
        }
        Ok(ApiServer {
            servers: servers.into_iter().map(|(s, _)| s).collect(),
            acceptors,
            stopping,
            socket: config.socket.clone(),
            tcp_addr,
        })
    }

    /// The TCP address actually bound (useful with port 0).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp_addr
    }

    /// Stops accepting requests and removes the socket. Open watches end with the process.
    pub fn shutdown(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for server in &self.servers {
            server.unblock();
        }
        for acceptor in self.acceptors {
            let _ = acceptor.join();
        }
        if let Err(e) = std::fs::remove_file(&self.socket) {
            log::warn!("removing socket {}: {e}", self.socket.display());
        }
    }
}

fn accept_loop(server: &Server, context: &ApiContext, token: Option<Arc<String>>, stopping: &AtomicBool) {
    loop {
        match server.recv() {
            Ok(request) => {
                let (context, token) = (context.clone(), token.clone());
                let spawned = std::thread::Builder::new()
                    .name("api-request".into())
                    .spawn(move || serve(&context, request, token.as_deref().map(String::as_str)));
                if let Err(e) = spawned {
                    log::warn!("API: cannot spawn a request thread: {e}");
                }
            }
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            Err(e) => {
                log::warn!("API: accepting a request: {e}");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

fn authorized(request: &Request, token: Option<&str>) -> bool {
    let Some(token) = token else { return true };
    let presented = header(request, "Authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    // Compare in constant time so the token cannot be guessed byte by byte.
    presented.len() == token.len() && presented.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Reads the body up to the limit; a larger body is refused without reading the rest.
fn read_body(request: &mut Request) -> Result<Vec<u8>, ApiError> {
    if request.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    Ok(body)
}

/// The media types an image upload may carry; the store sniffs the compression itself.
const ARCHIVE_TYPES: &[&str] = &[
    "",
    "application/x-tar",
    "application/tar",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/octet-stream",
];

/// An image archive upload: the body streams into the image store, with no size limit.
fn upload_image(context: &ApiContext, request: &mut Request) -> Result<Reply, ApiError> {
    let media =
        header(request, "Content-Type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !ARCHIVE_TYPES.contains(&media.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{media} (an image upload takes application/x-tar, application/gzip, application/zstd or \
             application/octet-stream)"
        )));
    }
    let length = request.body_length();
    // A duplicate, so the body can be borrowed for reading while the socket is polled.
    let socket = request.socket().and_then(|s| s.try_clone_to_owned().ok());
    handlers::images::load(&context.images, request.as_reader(), length, socket.as_ref().map(|s| s.as_fd()))
}

fn serve(context: &ApiContext, mut request: Request, token: Option<&str>) {
    let method = request.method().as_str().to_string();
    let url = request.url().to_string();
    let result = if !authorized(&request, token) {
        Err(ApiError::Unauthorized)
    } else if portforward::is_portforward(&url) {
        match portforward::open(context, &request) {
            Ok(leg) => return leg.run(request),
            Err(e) => Err(e),
        }
    } else if header(&request, "Connection").is_some_and(|c| c.to_ascii_lowercase().contains("upgrade")) {
        // An upgrade request's body is the rest of the connection: reading it would hang.
        Err(ApiError::BadRequest(format!("{url} does not upgrade connections (only pods/NAME/portforward does)")))
    } else if request::is_image_upload(&method, &url) {
        upload_image(context, &mut request)
    } else {
        read_body(&mut request).and_then(|body| {
            let content_type = header(&request, "Content-Type");
            let accept = header(&request, "Accept");
            let parts = HttpParts { method: &method, url: &url, content_type, accept, body: &body };
            handlers::handle(context, request::parse(&parts)?)
        })
    };
    match result {
        Ok(Reply::Watch(mut stream)) => {
            log::debug!("{method} {url} → 200 (watch)");
            stream_chunks(request, "application/json", || stream.next_line().map(String::into_bytes));
        }
        Ok(Reply::Stream { content_type, mut source }) => {
            log::debug!("{method} {url} → 200 (stream)");
            stream_chunks(request, content_type, || source.next_chunk());
        }
        Ok(Reply::Bytes { code, content_type: kind, body }) => {
            log::debug!("{method} {url} → {code}");
            respond(request, Response::from_data(body).with_status_code(code).with_header(content_type(kind)));
        }
        Ok(Reply::Json { code, body, warnings }) => {
            log::debug!("{method} {url} → {code}");
            let mut response = json_response(code, &body);
            for warning in warnings {
                response.add_header(warning_header(&warning));
            }
            respond(request, response);
        }
        Ok(Reply::Text { code, body }) => {
            log::debug!("{method} {url} → {code}");
            let response = Response::from_string(body).with_status_code(code).with_header(content_type("text/plain"));
            respond(request, response);
        }
        Err(error) => {
            let status = error.status();
            log::warn!("{method} {url} → {}: {}", status.code, status.message);
            let mut response = json_response(status.code, &serde_json::to_value(&status).expect("status serializes"));
            if status.code == 401 {
                response.add_header(Header::from_bytes("WWW-Authenticate", "Bearer").expect("static header"));
            }
            if status.code == 413 {
                response.add_header(Header::from_bytes("Connection", "close").expect("static header"));
            }
            respond(request, response);
        }
    }
}

fn content_type(value: &str) -> Header {
    Header::from_bytes("Content-Type", value).expect("static header")
}

/// `Warning: 299 - "unknown field \"spec.foo\""`, as kube-apiserver sends it. The text
/// may quote a client's bytes (an unknown field's name), and a header holds printable
/// ASCII only: anything else is percent-encoded, which a quoted-string's unescaping keeps.
pub fn warning_header(text: &str) -> Header {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '"' => {
                escaped.push('\\');
                escaped.push(c);
            }
            ' '..='~' => escaped.push(c),
            _ => {
                let mut utf8 = [0; 4];
                for b in c.encode_utf8(&mut utf8).bytes() {
                    escaped.push_str(&format!("%{b:02X}"));
                }
            }
        }
    }
    Header::from_bytes("Warning", format!("299 - \"{escaped}\"")).expect("printable ASCII is a valid header value")
}

fn json_response(code: u16, body: &serde_json::Value) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_data(serde_json::to_vec(body).expect("JSON serializes"))
        .with_status_code(code)
        .with_header(content_type("application/json"))
}

fn respond<R: Read>(request: Request, response: Response<R>) {
    if let Err(e) = request.respond(response) {
        log::debug!("API: writing a response: {e}");
    }
}

/// Writes a streamed response (a watch, a followed log) chunked by hand: tiny_http's own
/// chunked encoder buffers 8 KiB before sending, and each piece must reach the client at once.
fn stream_chunks(request: Request, content_type: &str, mut next: impl FnMut() -> Option<Vec<u8>>) {
    let mut writer = request.into_writer();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\
         Cache-Control: no-cache, private\r\n\r\n"
    );
    let result = (|| -> io::Result<()> {
        writer.write_all(head.as_bytes())?;
        writer.flush()?;
        while let Some(chunk) = next().filter(|c| !c.is_empty()) {
            write!(writer, "{:x}\r\n", chunk.len())?;
            writer.write_all(&chunk)?;
            writer.write_all(b"\r\n")?;
            writer.flush()?;
        }
        writer.write_all(b"0\r\n\r\n")?;
        writer.flush()
    })();
    if let Err(e) = result {
        log::debug!("API: stream ended by the client: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn warning_headers_escape_quotes() {
        let h = warning_header("unknown field \"spec.foo\"");
        assert_eq!(h.value.as_str(), r#"299 - "unknown field \"spec.foo\"""#);
    }

    #[test]
    fn warning_headers_take_any_text() {
        // An unknown field named with control or non-ASCII characters once panicked here
        // (found by schemathesis), which aborts a release daemon.
        let h = warning_header("unknown field \"\u{1c}é\r\n\"");
        assert_eq!(h.value.as_str(), r#"299 - "unknown field \"%1C%C3%A9%0D%0A\"""#);
        for c in (0..=0x10FFFF).step_by(7).filter_map(char::from_u32) {
            warning_header(&format!("a{c}b"));
        }
    }

    #[test]
    fn a_live_socket_is_not_stolen_and_a_stale_one_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("run/coracle.sock");
        let first = bind_unix(&socket, None).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert_eq!(bind_unix(&socket, None).err().map(|e| e.kind()), Some(io::ErrorKind::AddrInUse));
        drop(first);
        // tiny_http leaves the socket file behind: a stale socket.
        if socket.exists() {
            bind_unix(&socket, None).unwrap();
        }
    }

    /// An API server on a fresh store, serving a unix socket in `dir`.
    fn api_in(dir: &Path) -> (ApiServer, PathBuf) {
        let data = dir.join("data");
        let store = coracle_store::Store::open(&data).unwrap();
        let images = Arc::new(coracle_runtime::image::ImageStore::open(&data).unwrap());
        let socket = dir.join("api.sock");
        let config = ApiConfig { socket: socket.clone(), socket_group: None, listen: None, token: None };
        let services =
            Arc::new(coracle_net::services::allocator::ServiceAllocator::new("10.96.0.0/16".parse().unwrap()));
        (ApiServer::start(ApiContext::new(store, images, services, &data), &config).unwrap(), socket)
    }

    /// Sends `head`, then `body` piece by piece from a thread (until the server stops
    /// reading), and returns the status code and body of the first response.
    fn exchange(socket: &Path, head: &str, body: Vec<Vec<u8>>) -> (UnixStream, u16, String) {
        let mut stream = UnixStream::connect(socket).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut writer = stream.try_clone().unwrap();
        std::thread::spawn(move || body.iter().try_for_each(|piece| writer.write_all(piece)));
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while !reply.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "connection closed mid-head: {reply:?}");
            reply.push(byte[0]);
        }
        let head = String::from_utf8(reply).unwrap();
        let code = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{head}"));
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).unwrap();
        (stream, code, String::from_utf8(body).unwrap())
    }

    /// The most virtual memory this process has had mapped, in bytes.
    fn peak_virtual_memory() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmPeak:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    }

    #[test]
    fn a_huge_claimed_length_gets_413_without_the_claim_being_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let (api, socket) = api_in(dir.path());
        for claim in ["10000000000", "18446744073709551615"] {
            let before = peak_virtual_memory();
            let head = format!(
                "POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {claim}\r\n\r\n"
            );
            let (mut stream, code, body) = exchange(&socket, &head, vec![b"{\"kind\":".to_vec()]);
            assert_eq!(code, 413, "Content-Length {claim}: {body}");
            let status: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(status["reason"], "RequestEntityTooLarge");
            assert_eq!(status["message"], format!("the request body is larger than the limit of {MAX_BODY} bytes"));
            // The server lets go of the connection only once it has dropped the request,
            // where tiny_http 0.12 allocated the unread remainder of the claim.
            stream.shutdown(std::net::Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).unwrap();
            let grown = peak_virtual_memory().saturating_sub(before);
            assert!(grown < 2 << 30, "Content-Length {claim}: the process mapped {grown} more bytes");
        }
        api.shutdown();
    }

    #[test]
    fn a_chunked_body_over_the_limit_gets_413_once_it_crosses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (api, socket) = api_in(dir.path());
        let head = "POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                    Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        let piece = [format!("{:x}\r\n", 64 << 10).into_bytes(), vec![b' '; 64 << 10], b"\r\n".to_vec()].concat();
        // Four times the limit, which the server must not wait for.
        let (_stream, code, body) = exchange(&socket, head, vec![piece; 4 * MAX_BODY / (64 << 10)]);
        assert_eq!(code, 413, "{body}");
        assert!(body.contains(&format!("the limit of {MAX_BODY} bytes")), "{body}");
        // A body under the limit still reaches the handler (which finds it is no pod).
        let small = [b"2\r\n{}\r\n".to_vec(), b"0\r\n\r\n".to_vec()];
        let (_stream, code, body) = exchange(&socket, head, small.to_vec());
        assert_eq!(code, 422, "{body}");
        api.shutdown();
    }

    #[test]
    fn an_endless_request_head_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (api, socket) = api_in(dir.path());
        let (_stream, code, _) =
            exchange(&socket, "GET /version HTTP/1.1\r\nHost: x\r\nX-Pad: ", vec![vec![b'a'; 64 << 10]; 32]);
        assert_eq!(code, 400);
        api.shutdown();
    }
}
