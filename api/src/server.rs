//! The API's HTTP edge: the unix-socket and TCP listeners served by the bounded HTTP server
//! (`http`), bearer-token auth on TCP checked before anything else, the cap on long-running
//! answers, and turning replies into HTTP responses.

use super::context::ApiContext;
use super::errors::ApiError;
use super::handlers::{self, Reply};
use super::http::{self, Limits, Listener, Request, Response, Streams};
use super::portforward;
use super::request::{self, ApiRequest, HttpParts, MAX_BODY};
use super::socket_group::{self, SocketAccess};
use std::io::{self, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// Threads, connections, streams and timeouts.
    pub limits: Limits,
}

/// The running listeners.
pub struct ApiServer {
    server: http::Server,
    socket: PathBuf,
    tcp_addr: Option<std::net::SocketAddr>,
}

/// Binds the unix socket: parent created, a stale socket removed (a live one is an error),
/// mode 0660, group `group` when the system has it.
fn bind_unix(socket: &Path, group: Option<&str>) -> io::Result<UnixListener> {
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
    let listener = UnixListener::bind(socket)
        .map_err(|e| io::Error::new(e.kind(), format!("binding {}: {e}", socket.display())))?;
    let access = socket_group::restrict(socket, group, Path::new(socket_group::GROUP_FILE))?;
    match access {
        SocketAccess::RootOnly { .. } if group.is_some_and(|g| !g.is_empty()) => {
            log::warn!("{}", access.describe(socket))
        }
        _ => log::info!("{}", access.describe(socket)),
    }
    Ok(listener)
}

impl ApiServer {
    /// Starts serving `context` on the unix socket and, if configured, on TCP.
    pub fn start(context: ApiContext, config: &ApiConfig) -> io::Result<ApiServer> {
        let mut listeners = vec![(Listener::Unix(bind_unix(&config.socket, config.socket_group.as_deref())?), None)];
        let mut tcp_addr = None;
        if let Some(addr) = &config.listen {
            let token = config.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, format!("--listen {addr} needs a non-empty --token-file"))
            })?;
            let listener = std::net::TcpListener::bind(addr.as_str())
                .map_err(|e| io::Error::new(e.kind(), format!("listening on {addr}: {e}")))?;
            tcp_addr = listener.local_addr().ok();
            listeners.push((Listener::Tcp(listener), Some(Arc::new(token))));
        }
        let streams = Streams::new(config.limits.streams);
        let lists = ListCache::default();
        let handler: http::Handler = Arc::new(move |request| serve(&context, &streams, &lists, request));
        let server = http::Server::start(listeners, config.limits.clone(), handler)?;
        log::info!("API serving on {}", config.socket.display());
        if let Some(addr) = tcp_addr {
            log::info!("API serving on tcp {addr} (bearer token required)");
        }
        Ok(ApiServer { server, socket: config.socket.clone(), tcp_addr })
    }

    /// The TCP address actually bound (useful with port 0).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp_addr
    }

    /// Stops accepting requests and removes the socket. Open watches end with the process.
    pub fn shutdown(self) {
        self.server.shutdown();
        if let Err(e) = std::fs::remove_file(&self.socket) {
            log::warn!("removing socket {}: {e}", self.socket.display());
        }
    }
}

fn authorized(request: &Request) -> bool {
    let Some(token) = request.token.as_deref() else { return true };
    let presented = request.header("Authorization").and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    // Compare in constant time so the token cannot be guessed byte by byte.
    presented.len() == token.len() && presented.bytes().zip(token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// kube-apiserver's answer beyond its in-flight limit.
fn too_many_streams(streams: &Streams) -> ApiError {
    log::warn!(
        "API: {} long-running requests (watches, followed logs, port-forwards) open: answering 429",
        streams.open()
    );
    ApiError::Status {
        code: 429,
        reason: "TooManyRequests",
        message: "Too many requests, please try again later.".into(),
    }
}

/// How long an ordinary body (up to `MAX_BODY`) may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the body up to the limit; a larger body is refused without reading the rest.
fn read_body(request: &mut Request) -> Result<Vec<u8>, ApiError> {
    if request.body_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY });
    }
    let mut body = Vec::new();
    request
        .body_within(BODY_TIMEOUT)
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
        request.header("Content-Type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !ARCHIVE_TYPES.contains(&media.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{media} (an image upload takes application/x-tar, application/gzip, application/zstd or \
             application/octet-stream)"
        )));
    }
    let length = request.body_length().and_then(|n| usize::try_from(n).ok());
    // A duplicate, so the body can be borrowed for reading while the socket is polled.
    let socket = request.socket().try_clone_to_owned().ok();
    let socket_fd = socket.as_ref().map(std::os::fd::AsFd::as_fd);
    handlers::images::load(&context.images, request.body(), length, socket_fd)
}

