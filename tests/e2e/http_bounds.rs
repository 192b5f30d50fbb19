//! The API's HTTP edge under attack, against a real daemon: malformed, oversized, deeply
//! nested and non-UTF-8 bodies; header floods and a 1 MiB URL; slowloris, idle and watching
//! connections by the hundred; path traversal in names and namespaces; the token checked
//! before a body is read. Under each load the daemon's thread count and resident memory are
//! read from /proc and bounded, and an ordinary GET is answered meanwhile.

use coracle_e2e::{wait_for, Daemon};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

const PODS: &str = "/api/v1/namespaces/default/pods";
const LONG: Duration = Duration::from_secs(60);

/// Threads and resident memory of a process, from /proc/PID/status.
#[derive(Clone, Copy, Debug)]
struct Footprint {
    threads: u64,
    rss_kib: u64,
}

fn footprint(d: &Daemon) -> Footprint {
    let pid = d.pid().expect("the daemon runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading the daemon's status");
    let field = |key: &str| {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in {status}"));
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    Footprint { threads: field("Threads:"), rss_kib: field("VmRSS:") }
}

/// The daemon at rest, after one request has warmed the workers.
fn at_rest(d: &Daemon) -> Footprint {
    assert_answering(d);
    footprint(d)
}

/// An ordinary GET is answered.
fn assert_answering(d: &Daemon) {
    let (status, body) = d.http("GET", PODS, None);
    assert_eq!(status, 200, "listing pods: {body}\nlog:\n{}", d.log());
}

/// Bounds growth over `base`: at most `threads` more threads and `rss_kib` more memory.
fn assert_within(what: &str, base: Footprint, now: Footprint, threads: u64, rss_kib: u64) {
    eprintln!(
        "{what}: threads {} → {} (+{}), RSS {} → {} KiB (+{})",
        base.threads,
        now.threads,
        now.threads.saturating_sub(base.threads),
        base.rss_kib,
        now.rss_kib,
        now.rss_kib.saturating_sub(base.rss_kib)
    );
    assert!(now.threads <= base.threads + threads, "{what}: {} threads, {} at rest", now.threads, base.threads);
    assert!(now.rss_kib <= base.rss_kib + rss_kib, "{what}: RSS {} KiB, {} KiB at rest", now.rss_kib, base.rss_kib);
}

/// Lets this test process open `n` more descriptors than the usual soft limit of 1024.
fn allow_open_files(n: u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit on a struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < n {
            limit.rlim_cur = n.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// Sends raw bytes and reads until the server closes; the status code and the whole reply.
fn raw(d: &Daemon, bytes: &[u8]) -> (u16, String) {
    let mut stream = UnixStream::connect(d.socket()).unwrap();
    stream.set_read_timeout(Some(LONG)).unwrap();
    // The server may answer and close before taking everything.
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply).to_string();
    let code = reply.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no answer: {reply:?}"));
    (code, reply)
}

/// The `Status` in a raw reply.
fn status_of(reply: &str) -> Value {
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not a Status ({e}): {reply}"))
}

/// Whether the server closed `stream` (reads end, or fail), within `LONG`.
fn closed_by_server(stream: &mut UnixStream) -> bool {
    stream.set_read_timeout(Some(LONG)).unwrap();
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return true,
            Ok(_) => {}
        }
    }
}

