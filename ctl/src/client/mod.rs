//! The HTTP/1.1 client coracle speaks to coracled with: unix socket or TCP, bearer token,
//! Content-Length and chunked bodies, streamed for watches and logs.

mod endpoint;
mod query;
mod request;
mod response;
mod status;
mod upgrade;

pub use endpoint::{Connection, Endpoint};
pub use query::{encode, with_query};
pub use request::{Body, UploadLength};
pub use response::{read_response, BodyReader, Response};
pub use status::{status_from_response, warnings};
pub use upgrade::{copy_flushing, Upgraded};

use crate::error::CtlError;
use request::{write_request, write_upload, RequestHead};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How often a conflicting PATCH is re-sent before the conflict is reported.
const PATCH_RETRIES: u32 = 5;

/// A connection recipe for one server; every request opens its own connection.
#[derive(Clone, Debug)]
pub struct Client {
    endpoint: Endpoint,
    token: Option<String>,
    read_timeout: Option<Duration>,
}

/// A response whose body is still on the wire.
pub type StreamingResponse = Response<BodyReader<Box<dyn Connection>>>;

impl Client {
    /// A client for `endpoint`, sending `token` as a bearer token when given.
    pub fn new(endpoint: Endpoint, token: Option<String>) -> Client {
        Client { endpoint, token, read_timeout: Some(Duration::from_secs(60)) }
    }

    /// Where this client connects.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends a request and returns once the response head has arrived; the body streams.
    /// Streams (watch, logs follow) wait as long as the server keeps them open.
    pub fn send(&self, method: &str, path: &str, body: Option<Body<'_>>) -> Result<StreamingResponse, CtlError> {
        self.send_with(method, path, body, self.read_timeout)
    }

    /// `send` without a read timeout, for long-lived streams.
    pub fn stream(&self, method: &str, path: &str) -> Result<StreamingResponse, CtlError> {
        self.send_with(method, path, None, None)
    }

    /// `stream` whose reads fail with `TimedOut`/`WouldBlock` after `timeout` of silence, so a
    /// caller with a deadline regains control.
    pub fn stream_timeout(
        &self,
        method: &str,
        path: &str,
        timeout: Option<Duration>,
    ) -> Result<StreamingResponse, CtlError> {
        self.send_with(method, path, None, timeout)
    }

    fn send_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Body<'_>>,
        timeout: Option<Duration>,
    ) -> Result<StreamingResponse, CtlError> {
        let started = Instant::now();
        let mut conn = self.endpoint.connect(timeout)?;
        let host = self.endpoint.host_header();
        let head = RequestHead { host: &host, token: self.token.as_deref(), accept: "application/json, */*" };
        let io_err =
            |e: std::io::Error| CtlError::client(format!("{method} {path} on {}: {e}", self.endpoint.display()));
        write_request(&mut conn, method, path, &head, body).map_err(io_err)?;
        let response = read_response(conn, method).map_err(io_err)?;
        log::debug!("{method} {path} {} in {} ms", response.status, started.elapsed().as_millis());
        for warning in warnings(&response) {
            errln!("Warning: {warning}");
        }
        Ok(response)
    }

    /// Sends a request and reads the whole body.
    pub fn call(&self, method: &str, path: &str, body: Option<Body<'_>>) -> Result<Response<Vec<u8>>, CtlError> {
        let r = self.send(method, path, body)?;
        let bytes = r
            .body
            .into_bytes()
            .map_err(|e| CtlError::client(format!("reading the response to {method} {path}: {e}")))?;
        Ok(Response { status: r.status, headers: r.headers, body: bytes })
    }

    /// Sends JSON (if any), expects 2xx and a JSON answer; other statuses become
    /// `CtlError::Api` carrying the server's `Status`.
    pub fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CtlError> {
        self.json_as(method, path, "application/json", body)
    }

    /// `json` with another media type for the body, e.g. `application/merge-patch+json`.
    pub fn json_as(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&Value>,
    ) -> Result<Value, CtlError> {
        let bytes = body.map(|v| serde_json::to_vec(v).expect("JSON values serialize"));
        let body = bytes.as_deref().map(|bytes| Body { content_type, bytes });
        let r = self.call(method, path, body)?;
        json_answer(method, path, r)
    }

    /// PATCHes `path` with `patch` of media type `content_type`, returning the patched object.
    /// Our patches carry no resourceVersion, so a 409 Conflict only means a controller wrote
    /// in between: the patch is re-sent against the newer object, as kube-apiserver itself
    /// and kubectl's scaler retry.
    pub fn patch(&self, path: &str, content_type: &str, patch: &Value) -> Result<Value, CtlError> {
        let mut attempt = 0;
        loop {
            match self.json_as("PATCH", path, content_type, Some(patch)) {
                Err(CtlError::Api { status, .. }) if status.code == 409 && attempt < PATCH_RETRIES => {
                    log::debug!("PATCH {path}: conflict ({}), retrying", status.message);
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20 * attempt as u64));
                }
                other => return other,
            }
        }
    }

    /// Streams `body` as the request body (Content-Length when `length` is known, chunked
    /// otherwise) and waits without a read timeout for the JSON answer: loading an archive
    /// on a small board can take minutes.
    pub fn upload(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &mut dyn std::io::Read,
        length: UploadLength,
    ) -> Result<Value, CtlError> {
        let mut conn = self.endpoint.connect(None)?;
        let host = self.endpoint.host_header();
        let head = RequestHead { host: &host, token: self.token.as_deref(), accept: "application/json, */*" };
        let io_err =
            |e: std::io::Error| CtlError::client(format!("{method} {path} on {}: {e}", self.endpoint.display()));
        let sent = write_upload(&mut conn, method, path, &head, content_type, body, length);
        // A server that refuses the upload may answer and close before reading it all; its
        // answer says more than the broken pipe does.
        let response = match read_response(conn, method) {
            Ok(r) => r,
            Err(e) => return Err(io_err(sent.err().unwrap_or(e))),
        };
        let bytes = response
            .body
            .into_bytes()
            .map_err(|e| CtlError::client(format!("reading the response to {method} {path}: {e}")))?;
        let r = Response { status: response.status, headers: response.headers, body: bytes };
        if r.is_success() {
            if let Err(e) = sent {
                return Err(io_err(e));
            }
        }
        json_answer(method, path, r)
    }

    /// GET a JSON document.
    pub fn get(&self, path: &str) -> Result<Value, CtlError> {
        self.json("GET", path, None)
    }
}