/// The last list answers, by request and store version: a client polling a list (or several
/// clients listing alike) costs one rendering per change, not one per request. Tables are
/// not kept (their ages move with the clock), nor anything but 200s.
#[derive(Default)]
struct ListCache {
    entries: std::sync::Mutex<std::collections::VecDeque<KeptList>>,
}

/// A rendered list: its request (URL and Accept), the store version and the bytes.
type KeptList = (String, u64, Arc<Vec<u8>>);

/// How many list answers are kept (each the size of one list).
const LISTS_KEPT: usize = 4;

impl ListCache {
    fn get(&self, key: &str, version: u64) -> Option<Arc<Vec<u8>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.iter().find(|(k, v, _)| k == key && *v == version).map(|(_, _, bytes)| bytes.clone())
    }

    fn put(&self, key: String, version: u64, bytes: Arc<Vec<u8>>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|(k, _, _)| *k != key);
        if entries.len() == LISTS_KEPT {
            entries.pop_front();
        }
        entries.push_back((key, version, bytes));
    }
}

/// A list answered from `lists` when the store has not changed since it was rendered.
fn list_cached(
    context: &ApiContext,
    lists: &ListCache,
    decoded: ApiRequest,
    key: String,
) -> Result<(Reply, Option<http::Slot>), ApiError> {
    // The version is read before rendering: a change made meanwhile only makes the kept
    // answer newer than its key, and the key is never asked for again once the store moved.
    let version = context.store.resource_version();
    if let Some(bytes) = lists.get(&key, version) {
        return Ok((Reply::Bytes { code: 200, content_type: "application/json", body: bytes.to_vec() }, None));
    }
    match handlers::handle(context, decoded)? {
        Reply::Json { code: 200, body, warnings } if warnings.is_empty() => {
            let bytes = Arc::new(serde_json::to_vec(&body).expect("JSON serializes"));
            lists.put(key, version, bytes.clone());
            Ok((Reply::Bytes { code: 200, content_type: "application/json", body: bytes.to_vec() }, None))
        }
        other => Ok((other, None)),
    }
}

/// Whether a decoded request holds its answer open: it takes a stream slot first.
fn long_running(request: &ApiRequest) -> bool {
    match request {
        ApiRequest::Watch { .. } => true,
        ApiRequest::Log { query, .. } => query.follow,
        _ => false,
    }
}

/// Runs a long-running answer on a thread of its own, holding its stream slot until it ends.
fn spawn_stream(slot: http::Slot, run: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new().name("api-stream".into()).spawn(move || {
        run();
        drop(slot);
    });
    if let Err(e) = spawned {
        log::warn!("API: cannot start a stream thread: {e}");
    }
}

