//! The hold on one admission's picks, from the pick to the store's answer.

use super::{Cursors, Picks, ServiceAllocator};
use std::net::Ipv4Addr;

/// ClusterIP and node ports picked for one Service write and not stored yet: no other
/// request gets them while this lives. [`commit`](Reservation::commit) it once the write
/// reached the store (the stored Service holds them from then on, until its deletion);
/// dropped uncommitted (the write failed, was a dry run, or never happened) it gives them
/// back, and the next pick may hand them out again.
#[must_use = "a reservation dropped before its write is stored gives its values back"]
pub struct Reservation<'a> {
    allocator: &'a ServiceAllocator,
    picks: Picks,
    /// The search cursors before and after these picks, when they moved.
    moved: Option<(Cursors, Cursors)>,
    committed: bool,
}

impl<'a> Reservation<'a> {
    pub(super) fn new(allocator: &'a ServiceAllocator, picks: Picks, moved: Option<(Cursors, Cursors)>) -> Self {
        Reservation { allocator, picks, moved, committed: false }
    }

    /// The ClusterIP this reservation holds (None: the Service kept its own, is headless or
    /// an ExternalName, or the object is not a Service).
    pub fn cluster_ip(&self) -> Option<Ipv4Addr> {
        self.picks.ip
    }

    /// The node ports this reservation holds, in no particular order.
    pub fn node_ports(&self) -> &[i32] {
        &self.picks.ports
    }

    /// The write carrying these values reached the store: the stored Service holds them
    /// now, so the in-memory hold ends without giving anything back.
    pub fn commit(mut self) {
        self.committed = true;
    }

    /// Commits when `written` (the store's answer to the write) succeeded; otherwise the
    /// values go back as the reservation drops. Returns `written` unchanged.
    pub fn settle<T, E>(self, written: Result<T, E>) -> Result<T, E> {
        if written.is_ok() {
            self.commit();
        }
        written
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let rewind = if self.committed { None } else { self.moved };
        self.allocator.release(&self.picks, rewind);
    }
}

impl std::fmt::Debug for Reservation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("cluster_ip", &self.picks.ip)
            .field("node_ports", &self.picks.ports)
            .field("committed", &self.committed)
            .finish()
    }
}
