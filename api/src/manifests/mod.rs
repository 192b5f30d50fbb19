//! The manifests directory follower: files there are applied at start and followed while
//! the daemon runs — a file added, changed or removed creates, updates or deletes its
//! objects. The directory is polled: a stat per file per pass, nothing written when
//! nothing changed.

pub mod apply;
pub mod scan;

pub use apply::FILE_ANNOTATION;

use coracle_net::services::allocator::ServiceAllocator;
use coracle_store::Store;
use scan::Fingerprint;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// One directory's state between passes.
pub struct Follower {
    store: Store,
    services: Arc<ServiceAllocator>,
    dir: PathBuf,
    /// The fingerprint of each file as last seen (applied, or refused as bad).
    seen: BTreeMap<String, Fingerprint>,
    first_pass_done: bool,
}

impl Follower {
    /// A follower of `dir` that has not looked yet; Services get their addresses from
    /// `services`, as through the API.
    pub fn new(store: Store, services: Arc<ServiceAllocator>, dir: PathBuf) -> Follower {
        Follower { store, services, dir, seen: BTreeMap::new(), first_pass_done: false }
    }

    /// One pass: applies new and changed files, deletes the objects of removed ones. The
    /// first pass also deletes objects whose file went away while the daemon was down.
    pub fn sync(&mut self) {
        let listing = match scan::scan(&self.dir) {
            Ok(listing) => listing,
            Err(e) => {
                log::warn!("manifests: {e}");
                return;
            }
        };
        for (name, fingerprint) in &listing {
            if self.seen.get(name) == Some(fingerprint) {
                continue;
            }
            self.seen.insert(name.clone(), *fingerprint);
            let path = self.dir.join(name);
            let result = std::fs::read_to_string(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))
                .and_then(|text| apply::apply(&self.store, &self.services, name, &text));
            if let Err(e) = result {
                log::warn!("manifests: {}: {e}; objects from this file are left as they were", path.display());
            }
        }
        let gone: BTreeSet<String> = if self.first_pass_done {
            self.seen.keys().filter(|name| !listing.contains_key(*name)).cloned().collect()
        } else {
            apply::annotated(&self.store)
                .into_iter()
                .map(|(file, _)| file)
                .filter(|f| !listing.contains_key(f))
                .collect()
        };
        for name in gone {
            log::info!("manifests: {name} was removed; deleting its objects");
            apply::delete_leftovers(&self.store, &name, &BTreeSet::new());
            self.seen.remove(&name);
        }
        self.first_pass_done = true;
    }
}

/// The follower running on its own thread.
pub struct ManifestFollower {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl ManifestFollower {
    /// Applies the directory now, then follows it every `interval` on a thread.
    pub fn start(store: Store, services: Arc<ServiceAllocator>, dir: PathBuf, interval: Duration) -> ManifestFollower {
        let mut follower = Follower::new(store, services, dir);
        log::info!("manifests: applying {}", follower.dir.display());
        follower.sync();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("manifests".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    std::thread::park_timeout(interval);
                    if !flag.load(Ordering::SeqCst) {
                        follower.sync();
                    }
                }
            })
            .expect("spawning the manifests follower");
        ManifestFollower { stop, handle }
    }

    /// Stops following and waits for the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.thread().unpark();
        let _ = self.handle.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::core::Service;
    use coracle_config::object::Resource;

    fn service(name: &str, port: u16) -> String {
        format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  ports:\n  - port: {port}\n")
    }

    fn port(store: &Store, name: &str) -> Option<i64> {
        let obj = store.get(&Service::INFO, "default", name)?;
        Some(obj.to_json()["spec"]["ports"][0]["port"].as_i64().expect("a port"))
    }

    fn services() -> Arc<ServiceAllocator> {
        Arc::new(ServiceAllocator::new("10.96.0.0/16".parse().unwrap()))
    }

    #[test]
    fn a_field_coracle_does_not_support_refuses_the_file_by_name() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  dnsConfig: {nameservers: [1.1.1.1]}\n  \
                    containers: [{name: c, image: busybox}]\n";
        let e = apply::load("pod.yaml", text).unwrap_err();
        assert_eq!(e, "document 1: spec.dnsConfig: Forbidden: not supported by Coracle");
        // A misspelt field is only logged, as before: the object loads without it.
        let text = text.replace("dnsConfig", "dnsConfg");
        assert_eq!(apply::load("pod.yaml", &text).unwrap().len(), 1);
    }

    #[test]
    fn files_added_changed_broken_and_removed() {
        let data = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(data.path()).unwrap();
        let mut follower = Follower::new(store.clone(), services(), dir.path().to_path_buf());
        let file = dir.path().join("app.yaml");

        std::fs::write(&file, format!("{}---\n{}", service("a", 80), service("b", 81))).unwrap();
        follower.sync();
        assert_eq!((port(&store, "a"), port(&store, "b")), (Some(80), Some(81)));
        let a = store.get(&Service::INFO, "default", "a").unwrap();
        assert_eq!(a.metadata().annotations.get(FILE_ANNOTATION).map(String::as_str), Some("app.yaml"));

        std::fs::write(&file, service("a", 90)).unwrap();
        follower.sync();
        assert_eq!((port(&store, "a"), port(&store, "b")), (Some(90), None));

        std::fs::write(&file, "kind: Service\nmetadata: [oops\n").unwrap();
        follower.sync();
        assert_eq!(port(&store, "a"), Some(90), "a bad file leaves its objects alone");

        std::fs::remove_file(&file).unwrap();
        follower.sync();
        assert_eq!(port(&store, "a"), None);
    }

    #[test]
    fn first_pass_deletes_objects_of_files_removed_while_down() {
        let data = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(data.path()).unwrap();
        std::fs::write(dir.path().join("gone.yaml"), service("old", 80)).unwrap();
        Follower::new(store.clone(), services(), dir.path().to_path_buf()).sync();
        assert_eq!(port(&store, "old"), Some(80));
        std::fs::remove_file(dir.path().join("gone.yaml")).unwrap();
        Follower::new(store.clone(), services(), dir.path().to_path_buf()).sync();
        assert_eq!(port(&store, "old"), None);
    }
}