fn serve(context: &ApiContext, streams: &Streams, lists: &ListCache, mut request: Request) {
    let method = request.method().to_string();
    let url = request.url().to_string();
    // The token first: an unauthenticated client gets nothing read, opened or streamed.
    let result = if !authorized(&request) {
        Err(ApiError::Unauthorized)
    } else if portforward::is_portforward(&url) {
        match streams.take() {
            None => Err(too_many_streams(streams)),
            Some(slot) => match portforward::open(context, &request) {
                Ok(leg) => return spawn_stream(slot, move || leg.run(request)),
                Err(e) => Err(e),
            },
        }
    } else if request.header("Connection").is_some_and(|c| c.to_ascii_lowercase().contains("upgrade")) {
        // An upgrade request's body is the rest of the connection: reading it would hang.
        Err(ApiError::BadRequest(format!("{url} does not upgrade connections (only pods/NAME/portforward does)")))
    } else if request::is_image_upload(&method, &url) {
        upload_image(context, &mut request).map(|reply| (reply, None))
    } else {
        read_body(&mut request).and_then(|body| {
            let content_type = request.header("Content-Type");
            let accept = request.header("Accept");
            let parts = HttpParts { method: &method, url: &url, content_type, accept, body: &body };
            let decoded = request::parse(&parts)?;
            if matches!(&decoded, ApiRequest::List { query, .. } if !query.table) {
                return list_cached(context, lists, decoded, format!("{url}\n{}", accept.unwrap_or("")));
            }
            let slot = match long_running(&decoded) {
                true => Some(streams.take().ok_or_else(|| too_many_streams(streams))?),
                false => None,
            };
            handlers::handle(context, decoded).map(|reply| (reply, slot))
        })
    };
    match result {
        Ok((Reply::Watch(mut stream), slot)) => {
            log::debug!("{method} {url} → 200 (watch)");
            let run = move || stream_chunks(request, "application/json", || stream.next_line().map(String::into_bytes));
            match slot {
                Some(slot) => spawn_stream(slot, run),
                None => run(),
            }
        }
        Ok((Reply::Stream { content_type, mut source }, slot)) => {
            log::debug!("{method} {url} → 200 (stream)");
            let run = move || stream_chunks(request, content_type, || source.next_chunk());
            match slot {
                Some(slot) => spawn_stream(slot, run),
                None => run(),
            }
        }
        Ok((Reply::Bytes { code, content_type, body }, _)) => {
            log::debug!("{method} {url} → {code}");
            request.respond(Response::new(code, content_type, body));
        }
        Ok((Reply::Json { code, body, warnings }, _)) => {
            log::debug!("{method} {url} → {code}");
            let mut response = json_response(code, &body);
            for warning in warnings {
                response.headers.push(("Warning".into(), warning_header(&warning)));
            }
            request.respond(response);
        }
        Ok((Reply::Text { code, body }, _)) => {
            log::debug!("{method} {url} → {code}");
            request.respond(Response::new(code, "text/plain", body.into_bytes()));
        }
        Err(error) => {
            let mut status = error.status();
            log::warn!("{method} {url} → {}: {}", status.code, status.message);
            if status.code == 429 {
                status.details.get_or_insert_with(Default::default).retry_after_seconds = Some(1);
            }
            let mut response = json_response(status.code, &serde_json::to_value(&status).expect("status serializes"));
            match status.code {
                401 => response.headers.push(("WWW-Authenticate".into(), "Bearer".into())),
                429 => response.headers.push(("Retry-After".into(), "1".into())),
                _ => {}
            }
            request.respond(response);
        }
    }
}

/// The value of `Warning: 299 - "unknown field \"spec.foo\""`, as kube-apiserver sends it.
/// The text may quote a client's bytes (an unknown field's name), and a header holds
/// printable ASCII only: anything else is percent-encoded, which a quoted-string's
/// unescaping keeps.
pub fn warning_header(text: &str) -> String {
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
    format!("299 - \"{escaped}\"")
}

fn json_response(code: u16, body: &serde_json::Value) -> Response {
    Response::new(code, "application/json", serde_json::to_vec(body).expect("JSON serializes"))
}

