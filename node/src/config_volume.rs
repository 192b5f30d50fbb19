//! `configMap` and `secret` volumes, written as the kubelet's atomic writer lays them out:
//! the files in a timestamped `..2026_12_08_05_13_00.123456789` folder, a `..data` symlink
//! to it swapped by rename, and one symlink per top-level name pointing through `..data`,
//! so a reader never sees half an update. They live in the pod's sandbox folder under the
//! run dir (a tmpfs on a board), never on flash, and are bound read-only into containers.
//! Written at each container start: a restarted container sees the object as it is then.

use super::container_spec::SpecError;
use coracle_config::core::{ConfigMap, KeyToPath, Pod, Secret, Volume};
use coracle_store::Store;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

fn config_error(message: String) -> SpecError {
    SpecError { reason: "CreateContainerConfigError", message }
}

/// One file of the volume: its relative path, content and mode.
type File = (String, Vec<u8>, u32);

/// The files `volume` (a configMap, secret or projected volume) holds now, or the
/// kubelet's message for a missing object or key that is not optional.
pub fn payload(store: &Store, pod: &Pod, volume: &Volume) -> Result<Vec<File>, SpecError> {
    if let Some(cm) = &volume.config_map {
        return files_of(store, pod, Source::ConfigMap, &cm.name, &cm.items, cm.default_mode, cm.optional);
    }
    if let Some(s) = &volume.secret {
        let name = s.secret_name.as_deref().unwrap_or("");
        return files_of(store, pod, Source::Secret, name, &s.items, s.default_mode, s.optional);
    }
    let mut files = Vec::new();
    if let Some(projected) = &volume.projected {
        for source in &projected.sources {
            let (kind, projection) = match (&source.config_map, &source.secret) {
                (Some(p), _) => (Source::ConfigMap, p),
                (None, Some(p)) => (Source::Secret, p),
                // Validation refuses the other sources by name.
                (None, None) => continue,
            };
            let mode = projected.default_mode;
            files.extend(files_of(store, pod, kind, &projection.name, &projection.items, mode, projection.optional)?);
        }
    }
    Ok(files)
}

