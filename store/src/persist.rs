//! Writing objects to their files: each change a user made is written before it is
//! acknowledged; memory-only changes (status the node reports) wait for a checkpoint, a flush
//! at stop, or the next durable change, which writes them first.

use super::{io_error, lock, Store};
use crate::index::Key;
use crate::StoreError;
use coracle_config::object::Object;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Store {
    /// Writes every memory-only change to disk (at clean shutdown, and whenever the
    /// daemon wants a checkpoint).
    pub fn flush(&self) -> Result<(), StoreError> {
        let flushed = self.flush_dirty(None)?;
        if flushed > 0 {
            log::info!("store: flushed {flushed} memory-only changes");
        }
        Ok(())
    }

    /// Writes the memory-only changes of objects that have been newer than their file for
    /// `age` or longer; returns how many objects were written. Called every checkpoint
    /// ([`spawn_checkpoints`]), it bounds both what a power cut loses and how often a status
    /// that keeps changing (a flapping readiness probe) is written: once per `age` at most.
    pub fn flush_older_than(&self, age: Duration) -> Result<usize, StoreError> {
        // Nothing can be older than the clock itself.
        match Instant::now().checked_sub(age) {
            Some(before) => self.flush_dirty(Some(before)),
            None => Ok(0),
        }
    }

    pub(super) fn flush_dirty(&self, before: Option<Instant>) -> Result<usize, StoreError> {
        let _w = lock(&self.shared.writer);
        self.persist_dirty(before, None)
    }

    pub(super) fn encode(obj: &Object) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(&obj.to_json()).map_err(|e| StoreError::Io {
            context: format!("encoding {} {}", obj.info().kind, obj.key()),
            error: e.into(),
        })
    }

    pub(super) fn write_file(&self, obj: &Object) -> Result<(), StoreError> {
        let m = obj.metadata();
        let bytes = Self::encode(obj)?;
        self.shared.layout.write_object(obj.info(), &m.namespace, &m.name, &bytes).map_err(io_error(format!(
            "storing {} {}",
            obj.info().kind,
            obj.key()
        )))
    }

    /// Writes every object newer than its file since `before` or earlier (all when None),
    /// except `skip`; how many were written.
    pub(super) fn persist_dirty(&self, before: Option<Instant>, skip: Option<&Key>) -> Result<usize, StoreError> {
        let mut dirty = lock(&self.shared.state).index.dirty_keys(before);
        dirty.retain(|k| Some(k) != skip);
        for key in &dirty {
            self.persist_entry(key)?;
        }
        Ok(dirty.len())
    }

    /// Before a durable change: whatever memory-only status it may have been decided on
    /// (a controller scaling down because a new pod shows Ready) reaches the disk first, so a
    /// power cut never keeps the decision and loses what it was based on.
    pub(super) fn persist_before_change(&self, key: &Key) -> Result<(), StoreError> {
        self.persist_dirty(None, Some(key)).map(drop)
    }

    /// Writes the in-memory version of `key` to disk without a new version.
    pub(super) fn persist_entry(&self, key: &Key) -> Result<(), StoreError> {
        let Some((obj, true)) = self.entry(key) else {
            return Ok(());
        };
        self.write_file(&obj)?;
        if let Some(e) = lock(&self.shared.state).index.get_mut(key) {
            if Arc::ptr_eq(&e.obj, &obj) {
                e.dirty_since = None;
            }
        }
        Ok(())
    }
}