/// Sends a streamed answer (a watch, a followed log) chunk by chunk, each at once. An empty
/// piece means "nothing yet": the client is looked at, so a stream ends within a poll of its
/// client leaving, however quiet its source.
fn stream_chunks(request: Request, content_type: &str, mut next: impl FnMut() -> Option<Vec<u8>>) {
    let mut out = match request.into_stream(content_type) {
        Ok(out) => out,
        Err(e) => return log::debug!("API: starting a stream: {e}"),
    };
    while let Some(piece) = next() {
        let sent = if piece.is_empty() {
            match out.client_gone() {
                true => Err(io::Error::new(io::ErrorKind::ConnectionAborted, "the client left")),
                false => Ok(()),
            }
        } else {
            out.send(&piece)
        };
        if let Err(e) = sent {
            return log::debug!("API: stream ended by the client: {e}");
        }
    }
    if let Err(e) = out.finish() {
        log::debug!("API: ending a stream: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn warning_headers_escape_quotes() {
        let h = warning_header("unknown field \"spec.foo\"");
        assert_eq!(h, r#"299 - "unknown field \"spec.foo\"""#);
    }

    #[test]
    fn warning_headers_take_any_text() {
        // An unknown field named with control or non-ASCII characters once panicked here
        // (found by schemathesis), which aborts a release daemon.
        let h = warning_header("unknown field \"\u{1c}é\r\n\"");
        assert_eq!(h, r#"299 - "unknown field \"%1C%C3%A9%0D%0A\"""#);
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
        // A dropped listener leaves the socket file behind: a stale socket.
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
        let config = ApiConfig {
            socket: socket.clone(),
            socket_group: None,
            listen: None,
            token: None,
            limits: Limits::default(),
        };
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
            // where tiny_http 0.12 once allocated the unread remainder of the claim.
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
        // 431, as Go's net/http (kube-apiserver) answers a head over its 1 MiB limit.
        let (_stream, code, body) =
            exchange(&socket, "GET /version HTTP/1.1\r\nHost: x\r\nX-Pad: ", vec![vec![b'a'; 64 << 10]; 32]);
        assert_eq!(code, 431, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["reason"], "RequestHeaderFieldsTooLarge");
        api.shutdown();
    }

    #[test]
    fn keep_alive_serves_requests_in_turn_and_pipelined() {
        let dir = tempfile::tempdir().unwrap();
        let (api, socket) = api_in(dir.path());
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
        let get = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n";
        // Two in one write, then a third once they are answered.
        stream.write_all(format!("{get}{get}").as_bytes()).unwrap();
        let read_answers = |stream: &mut UnixStream, n: usize| {
            let mut seen = Vec::new();
            let mut byte = [0u8; 4096];
            while String::from_utf8_lossy(&seen).matches("\"gitVersion\"").count() < n {
                let got = stream.read(&mut byte).unwrap();
                assert!(got > 0, "closed after {:?}", String::from_utf8_lossy(&seen));
                seen.extend_from_slice(&byte[..got]);
            }
            String::from_utf8(seen).unwrap()
        };
        let two = read_answers(&mut stream, 2);
        assert_eq!(two.matches("HTTP/1.1 200 OK").count(), 2, "{two}");
        stream.write_all(get.as_bytes()).unwrap();
        assert!(read_answers(&mut stream, 1).starts_with("HTTP/1.1 200 OK"));
        api.shutdown();
    }

    #[test]
    fn a_kept_list_answer_is_never_older_than_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (api, socket) = api_in(dir.path());
        let list = "GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let names = |body: &str| -> Vec<String> {
            let list: serde_json::Value = serde_json::from_str(body).unwrap();
            list["items"].as_array().unwrap().iter().map(|n| n["metadata"]["name"].as_str().unwrap().into()).collect()
        };
        let (_s, code, first) = exchange(&socket, list, Vec::new());
        assert_eq!(code, 200);
        let (_s, _, again) = exchange(&socket, list, Vec::new());
        assert_eq!(first, again);
        for name in ["kept-a", "kept-b"] {
            let body = format!("{{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{{\"name\":\"{name}\"}}}}");
            let head = format!(
                "POST /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let (_s, code, text) = exchange(&socket, &head, vec![body.into_bytes()]);
            assert_eq!(code, 201, "{text}");
            let (_s, _, now) = exchange(&socket, list, Vec::new());
            assert!(names(&now).contains(&name.to_string()), "{now}");
        }
        api.shutdown();
    }

    #[test]
    fn a_head_sent_a_byte_at_a_time_is_served() {
        let dir = tempfile::tempdir().unwrap();
        let (api, socket) = api_in(dir.path());
        for head in ["GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "GET /version HTTP/1.0\n\n"] {
            let mut stream = UnixStream::connect(&socket).unwrap();
            for byte in head.bytes() {
                stream.write_all(&[byte]).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{head:?}: {reply}");
        }
        api.shutdown();
    }

    #[test]
    fn invalid_utf8_in_the_request_line_or_a_header_is_a_400() {
        let dir = tempfile::tempdir().unwrap();
        let (api, socket) = api_in(dir.path());
        for head in ["GET /api/v1/\u{80}\u{ff} HTTP/1.1\r\n\r\n", "GET /version HTTP/1.1\r\nX-A: \u{80}\r\n\r\n"] {
            // Latin-1 bytes, not UTF-8: each char below 256 as one byte.
            let raw: Vec<u8> = head.chars().map(|c| c as u8).collect();
            let mut stream = UnixStream::connect(&socket).unwrap();
            stream.write_all(&raw).unwrap();
            let mut reply = String::new();
            stream.read_to_string(&mut reply).unwrap();
            assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
            assert!(reply.contains("not valid UTF-8"), "{reply}");
        }
        api.shutdown();
    }
}
