//! Compression bombs and budgets: each load stops at its budget with the layer and the
//! setting named, nothing is left behind, and the bytes it wrote — counted by the kernel for
//! this thread, not timed — stay within the budget. Also: a load whose client goes away
//! stops where it is.

use super::budget::RATIO_GRACE;
use super::hostile_tests::devices_under;
use super::tests::{assert_store_empty, root};
use super::*;
use coracle_config::settings::ImageSettings;
use coracle_e2e::bombs::{bomb_image, gzip_bomb, zstd_bomb, GZIP_LAYER, ZSTD_LAYER};
use coracle_e2e::images::{write_image, Compression, Format, ImageBuild};
use coracle_e2e::rawtar::{raw_tar, RawEntry};
use coracle_e2e::skip_unless_free_space;
use std::cell::Cell;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// Free space a bomb test needs so that its own budget, not the free-space one, stops it:
/// the staged archive and the ratio's grace are well under 80 % of this.
const BOMB_ROOM: u64 = 512 * MIB;

/// Bytes this thread has passed to write(2) and friends so far (`wchar`).
fn written_by_this_thread() -> u64 {
    let io = fs::read_to_string("/proc/thread-self/io").expect("reading /proc/thread-self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("wchar in /proc/thread-self/io")
}

/// Loads `archive` into a fresh store under `settings`; the error and the bytes written.
fn load_measured(settings: &ImageSettings, archive: &[u8], data: &Path) -> (String, u64) {
    let store = ImageStore::open_with(data, settings).unwrap();
    let before = written_by_this_thread();
    let err = store.load_reader(archive).expect_err("a bomb must not load").to_string();
    let written = written_by_this_thread() - before;
    eprintln!("{} archive bytes in, {written} bytes written: {err}", archive.len());
    assert_store_empty(data);
    assert!(store.list().is_empty());
    (err, written)
}

#[test]
fn a_twenty_gib_gzip_bomb_stops_at_the_ratio_after_its_grace() {
    let work = tempfile::tempdir().unwrap();
    if skip_unless_free_space(work.path(), BOMB_ROOM) {
        return;
    }
    let archive = bomb_image("localhost/bomb-gzip:1", &gzip_bomb("zeros", 20 * GIB), GZIP_LAYER);
    let (err, written) = load_measured(&ImageSettings::default(), &archive, &work.path().join("data"));
    assert!(err.contains("layer sha256:") && err.contains("of localhost/bomb-gzip:1"), "{err}");
    assert!(err.contains("expands to more than 100 times its compressed size"), "{err}");
    assert!(err.contains("images.max_compression_ratio"), "{err}");
    // The archive is staged (its ~20 MB), then the layer unpacks its grace and stops.
    let staged = archive.len() as u64;
    assert!(written >= staged, "the counter sees the staged archive: {written} < {staged}");
    assert!(written < staged + RATIO_GRACE + 4 * MIB, "wrote {written} bytes for a {staged}-byte archive");
}

#[test]
fn a_layer_budget_stops_a_bomb_at_the_budget() {
    let work = tempfile::tempdir().unwrap();
    if skip_unless_free_space(work.path(), BOMB_ROOM) {
        return;
    }
    let settings = ImageSettings { max_layer_bytes: Some(8 * MIB), max_compression_ratio: 0, ..Default::default() };
    let archive = bomb_image("localhost/bomb-cap:1", &gzip_bomb("zeros", 20 * GIB), GZIP_LAYER);
    let (err, written) = load_measured(&settings, &archive, &work.path().join("data"));
    assert!(err.contains("of localhost/bomb-cap:1: tar stream: unpacks to more than 8388608 bytes"), "{err}");
    assert!(err.ends_with("its budget under images.max_layer_bytes"), "{err}");
    assert!(written < archive.len() as u64 + 9 * MIB, "wrote {written} bytes");
}

#[test]
fn a_zstd_bomb_stops_at_the_ratio() {
    let work = tempfile::tempdir().unwrap();
    if skip_unless_free_space(work.path(), BOMB_ROOM) {
        return;
    }
    let archive = bomb_image("localhost/bomb-zstd:1", &zstd_bomb("zeros", 20 * GIB), ZSTD_LAYER);
    assert!(archive.len() < 2 << 20, "{} bytes of zstd for 20 GiB", archive.len());
    let (err, written) = load_measured(&ImageSettings::default(), &archive, &work.path().join("data"));
    assert!(err.contains("of localhost/bomb-zstd:1") && err.contains("times its compressed size"), "{err}");
    assert!(written < archive.len() as u64 + RATIO_GRACE + 4 * MIB, "wrote {written} bytes");
}

#[test]
fn a_whole_archive_bomb_stops_while_staging() {
    let work = tempfile::tempdir().unwrap();
    if skip_unless_free_space(work.path(), BOMB_ROOM) {
        return;
    }
    let archive = gzip_bomb(&format!("blobs/sha256/{}", "0".repeat(64)), 20 * GIB);
    let (err, written) = load_measured(&ImageSettings::default(), &archive, &work.path().join("data"));
    assert!(err.starts_with("image archive: expands to more than 100 times"), "{err}");
    assert!(written < RATIO_GRACE + 4 * MIB, "wrote {written} bytes");
}

/// A layer tar of one file of `n` zero bytes.
fn zeros_layer(name: &str, n: usize) -> Vec<u8> {
    raw_tar(&[RawEntry::file(name, &vec![0u8; n])])
}

#[test]
fn an_image_budget_counts_every_layer() {
    let work = tempfile::tempdir().unwrap();
    let image = ImageBuild {
        reference: "localhost/two-big:1".into(),
        run_config: serde_json::json!({}),
        layers: vec![zeros_layer("a", 6 << 20), zeros_layer("b", 6 << 20)],
        compression: Compression::Gzip,
    };
    let archive = fs::read(write_image(&image, Format::OciArchive, work.path())).unwrap();
    let settings = ImageSettings { max_image_bytes: Some(10 * MIB), ..Default::default() };
    let (err, _) = load_measured(&settings, &archive, &work.path().join("data"));
    let first_layer = 512 + (6 << 20) + 1024;
    assert!(
        err.contains(&format!(
            "its budget under images.max_image_bytes (10485760 for the whole image, {first_layer} used)"
        )),
        "{err}"
    );
    // Within budget, the same image loads.
    let settings = ImageSettings { max_image_bytes: Some(20 * MIB), ..Default::default() };
    let store = ImageStore::open_with(&work.path().join("data2"), &settings).unwrap();
    assert_eq!(store.load_reader(&archive[..]).unwrap(), ["localhost/two-big:1"]);
}

#[test]
fn a_load_takes_at_most_its_share_of_the_free_space() {
    if !root() {
        eprintln!("skipping: a small tmpfs for the store needs root");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let image = ImageBuild {
        reference: "localhost/too-big:1".into(),
        run_config: serde_json::json!({}),
        layers: vec![zeros_layer("big", 30 << 20)],
        compression: Compression::None,
    };
    let archive = fs::read(write_image(&image, Format::DockerArchive, work.path())).unwrap();
    let small = work.path().join("small");
    fs::create_dir(&small).unwrap();
    // A thread of its own in a mount namespace of its own: the tmpfs is seen by nobody else
    // and goes with the thread.
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            use nix::mount::{mount, MsFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS | nix::sched::CloneFlags::CLONE_FS)?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)?;
            mount(Some("tmpfs"), &small, Some("tmpfs"), MsFlags::empty(), Some("size=64m"))?;
            let data = small.join("data");
            let store = ImageStore::open(&data).unwrap();
            let err = store.load_reader(&archive[..]).expect_err("30 + 30 MiB cannot fit 80% of 64 MiB").to_string();
            assert_store_empty(&data);
            Ok::<String, nix::Error>(err)
        })
        .join()
        .expect("the tmpfs thread")
    });
    let err = match result {
        Ok(err) => err,
        Err(e) => {
            eprintln!("skipping: no private tmpfs here ({e})");
            return;
        }
    };
    assert!(err.contains("layer sha256:") && err.contains("of localhost/too-big:1"), "{err}");
    assert!(err.contains("its budget under images.free_space_percent (80% of the "), "{err}");
    assert!(err.contains("bytes free on ") && err.contains("when the load started)"), "{err}");
}

