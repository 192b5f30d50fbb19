//! ConfigMap and Secret volumes follow their objects in running pods, as the kubelet's
//! volume manager does: a watch on both kinds rewrites the volumes of the pods on this node
//! that name the changed object, each with the atomic `..data` swap, so a container reads
//! the old or the new files, never a mix. subPath mounts bind one file of one version and
//! keep it, as in Kubernetes; environment variables are read only at container start.

use super::{config_volume, layout};
use coracle_config::core::{ConfigMap, Pod, Secret};
use coracle_config::object::{Object, Resource};
use coracle_store::{Store, WatchEnd, WatchFilter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a wait on the watch lasts before the stop flag is looked at again.
const TICK: Duration = Duration::from_secs(1);

/// Rewrites every volume, of the pods in `namespace`, that shows the `kind` object `name`
/// and has been written for a container already (its folder exists). An object gone, or
/// a key an item needs gone, leaves the files as they were, as the kubelet does.
pub fn refresh(store: &Store, run_dir: &Path, kind: &str, namespace: &str, name: &str) {
    for pod in store.list_as::<Pod>(Some(namespace), None).iter() {
        for volume in pod.spec.volumes.iter().filter(|v| config_volume::shows(v, kind, name)) {
            let dir = volume_dir(run_dir, &pod.metadata.uid, &volume.name);
            if !dir.is_dir() {
                continue;
            }
            match config_volume::payload(store, pod, volume) {
                Ok(files) => {
                    if let Err(e) = config_volume::write(&dir, &files) {
                        log::warn!(
                            "node: updating volume {} of pod {namespace}/{}: {e}",
                            volume.name,
                            pod.metadata.name
                        );
                    }
                }
                Err(e) => log::info!(
                    "node: volume {} of pod {namespace}/{} kept: {}",
                    volume.name,
                    pod.metadata.name,
                    e.message
                ),
            }
        }
    }
}

/// Where a pod's configMap or secret volume is written: its sandbox folder under the run dir.
pub fn volume_dir(run_dir: &Path, uid: &str, volume: &str) -> PathBuf {
    coracle_runtime::sandbox::sandbox_dir(run_dir, &layout::sandbox_id(uid)).join("volumes").join(volume)
}

/// Starts the watch; it ends when `stop` is set or the store shuts down.
pub fn spawn(store: Store, run_dir: PathBuf, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("config-volumes".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let watcher = match store.watch(WatchFilter::kinds(&[&ConfigMap::INFO, &Secret::INFO]), None) {
                    Ok(w) => w,
                    Err(e) => {
                        log::warn!("node: watching config maps and secrets: {e}");
                        std::thread::sleep(TICK);
                        continue;
                    }
                };
                while !stop.load(Ordering::Acquire) {
                    match watcher.next_timeout(TICK) {
                        Some((_, event)) => {
                            let object: &Object = event.object();
                            let m = object.metadata();
                            refresh(&store, &run_dir, object.info().kind, &m.namespace, &m.name);
                        }
                        None => match watcher.ended() {
                            Some(WatchEnd::ShutDown) => return,
                            // Too slow: a new watch; what changed meanwhile is caught by
                            // the next change or the next container start.
                            Some(WatchEnd::TooSlow) => break,
                            None => {}
                        },
                    }
                }
            }
        })
        .expect("spawning the config volume thread")
}