/// A collected response as JSON: 2xx → the parsed body (Null when empty), else the
/// server's `Status` as `CtlError::Api`.
fn json_answer(method: &str, path: &str, r: Response<Vec<u8>>) -> Result<Value, CtlError> {
    if !r.is_success() {
        return Err(CtlError::Api { status: Box::new(status_from_response(r.status, &r.body)), context: None });
    }
    if r.body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&r.body).map_err(|e| {
        CtlError::client(format!("{method} {path}: the server's answer is not JSON ({e}): {}", preview(&r.body)))
    })
}

/// The first bytes of a body, for error messages.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::UnixListener;
    use std::thread;

    /// Serves one canned response per connection and returns the requests it saw.
    fn serve(responses: Vec<&'static str>) -> (tempfile::TempDir, Client, thread::JoinHandle<Vec<String>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = thread::spawn(move || {
            let mut seen = Vec::new();
            for response in responses {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                head.push_str(&String::from_utf8(body).unwrap());
                seen.push(head);
                let mut stream = stream;
                // Dribble the response out in small writes so the client's framing is exercised.
                for piece in response.as_bytes().chunks(7) {
                    stream.write_all(piece).unwrap();
                    stream.flush().unwrap();
                }
            }
            seen
        });
        let client = Client::new(Endpoint::Unix(path), Some("t0k".into()));
        (dir, client, handle)
    }

    #[test]
    fn chunked_json_arrives_whole() {
        let (_dir, client, server) = serve(vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n6\r\n{\"a\":\r\n3\r\n12}\r\n0\r\n\r\n",
        ]);
        let v = client.get("/api/v1/namespaces/default/pods/x").unwrap();
        assert_eq!(v, serde_json::json!({"a": 12}));
        let seen = server.join().unwrap();
        assert!(seen[0].starts_with("GET /api/v1/namespaces/default/pods/x HTTP/1.1\r\n"));
        assert!(seen[0].contains("Authorization: Bearer t0k\r\n"));
    }

    #[test]
    fn status_bodies_become_api_errors() {
        let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","code":404}"#;
        let response: &'static str = Box::leak(
            format!("HTTP/1.1 404 Not Found\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_boxed_str(),
        );
        let (_dir, client, server) = serve(vec![response]);
        let err = client.json("DELETE", "/api/v1/namespaces/default/pods/x", Some(&serde_json::json!({}))).unwrap_err();
        assert_eq!(err.to_string(), "Error from server (NotFound): pods \"x\" not found");
        let seen = server.join().unwrap();
        assert!(seen[0].ends_with("Content-Length: 2\r\n\r\n{}"), "{}", seen[0]);
    }

    #[test]
    fn watch_streams_can_be_read_event_by_event() {
        let (_dir, client, server) = serve(vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"type\":\"ADDED\"}\r\n1\r\n\n\r\n13\r\n{\"type\":\"MODIFIED\"}\r\n1\r\n\n\r\n0\r\n\r\n",
        ]);
        let r = client.stream("GET", "/api/v1/pods?watch=true").unwrap();
        let lines: Vec<String> = BufReader::new(r.body).lines().map(|l| l.unwrap()).collect();
        assert_eq!(lines, vec![r#"{"type":"ADDED"}"#, r#"{"type":"MODIFIED"}"#]);
        server.join().unwrap();
    }
}
