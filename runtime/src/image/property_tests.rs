//! The parsers that take user bytes, under arbitrary input: image references, digests, the
//! JSON documents of an archive (index, manifest, config, `docker save` manifest, the
//! store's own index) and whole archives. None may panic; what parses must round-trip; a
//! refused archive leaves nothing behind and writes nothing outside the store.

use super::digest::Digest;
use super::index::IndexFile;
use super::spec::{ConfigFile, DockerSaveEntry, Index, Manifest};
use super::tests::{assert_store_empty, entries};
use super::*;
use coracle_e2e::rawtar::{raw_tar, RawEntry};
use proptest::prelude::*;
use std::fs;

/// Strings made of the characters references are built from, so parses often succeed.
fn reference_like() -> impl Strategy<Value = String> {
    let hex = "[0-9a-f]{64}";
    prop_oneof![
        "[a-zA-Z0-9._:/@-]{0,80}",
        ("[a-z0-9._-]{1,20}(/[a-z0-9._-]{1,20}){0,3}", "(:[A-Za-z0-9_.-]{1,20})?", proptest::option::of(hex))
            .prop_map(|(n, t, d)| format!("{n}{t}{}", d.map(|d| format!("@sha256:{d}")).unwrap_or_default())),
        "(localhost|[a-z]{1,8}\\.[a-z]{2,3})(:[0-9]{1,5})?/[a-z0-9]{1,10}(:[a-z0-9]{1,8})?",
    ]
}

/// Arbitrary JSON, a few levels deep, with the keys the image documents use.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop_oneof![
        Just("manifests".to_string()),
        Just("layers".to_string()),
        Just("config".to_string()),
        Just("digest".to_string()),
        Just("mediaType".to_string()),
        Just("size".to_string()),
        Just("rootfs".to_string()),
        Just("diff_ids".to_string()),
        Just("Config".to_string()),
        Just("Layers".to_string()),
        Just("RepoTags".to_string()),
        Just("schemaVersion".to_string()),
        Just("platform".to_string()),
        Just("images".to_string()),
        Just("tags".to_string()),
        "[a-zA-Z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        "sha256:[0-9a-f]{0,70}".prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON decoder a load runs over user bytes.
fn decode_all(bytes: &[u8]) {
    let _ = serde_json::from_slice::<Index>(bytes);
    let _ = serde_json::from_slice::<Manifest>(bytes);
    let _ = serde_json::from_slice::<ConfigFile>(bytes);
    let _ = serde_json::from_slice::<Vec<DockerSaveEntry>>(bytes);
    let _ = serde_json::from_slice::<IndexFile>(bytes);
    if let Ok(config) = serde_json::from_slice::<ConfigFile>(bytes) {
        let _ = ImageConfig::from_config_file(&config);
    }
}

/// Entry names from the pieces hostile archives are made of.
fn entry_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("a"),
        Just("b"),
        Just(".."),
        Just("."),
        Just(""),
        Just(".wh.a"),
        Just(".wh.."),
        Just(".wh...."),
        Just(".wh..wh..opq"),
        Just("blobs"),
        Just("sha256"),
        Just("index.json"),
        Just("manifest.json"),
    ];
    (any::<bool>(), prop::collection::vec(piece, 1..5))
        .prop_map(|(absolute, parts)| format!("{}{}", if absolute { "/" } else { "" }, parts.join("/")))
}

/// The names an absolute entry path could create at the host's root.
const ROOT_NAMES: [&str; 6] = ["a", "b", "blobs", "sha256", "index.json", "manifest.json"];

