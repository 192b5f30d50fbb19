//! Checkpoints of memory-only changes: status the node reports (readiness, restart counts,
//! probe results, conditions) is published at once but written to disk at most once per
//! [`CHECKPOINT_AGE`] per object, so a readiness probe flapping every second does not cost
//! an fsync'd write per flip. What a user writes never waits for a checkpoint: it is durable
//! before it is acknowledged, and every memory-only change made before it is written first
//! (a controller's durable decision never outlives the status it was based on). A clean stop
//! flushes everything (`Store::shutdown`); a power cut loses at most the last
//! `CHECKPOINT_AGE` of status changes nothing durable followed, which the node recomputes
//! from the containers it finds at the next start.

use super::Store;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a memory-only change may wait for its disk write.
pub const CHECKPOINT_AGE: Duration = Duration::from_secs(10);
/// How often the checkpoint thread looks for changes that have waited long enough.
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Starts the thread that writes memory-only changes once they have waited `age`; it ends
/// once the store has shut down.
pub fn spawn_checkpoints(store: Store, age: Duration) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("store-checkpoints".into()).spawn(move || {
        while !store.is_shut_down() {
            std::thread::sleep(LOOK_EVERY.min(age));
            match store.flush_older_than(age) {
                Ok(0) => {}
                Ok(n) => log::debug!("store: checkpoint wrote {n} objects"),
                // A store shut down meanwhile refuses nothing here (it flushed itself);
                // a disk error is retried at the next look.
                Err(e) => log::warn!("store: checkpoint: {e}"),
            }
        }
    })
}
