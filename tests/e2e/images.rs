//! The image loader as an attacker meets it, through a real daemon: the hostile archive
//! battery refused over the API; a hostile image's device nodes not made and its set-id
//! files kept only where no other user reaches; compression bombs stopped at their budget
//! (the daemon's written bytes counted by the kernel, not timed); uploads abandoned mid-way
//! or mid-unpack stopped and cleaned up, the daemon serving on.

use coracle_e2e::bombs::{bomb_image, gzip_bomb, GZIP_LAYER};
use coracle_e2e::hostile::{defused_layer, oci_archive, refused, DEFUSED_DEVICES};
use coracle_e2e::images::{write_image, Format, ImageBuild};
use coracle_e2e::{skip_unless_free_space, skip_unless_root, wait_for, Daemon};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const IMAGES: &str = "/apis/images.coracle.io/v1/images";
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Daemons here run without pod networking: the tests load images, they start no pods.
const NO_NETWORK: &str = "network: {mode: none}\n";

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

/// Layers, blobs and staging of the daemon's image store are all empty.
fn assert_store_empty(d: &Daemon) {
    let images = d.data_dir().join("images");
    for sub in ["layers", "blobs/sha256", "tmp"] {
        assert_eq!(names(&images.join(sub)), Vec::<String>::new(), "images/{sub} left behind");
    }
}

/// Character and block devices under `dir`, other than overlay's 0/0 whiteouts.
fn devices_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.is_dir() {
            found.extend(devices_under(&path));
        } else if (meta.file_type().is_char_device() || meta.file_type().is_block_device()) && meta.rdev() != 0 {
            found.push(path);
        }
    }
    found
}

/// Bytes the daemon (all its threads, live and gone) has passed to write(2) so far.
fn written_by(d: &Daemon) -> u64 {
    let pid = d.pid().expect("a running daemon");
    let io = fs::read_to_string(format!("/proc/{pid}/io")).expect("reading the daemon's /proc/PID/io");
    io.lines().find_map(|l| l.strip_prefix("wchar: ")).and_then(|n| n.trim().parse().ok()).expect("wchar")
}

/// What would show a write to a file: inode, link count, size, mtime.
type Stamp = (u64, u64, u64, i64);

/// The stamps of the host's account files.
fn host_files() -> Vec<Option<Stamp>> {
    ["/etc/passwd", "/etc/shadow", "/etc/group"]
        .iter()
        .map(|p| fs::symlink_metadata(p).ok().map(|m| (m.ino(), m.nlink(), m.size(), m.mtime())))
        .collect()
}

/// POSTs an archive; the status and the Status message (or the body when it has none).
fn upload(d: &Daemon, archive: &[u8]) -> (u16, String) {
    let resp = d.request("POST", IMAGES, &[("Content-Type", "application/x-tar")], Some(archive));
    let message = serde_json::from_str::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(|m| format!("{m} ({})", v["reason"].as_str().unwrap_or(""))));
    (resp.status, message.unwrap_or(resp.body))
}

fn assert_serving(d: &Daemon) {
    assert_eq!(d.http("GET", "/healthz", None).0, 200, "the daemon still serves");
    d.load_busybox("localhost/after:1", &["sh"]);
    assert!(d.ctl_ok(&["image", "ls"]).contains("localhost/after"), "and still loads images");
}

#[test]
fn hostile_archives_are_refused_over_the_api_and_nothing_escapes() {
    if skip_unless_root("the daemon unpacks layers as root") {
        return;
    }
    let d = Daemon::start();
    let outside = d.root().join("outside");
    fs::create_dir(&outside).unwrap();
    let before = host_files();
    let cases = refused(&outside, &d.root().join("build"));
    assert!(cases.len() >= 26, "{} archives", cases.len());
    for case in &cases {
        let (status, body) = upload(&d, &case.archive);
        assert_eq!(status, 400, "{}: a client's error: {body}", case.name);
        assert!(body.contains(&case.refusal), "{}: {body}", case.name);
        assert_store_empty(&d);
    }
    assert_eq!(names(&outside), Vec::<String>::new());
    assert_eq!(host_files(), before, "the host's account files are untouched");
    assert_eq!(devices_under(d.root()), Vec::<PathBuf>::new());
    assert_eq!(d.get_json(IMAGES)["items"], serde_json::json!([]));
    assert_serving(&d);
}