fn raw_entry() -> impl Strategy<Value = RawEntry> {
    (entry_name(), 0..7u8, entry_name(), prop::collection::vec(any::<u8>(), 0..64), any::<u16>()).prop_map(
        |(name, kind, link, data, mode)| {
            let entry = match kind {
                0 => RawEntry::file(&name, &data),
                1 => RawEntry::dir(&name),
                2 => RawEntry::symlink(&name, &link),
                3 => RawEntry::hardlink(&name, &link),
                4 => RawEntry::device(&name, tar::EntryType::Char, 1, 1),
                5 => RawEntry::device(&name, tar::EntryType::Block, 8, 0),
                _ => RawEntry { kind: tar::EntryType::Fifo, ..RawEntry::file(&name, b"") },
            };
            entry.mode(u32::from(mode) & 0o7777)
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn references_never_panic_and_what_parses_round_trips(s in prop_oneof![reference_like(), any::<String>()]) {
        if let Ok(r) = Reference::parse(&s) {
            let canonical = r.to_string();
            let again = Reference::parse(&canonical).expect("a normalized reference parses");
            prop_assert_eq!(again.to_string(), canonical);
        }
    }

    #[test]
    fn digests_never_panic_and_what_parses_is_the_input(s in prop_oneof!["sha256:[0-9a-fA-F]{60,68}", any::<String>()]) {
        if let Ok(d) = Digest::parse(&s) {
            prop_assert_eq!(d.as_str(), s.as_str());
            prop_assert_eq!(d.hex().len(), 64);
        }
    }

    #[test]
    fn json_decoders_never_panic_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn json_decoders_never_panic_on_documents(doc in json()) {
        decode_all(&serde_json::to_vec(&doc).unwrap());
    }

    #[test]
    fn resolving_and_removing_arbitrary_names_never_panics(s in prop_oneof![reference_like(), any::<String>()]) {
        let work = tempfile::tempdir().unwrap();
        let store = ImageStore::open(&work.path().join("data")).unwrap();
        let _ = store.resolve(&s);
        let _ = store.remove(&s, &|_| false);
    }
}

proptest! {
    // Each case opens a store and unpacks: fewer, still varied.
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_refused_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data");
        let store = ImageStore::open(&data).unwrap();
        prop_assert!(store.load_reader(&bytes[..]).is_err());
        assert_store_empty(&data);
    }

    /// Arbitrary entries as the archive and as its one layer (index.json and friends
    /// arbitrary too): loads or not, nothing lands outside the store or stays behind.
    #[test]
    fn arbitrary_tar_entries_stay_inside(
        archive_entries in prop::collection::vec(raw_entry(), 0..8),
        layer_entries in prop::collection::vec(raw_entry(), 0..12),
        index in json(),
    ) {
        let work = tempfile::tempdir().unwrap();
        let data = work.path().join("data");
        let store = ImageStore::open(&data).unwrap();
        let at_root = || ROOT_NAMES.map(|n| std::path::Path::new("/").join(n).symlink_metadata().is_ok());
        let before = at_root();
        let _ = store.load_reader(&raw_tar(&archive_entries)[..]);
        let layer = raw_tar(&layer_entries);
        let image = coracle_e2e::hostile::oci_archive("localhost/prop:1", vec![layer], &work.path().join("build"));
        let mut files = coracle_e2e::rawtar::tar_files(&image);
        files.retain(|(name, _)| name != "index.json");
        files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
        let _ = store.load_reader(&coracle_e2e::rawtar::files_tar(&files)[..]);
        let loaded = store.load_reader(&image[..]);
        if loaded.is_ok() {
            store.remove("localhost/prop:1", &|_| false).unwrap();
        }
        assert_store_empty(&data);
        // Only the store and the build directory: nothing was written beside them.
        prop_assert_eq!(entries(work.path()), ["build".to_string(), "data".to_string()]);
        prop_assert_eq!(entries(&data), ["images".to_string()]);
        prop_assert_eq!(at_root(), before, "nothing made at /");
    }
}

#[test]
fn the_property_tests_reach_success_paths_too() {
    // A property test that only ever sees refusals would prove little about the parsers.
    assert!(Reference::parse("localhost/app:1").is_ok());
    let work = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&work.path().join("data")).unwrap();
    let layer = raw_tar(&[RawEntry::dir("a"), RawEntry::file("a/b", b"x"), RawEntry::symlink("c", "a/b")]);
    let image = coracle_e2e::hostile::oci_archive("localhost/prop:1", vec![layer], &work.path().join("build"));
    assert_eq!(store.load_reader(&image[..]).unwrap(), ["localhost/prop:1"]);
    assert!(fs::read_dir(work.path().join("data/images/layers")).unwrap().count() == 1);
}