/// A reader that says (through `done`) once all of its input has been read: the tar reader
/// stops at the end-of-archive blocks, so "all" is counted, not seen as an EOF.
struct Finishes<'a> {
    inner: &'a [u8],
    done: &'a Cell<bool>,
}

impl Read for Finishes<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.inner.is_empty() {
            self.done.set(true);
        }
        Ok(n)
    }
}

#[test]
fn a_client_gone_after_its_upload_stops_the_load_before_unpacking() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // Nothing but the client's departure may stop this one: no ratio, a cap for safety only.
    let settings = ImageSettings { max_compression_ratio: 0, max_layer_bytes: Some(4 * GIB), ..Default::default() };
    let store = ImageStore::open_with(&data, &settings).unwrap();
    let archive = bomb_image("localhost/left:1", &gzip_bomb("zeros", 2 * GIB), GZIP_LAYER);
    let uploaded = Cell::new(false);
    let before = written_by_this_thread();
    // The client leaves as soon as its upload is through.
    let err = store.load_upload(Finishes { inner: &archive[..], done: &uploaded }, &|| uploaded.get()).unwrap_err();
    let written = written_by_this_thread() - before;
    eprintln!("{} archive bytes in, {written} bytes written: {err}", archive.len());
    assert!(matches!(err, ImageError::Abandoned { .. }), "{err}");
    assert!(err.to_string().contains("the client went away before the load finished; nothing was stored"), "{err}");
    assert!(written < archive.len() as u64 + 4 * MIB, "wrote {written} bytes after the client left");
    assert_store_empty(&data);
}