/// Whether `path` can be reached (stat'ed) by uid/gid 65534 with no groups.
fn nobody_reaches(path: &Path) -> bool {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "stat", "--"])
        .arg(path)
        .output()
        .expect("running setpriv (util-linux)");
    out.status.success()
}

#[test]
fn a_hostile_image_makes_no_device_and_its_set_id_files_stay_private() {
    if skip_unless_root("device nodes and set-id files are root's to make") {
        return;
    }
    let mut d = Daemon::start();
    let outside = d.root().join("outside");
    fs::create_dir(&outside).unwrap();
    let archive = oci_archive("localhost/defused:1", vec![defused_layer(&outside)], &d.root().join("build"));
    let path = d.root().join("defused.tar");
    fs::write(&path, &archive).unwrap();
    assert!(d.ctl_ok(&["image", "load", &path.display().to_string()]).contains("localhost/defused:1"));
    let log = d.log();
    assert!(log.contains("5 device node(s) not created (/dev/mem, /dev/sda, /dev/loop0, /dev/zero-zero, …)"), "{log}");

    let images = d.data_dir().join("images");
    let layers: Vec<PathBuf> = names(&images.join("layers")).iter().map(|n| images.join("layers").join(n)).collect();
    assert_eq!(layers.len(), 1);
    let layer = &layers[0];
    for dev in DEFUSED_DEVICES {
        assert!(fs::symlink_metadata(layer.join(dev)).is_err(), "{dev} made");
    }
    assert_eq!(devices_under(d.root()), Vec::<PathBuf>::new(), "no device node anywhere");
    let su = layer.join("bin/su");
    assert_eq!(fs::metadata(&su).unwrap().mode() & 0o7777, 0o4755, "set-id kept for the container");

    // Kept only where no other user of the host reaches: the store and the data dir are
    // root's and 0700.
    for dir in [d.data_dir(), images.as_path()] {
        let meta = fs::metadata(dir).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o7777), (0, 0o700), "{}", dir.display());
    }
    // The test's own directory is 0700 too: open it, so only the daemon's modes decide.
    fs::set_permissions(d.root(), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(nobody_reaches(d.root()), "the check itself can succeed");
    assert!(!nobody_reaches(&su), "another user reaches {}", su.display());
    assert!(!nobody_reaches(&images), "another user reaches the store");

    // A data dir someone opened up is private again once the daemon starts.
    d.stop();
    for dir in [d.data_dir().to_path_buf(), images.clone()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    assert!(nobody_reaches(&su), "0755 all the way down would expose the set-id file");
    d.restart();
    for dir in [d.data_dir(), images.as_path()] {
        assert_eq!(fs::metadata(dir).unwrap().mode() & 0o7777, 0o700, "{} made private again", dir.display());
    }
    assert!(!nobody_reaches(&su));
    assert_eq!(names(&outside), Vec::<String>::new());
}

#[test]
fn compression_bombs_stop_at_their_budget() {
    if skip_unless_root("the daemon's /proc/PID/io is root's to read") {
        return;
    }
    // The bombs must meet their own budgets, not the free-space one (512 MiB is ample).
    if skip_unless_free_space(&std::env::temp_dir(), 512 * MIB) {
        return;
    }
    let d = Daemon::start_with_config(&format!("{NO_NETWORK}images: {{max_layer_bytes: {}}}\n", 32 * MIB));
    let build = d.root().join("build");
    fs::create_dir(&build).unwrap();

    // A 20 GiB layer in a 20 MB archive, through the ctl: the layer budget stops it.
    let bomb = bomb_image("localhost/bomb:1", &gzip_bomb("zeros", 20 * GIB), GZIP_LAYER);
    let path = build.join("bomb.tar");
    fs::write(&path, &bomb).unwrap();
    let before = written_by(&d);
    let out = d.ctl(&["image", "load", &path.display().to_string()]);
    let written = written_by(&d) - before;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("gzip bomb: {} bytes in, {written} bytes written by the daemon", bomb.len());
    assert!(!out.status.success());
    assert!(stderr.contains("of localhost/bomb:1: tar stream: unpacks to more than 33554432 bytes"), "{stderr}");
    assert!(stderr.contains("its budget under images.max_layer_bytes"), "{stderr}");
    assert!(written >= bomb.len() as u64, "the counter sees the staged archive");
    assert!(written < bomb.len() as u64 + 32 * MIB + 8 * MIB, "the daemon wrote {written} bytes");
    assert_store_empty(&d);

    // A whole archive that is a bomb: stopped by the compression ratio while staging.
    let archive_bomb = gzip_bomb(&format!("blobs/sha256/{}", "0".repeat(64)), 20 * GIB);
    let before = written_by(&d);
    let (status, body) = upload(&d, &archive_bomb);
    let written = written_by(&d) - before;
    eprintln!("archive bomb: {} bytes in, {written} bytes written by the daemon", archive_bomb.len());
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("image archive: expands to more than 100 times its compressed size"), "{body}");
    assert!(body.ends_with("(RequestEntityTooLarge)"), "{body}");
    assert!(written < 64 * MIB + 8 * MIB, "the daemon wrote {written} bytes");
    assert_store_empty(&d);
    assert_serving(&d);
}