#[test]
fn malformed_oversized_nested_and_non_utf8_bodies_get_4xx() {
    let d = Daemon::start();
    let base = at_rest(&d);
    let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_yaml = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    let json = ("Content-Type", "application/json");
    let yaml = ("Content-Type", "application/yaml");
    type Header<'a> = (&'a str, &'a str);
    let cases: Vec<(&str, Header, Vec<u8>, u16)> = vec![
        ("truncated JSON", json, b"{\"kind\": \"Pod\", ".to_vec(), 400),
        ("not JSON", json, b"<pod/>".to_vec(), 400),
        ("JSON not an object", json, b"[1, 2]".to_vec(), 400),
        ("invalid UTF-8 JSON", json, b"{\"kind\": \"Pod\", \"metadata\": {\"name\": \"\xff\xfe\"}}".to_vec(), 400),
        ("invalid UTF-8 YAML", yaml, b"kind: Pod\nmetadata:\n  name: \xc3\x28\n".to_vec(), 400),
        ("nested JSON", json, deep_json.into_bytes(), 400),
        ("nested YAML", yaml, deep_yaml.into_bytes(), 400),
        // Over the 3 MiB a request body may have (kube-apiserver's limit).
        ("4 MiB body", json, format!("{{\"pad\": \"{}\"}}", "x".repeat(4 << 20)).into_bytes(), 413),
    ];
    for (what, content_type, body, code) in cases {
        let resp = d.request("POST", PODS, &[content_type], Some(&body));
        assert_eq!(resp.status, code, "{what}: {}", resp.body);
        let status = resp.json();
        assert_eq!((status["kind"].as_str(), status["code"].as_u64()), (Some("Status"), Some(code as u64)), "{what}");
    }
    // A chunked body whose framing lies, and one that never ends in time.
    let head = format!(
        "POST {PODS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let (code, reply) = raw(&d, format!("{head}zz\r\n{{}}\r\n0\r\n\r\n").as_bytes());
    assert_eq!(code, 400, "{reply}");
    let (code, reply) = raw(&d, format!("{head}fffffffffffffffffff\r\n").as_bytes());
    assert_eq!(code, 400, "{reply}");
    let (code, reply) = raw(&d, format!("{head}5\r\n{{}}").as_bytes());
    assert_eq!(code, 400, "{reply}");
    assert_within("after hostile bodies", base, at_rest(&d), 0, 16 << 10);
}

#[test]
fn request_heads_out_of_bounds_get_an_answer_not_a_dropped_connection() {
    let d = Daemon::start();
    let base = at_rest(&d);
    let flood: String = (0..1000).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("a header flood", format!("GET {PODS} HTTP/1.1\r\nHost: x\r\n{flood}\r\n").into_bytes(), 431, "header fields"),
        (
            "a 1 MiB URL",
            format!("GET {PODS}?labelSelector={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(1 << 20)).into_bytes(),
            431,
            "larger than",
        ),
        (
            "a 2 MiB header",
            format!("GET {PODS} HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(2 << 20)).into_bytes(),
            431,
            "larger than",
        ),
        (
            "invalid UTF-8 in the path",
            b"GET /api/v1/namespaces/\xff/pods HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "UTF-8",
        ),
        (
            "invalid UTF-8 in a header",
            b"GET /version HTTP/1.1\r\nHost: x\r\nX-A: \xc3\x28\r\n\r\n".to_vec(),
            400,
            "UTF-8",
        ),
        ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400, ""),
        ("a bad version", b"GET / HTTP/9.9\r\n\r\n".to_vec(), 400, ""),
        (
            "two lengths",
            format!("POST {PODS} HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes(),
            400,
            "both",
        ),
        (
            "a length that is no number",
            format!("POST {PODS} HTTP/1.1\r\nContent-Length: -1\r\n\r\n").into_bytes(),
            400,
            "Content-Length",
        ),
    ];
    for (what, bytes, code, says) in cases {
        let (got, reply) = raw(&d, &bytes);
        assert_eq!(got, code, "{what}: {}", &reply[..reply.len().min(400)]);
        let status = status_of(&reply);
        assert_eq!(status["code"], code, "{what}: {status}");
        assert!(status["message"].as_str().unwrap().contains(says), "{what}: {status}");
    }
    assert_within("after hostile heads", base, at_rest(&d), 0, 16 << 10);
}

#[test]
fn slowloris_connections_cost_no_thread_and_are_cut_at_the_header_timeout() {
    allow_open_files(4096);
    let d = Daemon::start_with_config("network:\n  mode: none\napi:\n  header_timeout_seconds: 3\n");
    let base = at_rest(&d);
    // 100 clients that start a request and trickle it, never finishing the head.
    let mut slow: Vec<UnixStream> = (0..100)
        .map(|i| {
            let mut s = UnixStream::connect(d.socket()).unwrap();
            s.write_all(format!("GET {PODS} HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ").as_bytes()).unwrap();
            s
        })
        .collect();
    for s in &mut slow {
        let _ = s.write_all(b"a");
    }
    assert_answering(&d);
    assert_within("100 slowloris connections", base, footprint(&d), 0, 8 << 10);
    // Each is answered 408 and closed once its head is late, however it trickles.
    for s in &mut slow {
        let _ = s.write_all(b"b");
    }
    for (i, s) in slow.iter_mut().enumerate() {
        let mut reply = Vec::new();
        s.set_read_timeout(Some(LONG)).unwrap();
        let _ = s.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 408 "), "slow client {i}: {reply:?}");
    }
    assert_answering(&d);
}

#[test]
fn idle_connections_cost_no_thread_and_are_closed_at_the_idle_timeout() {
    allow_open_files(4096);
    let d = Daemon::start_with_config("network:\n  mode: none\napi:\n  idle_timeout_seconds: 5\n");
    let base = at_rest(&d);
    // 600 connections that never send a byte, and 10 kept alive after a request.
    let mut idle: Vec<UnixStream> = (0..600).map(|_| UnixStream::connect(d.socket()).unwrap()).collect();
    let mut kept: Vec<UnixStream> = (0..10)
        .map(|_| {
            let mut s = UnixStream::connect(d.socket()).unwrap();
            s.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            s
        })
        .collect();
    assert_answering(&d);
    assert_within("600 idle connections", base, footprint(&d), 0, 8 << 10);
    for s in idle.iter_mut().chain(kept.iter_mut()) {
        assert!(closed_by_server(s));
    }
    assert_answering(&d);
}

#[test]
fn watches_are_capped_answer_429_beyond_and_end_when_their_clients_leave() {
    allow_open_files(4096);
    let streams = 100;
    let d = Daemon::start_with_config(&format!("network:\n  mode: none\napi:\n  max_streams: {streams}\n"));
    let base = at_rest(&d);
    // Watches with a filter no change selects: nothing is ever written to them.
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..300 {
        let w = d.watch("/api/v1/namespaces/quiet/pods?watch=true");
        match w.status {
            200 => open.push(w),
            _ => refused.push(w),
        }
    }
    assert_eq!((open.len(), refused.len()), (streams, 300 - streams));
    for w in &refused {
        assert_eq!(w.status, 429);
        assert_eq!(
            w.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("Retry-After")).map(|(_, v)| v.as_str()),
            Some("1")
        );
    }
    assert_answering(&d);
    let during = footprint(&d);
    // A thread per open stream, none per refused one; a little memory each.
    assert_within("300 watches", base, during, streams as u64, 32 << 10);
    // An event still reaches every open watch.
    let (code, body) = d.http("POST", "/api/v1/namespaces", Some(&json!({"metadata": {"name": "quiet"}}).to_string()));
    assert_eq!(code, 201, "{body}");
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "never:1"}]}});
    let (code, body) = d.http("POST", "/api/v1/namespaces/quiet/pods", Some(&pod.to_string()));
    assert_eq!(code, 201, "{body}");
    for w in &mut open {
        assert_eq!(w.next_event(LONG).map(|e| e["type"].clone()), Some(json!("ADDED")));
    }
    // The clients leave: every stream ends, its thread and subscription with it.
    drop(open);
    drop(refused);
    wait_for("the watch threads to end", LONG, || (footprint(&d).threads <= base.threads).then_some(()));
    // And the slots are free again.
    let mut again = d.watch("/api/v1/namespaces/quiet/pods?watch=true");
    assert_eq!(again.status, 200);
    assert_eq!(again.next_event(LONG).map(|e| e["type"].clone()), Some(json!("ADDED")));
}