/// True when `volume` shows the `kind` ("ConfigMap" or "Secret") object `name`.
pub fn shows(volume: &Volume, kind: &str, name: &str) -> bool {
    let projected = |secret: bool| {
        volume.projected.iter().flat_map(|p| &p.sources).any(|s| {
            let projection = if secret { &s.secret } else { &s.config_map };
            projection.as_ref().is_some_and(|p| p.name == name)
        })
    };
    match kind {
        "ConfigMap" => volume.config_map.as_ref().is_some_and(|c| c.name == name) || projected(false),
        "Secret" => volume.secret.as_ref().is_some_and(|s| s.secret_name.as_deref() == Some(name)) || projected(true),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Source {
    ConfigMap,
    Secret,
}

fn files_of(
    store: &Store,
    pod: &Pod,
    kind: Source,
    name: &str,
    items: &[KeyToPath],
    default_mode: Option<i32>,
    optional: Option<bool>,
) -> Result<Vec<File>, SpecError> {
    let namespace = &pod.metadata.namespace;
    let entries: Option<Vec<(String, Vec<u8>)>> = match kind {
        Source::ConfigMap => store
            .get_as::<ConfigMap>(namespace, name)
            .map(|c| c.entries().map(|(k, v)| (k.to_string(), v.to_vec())).collect()),
        Source::Secret => store
            .get_as::<Secret>(namespace, name)
            .map(|s| s.data.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()),
    };
    let lower = if kind == Source::Secret { "secret" } else { "configmap" };
    let optional = optional == Some(true);
    let default_mode = default_mode.unwrap_or(coracle_config::core::config_volume::DEFAULT_MODE) as u32 & 0o777;
    let Some(entries) = entries else {
        return if optional { Ok(Vec::new()) } else { Err(config_error(format!("{lower} {name:?} not found"))) };
    };
    if items.is_empty() {
        return Ok(entries.into_iter().map(|(k, v)| (k, v, default_mode)).collect());
    }
    let mut files = Vec::new();
    for item in items {
        match entries.iter().find(|(k, _)| *k == item.key) {
            Some((_, v)) => {
                files.push((item.path.clone(), v.clone(), item.mode.map_or(default_mode, |m| m as u32 & 0o777)))
            }
            None if optional => {}
            None => {
                let what = if kind == Source::Secret {
                    "secret references non-existent secret key"
                } else {
                    "configmap references non-existent config key"
                };
                return Err(config_error(format!("{what}: {}", item.key)));
            }
        }
    }
    Ok(files)
}

/// Writes `files` into `dir` with the atomic layout, replacing what an earlier write left.
pub fn write(dir: &Path, files: &[File]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let stamp = coracle_config::time::rfc3339_nanos(std::time::SystemTime::now())
        .trim_end_matches('Z')
        .replace(['-', 'T', ':'], "_");
    let version = format!("..{stamp}");
    let staged = dir.join(&version);
    fs::create_dir(&staged)?;
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o755))?;
    for (path, bytes, mode) in files {
        let target = staged.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&target, bytes)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(*mode))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    symlink(&version, &tmp)?;
    fs::rename(&tmp, dir.join("..data"))?;
    let tops: std::collections::BTreeSet<&str> =
        files.iter().filter_map(|(p, _, _)| p.split('/').find(|c| !c.is_empty())).collect();
    for top in &tops {
        let link = dir.join(top);
        if fs::symlink_metadata(&link).is_err() {
            symlink(Path::new("..data").join(top), &link)?;
        }
    }
    // What the new version no longer has: older versions and names gone from the object.
    for entry in fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale =
            if name.starts_with("..") { name != version && name != "..data" } else { !tops.contains(name.as_str()) };
        if stale {
            let path = entry.path();
            let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::base64::Base64Bytes;
    use coracle_config::core::{ConfigMapVolumeSource, SecretVolumeSource};
    use coracle_config::Object;
    use std::os::unix::fs::MetadataExt;

    fn setup(dir: &Path) -> (Store, Pod) {
        let store = Store::open(dir).unwrap();
        let mut cm = ConfigMap::default();
        cm.metadata.name = "cfg".into();
        cm.metadata.namespace = "prod".into();
        cm.data.insert("a.conf".into(), "A".into());
        cm.data.insert("b.conf".into(), "B".into());
        store.create(Object::ConfigMap(cm)).unwrap();
        let mut s = Secret::default();
        s.metadata.name = "db".into();
        s.metadata.namespace = "prod".into();
        s.data.insert("password".into(), Base64Bytes(b"pw".to_vec()));
        store.create(Object::Secret(s)).unwrap();
        let mut pod = Pod::default();
        pod.metadata.namespace = "prod".into();
        (store, pod)
    }

    fn cm_volume(items: Vec<KeyToPath>, optional: Option<bool>, name: &str) -> Volume {
        Volume {
            name: "v".into(),
            config_map: Some(ConfigMapVolumeSource { name: name.into(), items, default_mode: Some(0o640), optional }),
            ..Default::default()
        }
    }

    #[test]
    fn payloads_follow_items_modes_and_optional() {
        let dir = tempfile::tempdir().unwrap();
        let (store, pod) = setup(dir.path());
        let all = payload(&store, &pod, &cm_volume(vec![], None, "cfg")).unwrap();
        assert_eq!(all, [("a.conf".to_string(), b"A".to_vec(), 0o640), ("b.conf".into(), b"B".to_vec(), 0o640)]);
        let item = KeyToPath { key: "b.conf".into(), path: "sub/b".into(), mode: Some(0o400) };
        assert_eq!(
            payload(&store, &pod, &cm_volume(vec![item], None, "cfg")).unwrap(),
            [("sub/b".to_string(), b"B".to_vec(), 0o400)]
        );
        let missing = KeyToPath { key: "zz".into(), path: "zz".into(), mode: None };
        let e = payload(&store, &pod, &cm_volume(vec![missing.clone()], None, "cfg")).unwrap_err();
        assert_eq!(e.message, "configmap references non-existent config key: zz");
        assert!(payload(&store, &pod, &cm_volume(vec![missing], Some(true), "cfg")).unwrap().is_empty());
        let e = payload(&store, &pod, &cm_volume(vec![], None, "nope")).unwrap_err();
        assert_eq!((e.reason, e.message.as_str()), ("CreateContainerConfigError", "configmap \"nope\" not found"));
        let secret = Volume {
            name: "s".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some("db".into()),
                default_mode: Some(0o400),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(payload(&store, &pod, &secret).unwrap(), [("password".to_string(), b"pw".to_vec(), 0o400)]);
    }

    #[test]
    fn writes_swap_the_data_link_and_drop_what_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("vol");
        write(&vol, &[("a".into(), b"1".to_vec(), 0o600), ("d/b".into(), b"2".to_vec(), 0o644)]).unwrap();
        assert_eq!(fs::read(vol.join("a")).unwrap(), b"1");
        assert_eq!(fs::read(vol.join("d/b")).unwrap(), b"2");
        assert_eq!(fs::metadata(vol.join("a")).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_link(vol.join("a")).unwrap(), Path::new("..data/a"));
        let first = fs::read_link(vol.join("..data")).unwrap();
        write(&vol, &[("a".into(), b"3".to_vec(), 0o644)]).unwrap();
        assert_eq!(fs::read(vol.join("a")).unwrap(), b"3");
        assert_ne!(fs::read_link(vol.join("..data")).unwrap(), first);
        assert!(fs::symlink_metadata(vol.join("d")).is_err(), "a name gone from the object is gone");
        let versions = fs::read_dir(&vol)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("..2"))
            .count();
        assert_eq!(versions, 1, "older versions removed");
    }
}