/// The request head of an image upload, with the body's `Content-Length` or chunked.
fn upload_head(length: Option<usize>) -> String {
    let framing = match length {
        Some(n) => format!("Content-Length: {n}"),
        None => "Transfer-Encoding: chunked".to_string(),
    };
    format!("POST {IMAGES} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-tar\r\n{framing}\r\n\r\n")
}

/// How many loads the daemon has logged as abandoned.
fn abandoned_in_log(d: &Daemon) -> usize {
    d.log().matches("image load abandoned by its client").count()
}

fn wait_abandoned(d: &Daemon, count: usize, what: &str) {
    wait_for(what, Duration::from_secs(120), || (abandoned_in_log(d) >= count).then_some(()));
    wait_for("the staging to be removed", Duration::from_secs(30), || {
        names(&d.data_dir().join("images/tmp")).is_empty().then_some(())
    });
    assert_store_empty(d);
}

#[test]
fn abandoned_uploads_stop_and_leave_nothing() {
    if skip_unless_root("the daemon's /proc/PID/io is root's to read") {
        return;
    }
    // Nothing but the client's departure may stop the third upload: no ratio, a cap only
    // so that a daemon which failed to notice would not fill the disk.
    let d = Daemon::start_with_config(&format!(
        "{NO_NETWORK}images: {{max_compression_ratio: 0, max_layer_bytes: {}}}\n",
        4 * GIB
    ));
    let build = d.root().join("build");
    let busybox =
        fs::read(write_image(&ImageBuild::busybox("localhost/half:1", &["sh"]), Format::OciArchive, &build)).unwrap();
    let half = &busybox[..busybox.len() / 2];

    // Half an archive of a stated length, then the connection closed.
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.write_all(upload_head(Some(busybox.len())).as_bytes()).unwrap();
    s.write_all(half).unwrap();
    drop(s);
    wait_abandoned(&d, 1, "the half upload to be abandoned");

    // Half of a chunked one, then closed between chunks.
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.write_all(upload_head(None).as_bytes()).unwrap();
    s.write_all(format!("{:x}\r\n", half.len()).as_bytes()).unwrap();
    s.write_all(half).unwrap();
    s.write_all(b"\r\n").unwrap();
    drop(s);
    wait_abandoned(&d, 2, "the half chunked upload to be abandoned");

    // All of an archive whose layer unpacks to 2 GiB, and the client gone as soon as it is
    // sent: the daemon stops unpacking instead of writing 2 GiB nobody waits for.
    let bomb = bomb_image("localhost/left:1", &gzip_bomb("zeros", 2 * GIB), GZIP_LAYER);
    let before = written_by(&d);
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.write_all(upload_head(Some(bomb.len())).as_bytes()).unwrap();
    s.write_all(&bomb).unwrap();
    drop(s);
    wait_abandoned(&d, 3, "the unpacking to stop after the client left");
    let written = written_by(&d) - before;
    eprintln!("abandoned after upload: {} bytes in, {written} bytes written by the daemon", bomb.len());
    assert!(written < bomb.len() as u64 + 16 * MIB, "the daemon wrote {written} bytes after its client left");

    assert_eq!(d.get_json(IMAGES)["items"], serde_json::json!([]));
    assert_serving(&d);
}