#[test]
fn path_traversal_in_names_and_namespaces_is_refused() {
    let d = Daemon::start();
    let outside = d.data_dir().parent().unwrap().to_path_buf();
    let before: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    let pod = |name: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"containers": [{"name": "c", "image": "never:1"}]}})
        .to_string()
    };
    for name in ["..", "../../../../tmp/escaped", "a/../../b", "%2e%2e", "..%2F..%2Fescaped", "."] {
        let (code, body) = d.http("POST", PODS, Some(&pod(name)));
        assert_eq!(code, 422, "creating pod {name:?}: {body}");
    }
    for path in [
        "/api/v1/namespaces/default/pods/..",
        "/api/v1/namespaces/default/pods/%2e%2e",
        "/api/v1/namespaces/default/pods/..%2F..%2F..%2Fetc%2Fpasswd",
        "/api/v1/namespaces/../pods/x",
        "/api/v1/namespaces/%2e%2e/pods/x",
        "/api/v1/namespaces/%2e%2e%2f%2e%2e/pods",
        "/api/v1/namespaces/default/pods/x/../../../../etc/passwd",
        "/api/v1/namespaces/default/pods/x/log?container=..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        for method in ["GET", "DELETE"] {
            let (code, body) = d.http(method, path, None);
            // Listing a namespace no object can be in answers an empty list, as Kubernetes.
            let empty_list = code == 200 && serde_json::from_str::<Value>(&body).unwrap()["items"] == json!([]);
            assert!(matches!(code, 400 | 404 | 405 | 422) || empty_list, "{method} {path}: {code} {body}");
        }
        let (code, body) = d.http("PUT", path, Some(&pod("x")));
        assert!(matches!(code, 400 | 404 | 405 | 422), "PUT {path}: {code} {body}");
        let (code, body) = d.http("POST", path, Some(&pod("x")));
        assert!(matches!(code, 400 | 404 | 405 | 422), "POST {path}: {code} {body}");
    }
    let after: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(before, after, "nothing appeared beside the data directory");
    assert!(!std::path::Path::new("/tmp/escaped.json").exists());
    assert_answering(&d);
}

#[test]
fn the_token_is_checked_before_a_body_is_read_or_a_stream_opened() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(&["--listen", &listen, "--token-file", token_file.to_str().unwrap()]);
    // A body announced and never sent: the 401 comes at once, without waiting for it.
    let mut tcp = TcpStream::connect(&listen).unwrap();
    tcp.set_read_timeout(Some(LONG)).unwrap();
    tcp.write_all(format!("POST {PODS} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n").as_bytes()).unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 401");
    // A watch without the token is no stream.
    let mut tcp = TcpStream::connect(&listen).unwrap();
    tcp.set_read_timeout(Some(LONG)).unwrap();
    tcp.write_all(format!("GET {PODS}?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut reply = [0u8; 12];
    tcp.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"HTTP/1.1 401");
    // With the token, keep-alive serves several requests on one connection.
    let mut tcp = TcpStream::connect(&listen).unwrap();
    tcp.set_read_timeout(Some(LONG)).unwrap();
    for _ in 0..3 {
        tcp.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n").unwrap();
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        let mut rest = Vec::new();
        let mut byte = [0u8; 1];
        while !rest.ends_with(b"}") {
            tcp.read_exact(&mut byte).unwrap();
            rest.push(byte[0]);
        }
    }
    assert_answering(&d);
}
