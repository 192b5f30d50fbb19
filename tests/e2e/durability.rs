//! Durability: a daemon being sent creates, replaces and deletes is killed with SIGKILL at
//! random moments, hundreds of times. After every restart each acknowledged change is there
//! intact, an unacknowledged one is either fully there or not at all, and no torn object
//! file is ever loaded.

use coracle_e2e::Daemon;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const SERVICES: &str = "/api/v1/namespaces/default/services";
const NAMES: usize = 24;
const MAX_KILLS: usize = 300;
/// The loop stops early once this much time went by, so the suite stays quick on a slow board.
const BUDGET: Duration = Duration::from_secs(45);

/// A small xorshift: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The port is written three times; an object mixing two writes would disagree with itself.
fn service(name: &str, port: u16) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": {"port": port.to_string()}, "annotations": {"port": port.to_string()}},
        "spec": {"ports": [{"port": port, "name": format!("p{port}")}]},
    })
    .to_string()
}

/// Checks an object agrees with itself and returns its port.
fn port_of(obj: &Value) -> u16 {
    let port = obj["spec"]["ports"][0]["port"].as_u64().unwrap_or_else(|| panic!("no port in {obj}")) as u16;
    assert_eq!(obj["metadata"]["labels"]["port"], port.to_string(), "torn object {obj}");
    assert_eq!(obj["metadata"]["annotations"]["port"], port.to_string(), "torn object {obj}");
    assert_eq!(obj["spec"]["ports"][0]["name"], format!("p{port}"), "torn object {obj}");
    port
}

/// Every stored object file parses as JSON (temp files aside).
fn assert_no_torn_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            assert_no_torn_files(&path);
        } else if path.extension().is_some_and(|e| e == "json") && path.to_string_lossy().contains("/objects/") {
            let text = std::fs::read(&path).unwrap();
            if let Err(e) = serde_json::from_slice::<Value>(&text) {
                panic!("torn object file {}: {e}", path.display());
            }
        }
    }
}

/// What each name may hold after a restart: None is "absent".
type Acceptable = BTreeMap<String, Vec<Option<u16>>>;

fn verify(d: &Daemon, acceptable: &mut Acceptable) {
    let (code, body) = d.http("GET", SERVICES, None);
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let mut found: BTreeMap<String, u16> = BTreeMap::new();
    for item in list["items"].as_array().unwrap() {
        found.insert(item["metadata"]["name"].as_str().unwrap().to_string(), port_of(item));
    }
    for (name, allowed) in acceptable.iter_mut() {
        let got = found.get(name).copied();
        assert!(allowed.contains(&got), "{name}: found {got:?}, acknowledged history allows {allowed:?}");
        *allowed = vec![got];
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("durability seed {seed}");
    let mut rng = Rng(seed);
    let mut acceptable: Acceptable = (0..NAMES).map(|i| (format!("svc-{i}"), vec![None])).collect();
    let mut d = Daemon::start();
    let started = Instant::now();
    let (mut kills, mut acked) = (0usize, 0usize);
    while kills < MAX_KILLS && started.elapsed() < BUDGET {
        let pid = d.pid().expect("running daemon") as libc::pid_t;
        let delay = Duration::from_micros(rng.below(60_000));
        let killer = std::thread::spawn(move || {
            std::thread::sleep(delay);
            // SAFETY: kill(2) on the daemon's pid, which the harness has not reaped yet.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        });
        loop {
            let name = format!("svc-{}", rng.below(NAMES as u64));
            let port = 1 + rng.below(65534) as u16;
            let current = acceptable[&name][0];
            let (method, path, body, outcome) = match current {
                None => ("POST", SERVICES.to_string(), Some(service(&name, port)), Some(port)),
                Some(_) if rng.below(5) == 0 => ("DELETE", format!("{SERVICES}/{name}"), None, None),
                Some(_) => ("PUT", format!("{SERVICES}/{name}"), Some(service(&name, port)), Some(port)),
            };
            acceptable.get_mut(&name).unwrap().push(outcome);
            let resp = coracle_e2e::http::request(d.socket(), method, &path, &[], body.as_deref().map(str::as_bytes));
            match resp {
                Ok(r) if r.status < 300 => {
                    acceptable.insert(name, vec![outcome]);
                    acked += 1;
                }
                Ok(r) => panic!("{method} {path}: {} {}", r.status, r.body),
                // The daemon died mid-request: the change may or may not have landed.
                Err(_) => break,
            }
        }
        killer.join().unwrap();
        d.kill9();
        kills += 1;
        assert_no_torn_files(d.data_dir());
        d.restart();
        verify(&d, &mut acceptable);
    }
    eprintln!("{kills} kills, {acked} acknowledged writes, {:?}", started.elapsed());
    assert!(kills >= 10, "too few kill cycles to mean anything: {kills}");
    assert!(acked > 0, "no write was ever acknowledged");
}