#[test]
fn a_client_gone_while_a_layer_unpacks_stops_it_at_the_next_check() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let settings = ImageSettings { max_compression_ratio: 0, max_layer_bytes: Some(4 * GIB), ..Default::default() };
    let store = ImageStore::open_with(&data, &settings).unwrap();
    let archive = bomb_image("localhost/midway:1", &gzip_bomb("zeros", 2 * GIB), GZIP_LAYER);
    // Asked once before the layer, then after each MiB it unpacks: gone from the third ask.
    let asked = Cell::new(0u32);
    let gone = || {
        asked.set(asked.get() + 1);
        asked.get() >= 3
    };
    let before = written_by_this_thread();
    let err = store.load_upload(&archive[..], &gone).unwrap_err();
    let written = written_by_this_thread() - before;
    eprintln!("{} archive bytes in, {written} bytes written: {err}", archive.len());
    assert!(matches!(err, ImageError::Abandoned { .. }), "{err}");
    let unpacked = written - archive.len() as u64;
    assert!((MIB..3 * MIB).contains(&unpacked), "unpacked {unpacked} bytes before stopping");
    assert_store_empty(&data);
}

#[test]
fn a_client_gone_before_its_upload_ends_leaves_nothing() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let store = ImageStore::open(&data).unwrap();
    let image = ImageBuild::busybox("localhost/half:1", &["sh"]);
    let archive = fs::read(write_image(&image, Format::OciArchive, work.path())).unwrap();
    let half = &archive[..archive.len() / 2];
    // As the API sees it: the body ends early and the client is known to be gone.
    let err = store.load_upload(half, &|| true).unwrap_err();
    assert!(matches!(err, ImageError::Abandoned { .. }), "{err}");
    assert_store_empty(&data);
    assert_eq!(devices_under(work.path()), Vec::<std::path::PathBuf>::new());
    // The same half without a departed client is a plain malformed archive.
    let err = store.load_upload(half, &|| false).unwrap_err();
    assert!(!matches!(err, ImageError::Abandoned { .. }), "{err}");
    assert_store_empty(&data);
    assert_eq!(store.load_reader(&archive[..]).unwrap(), ["localhost/half:1"]);
}
