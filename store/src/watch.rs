//! Watch fan-out: a bounded window of recent changes, replayed to watchers that start from
//! an older resourceVersion, and one bounded channel per watcher so a slow reader never
//! blocks the store (it is cut off instead, as kube-apiserver does).

use super::StoreError;
use coracle_config::object::{Object, ResourceInfo};
use heapless::Deque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Changes kept for watchers that resume from an older resourceVersion. Each entry only
/// holds an `Arc` to an object version, but that version stays alive while listed here,
/// so the window is sized for memory as much as for reconnect time.
pub(crate) const HISTORY: usize = 256;

/// Events a watcher may have pending before it counts as too slow and is cut off.
pub(crate) const WATCHER_BUFFER: usize = 256;

/// What changed, in the order the store applied it.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    Added(Arc<Object>),
    Modified(Arc<Object>),
    Deleted(Arc<Object>),
}

impl WatchEvent {
    pub fn object(&self) -> &Arc<Object> {
        match self {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
        }
    }

    /// `ADDED`, `MODIFIED` or `DELETED`, as a watch stream spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
        }
    }
}

/// Which objects a watcher or list wants.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// None: every resource type.
    pub resource: Option<&'static ResourceInfo>,
    /// None: every namespace.
    pub namespace: Option<String>,
}

impl Filter {
    /// Every object of one kind.
    pub fn kind(resource: &'static ResourceInfo) -> Filter {
        Filter { resource: Some(resource), namespace: None }
    }
}

/// Why a watch stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// The store shut down.
    ShutDown,
    /// The watcher fell `WATCHER_BUFFER` events behind and was cut off; re-list and watch
    /// again (the API ends the stream, as kube-apiserver does).
    TooSlow,
}

const OPEN: u8 = 0;
const SHUT_DOWN: u8 = 1;
const TOO_SLOW: u8 = 2;
/// The watcher was dropped: its subscription goes at the next change, whatever its filter.
const DROPPED: u8 = 3;

/// A live subscription; events arrive in resourceVersion order. Dropping it unsubscribes.
pub struct Watcher {
    rx: Receiver<(u64, WatchEvent)>,
    end: Arc<AtomicU8>,
}

impl Watcher {
    /// Blocks until the next event, or returns None after `timeout` or once the store shuts down.
    pub fn next_timeout(&self, timeout: Duration) -> Option<(u64, WatchEvent)> {
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Blocks until the next event; None once the stream has ended (see `ended`).
    pub fn next(&self) -> Option<(u64, WatchEvent)> {
        self.rx.recv().ok()
    }

    /// Set once no more events will come (every buffered one has still to be read):
    /// callers of `next_timeout` tell a quiet stream from an ended one with this.
    pub fn ended(&self) -> Option<WatchEnd> {
        match self.end.load(Ordering::Acquire) {
            SHUT_DOWN => Some(WatchEnd::ShutDown),
            TOO_SLOW => Some(WatchEnd::TooSlow),
            _ => None,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Only an open subscription is marked: an ended one is already gone from the hub.
        let _ = self.end.compare_exchange(OPEN, DROPPED, Ordering::AcqRel, Ordering::Acquire);
    }
}

struct Subscriber {
    filter: WatchFilter,
    tx: SyncSender<(u64, WatchEvent)>,
    end: Arc<AtomicU8>,
}

/// The history window and the live subscribers.
pub(crate) struct WatchHub {
    history: Deque<(u64, WatchEvent), HISTORY>,
    /// Every change with a version above this is in `history`.
    window_start: u64,
    subscribers: Vec<Subscriber>,
    closed: bool,
}

impl Filter {
    /// True when the filter selects `obj`.
    pub fn matches(&self, obj: &Object) -> bool {
        self.resource.is_none_or(|r| r.kind == obj.info().kind && r.group == obj.info().group)
            && self.namespace.as_deref().is_none_or(|ns| ns == obj.metadata().namespace)
    }
}

/// What a watch delivers: changes to the objects any one of its filters selects. The
/// store drops every other change before it reaches the watcher's channel, so a watcher
/// is never woken for a kind it did not ask for.
#[derive(Clone, Debug)]
pub struct WatchFilter {
    any: Vec<Filter>,
}

impl WatchFilter {
    /// Changes to objects of these kinds, in every namespace.
    pub fn kinds(kinds: &[&'static ResourceInfo]) -> WatchFilter {
        WatchFilter::any(kinds.iter().map(|&info| Filter { resource: Some(info), namespace: None }))
    }

    /// Changes to objects any of `filters` selects (none: nothing).
    pub fn any(filters: impl IntoIterator<Item = Filter>) -> WatchFilter {
        WatchFilter { any: filters.into_iter().collect() }
    }

    /// True when one of the filters selects `obj`.
    pub fn matches(&self, obj: &Object) -> bool {
        self.any.iter().any(|f| f.matches(obj))
    }
}

impl From<Filter> for WatchFilter {
    fn from(filter: Filter) -> WatchFilter {
        WatchFilter { any: vec![filter] }
    }
}

impl WatchHub {
    /// An empty window starting at `current_rv` (older history did not survive a restart).
    pub fn new(current_rv: u64) -> WatchHub {
        WatchHub { history: Deque::new(), window_start: current_rv, subscribers: Vec::new(), closed: false }
    }

    /// Records a change and hands it to every subscriber that wants it.
    pub fn publish(&mut self, rv: u64, event: WatchEvent) {
        if self.history.is_full() {
            if let Some((oldest, _)) = self.history.pop_front() {
                self.window_start = oldest;
            }
        }
        self.subscribers.retain(|s| {
            // A dropped watcher's subscription goes now, not at the first change it selects
            // (which, for a quiet filter, might never come).
            if s.end.load(Ordering::Acquire) == DROPPED {
                return false;
            }
            if !s.filter.matches(event.object()) {
                return true;
            }
            match s.tx.try_send((rv, event.clone())) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    log::warn!("store: cutting off a watcher {WATCHER_BUFFER} events behind");
                    s.end.store(TOO_SLOW, Ordering::Release);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
        // The window is full only when it was popped above, so this cannot fail.
        let _ = self.history.push_back((rv, event));
    }

    /// Starts a watcher. `from` None: changes after `current_rv`; Some(0): an ADDED for
    /// every object in `current` first (Kubernetes' "any version"), then changes; Some(v):
    /// every change after v, or `Expired` when v is older than the window.
    pub fn subscribe(
        &mut self,
        filter: WatchFilter,
        from: Option<u64>,
        current_rv: u64,
        current: impl Iterator<Item = Arc<Object>>,
    ) -> Result<Watcher, StoreError> {
        let backlog: Vec<(u64, WatchEvent)> = match from {
            None => Vec::new(),
            Some(0) => current.filter(|o| filter.matches(o)).map(|o| (current_rv, WatchEvent::Added(o))).collect(),
            Some(v) if v < self.window_start => {
                return Err(StoreError::Expired { requested: v, oldest: self.window_start })
            }
            Some(v) => self.history.iter().filter(|(rv, ev)| *rv > v && filter.matches(ev.object())).cloned().collect(),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(backlog.len() + WATCHER_BUFFER);
        for ev in backlog {
            tx.try_send(ev).expect("the channel has room for the whole backlog");
        }
        self.subscribers.retain(|s| s.end.load(Ordering::Acquire) != DROPPED);
        let end = Arc::new(AtomicU8::new(OPEN));
        if self.closed {
            end.store(SHUT_DOWN, Ordering::Release);
        } else {
            self.subscribers.push(Subscriber { filter, tx, end: end.clone() });
        }
        Ok(Watcher { rx, end })
    }

    /// Ends every stream, now and for watchers started later.
    pub fn close(&mut self) {
        self.closed = true;
        for s in self.subscribers.drain(..) {
            s.end.store(SHUT_DOWN, Ordering::Release);
        }
    }

    /// The oldest version a watch may start from.
    pub fn window_start(&self) -> u64 {
        self.window_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::apps::Deployment;
    use coracle_config::core::Pod;
    use coracle_config::Resource;

    fn pod() -> Arc<Object> {
        let mut p = Pod::default();
        p.metadata.name = "p".into();
        p.metadata.namespace = "default".into();
        Arc::new(p.into())
    }

    #[test]
    fn a_dropped_watcher_is_unsubscribed_at_the_next_change_whatever_its_filter() {
        let mut hub = WatchHub::new(1);
        // A filter no change below selects: dropping used to leave it subscribed until one did.
        let quiet = hub.subscribe(Filter::kind(&Deployment::INFO).into(), None, 1, std::iter::empty()).unwrap();
        let live = hub.subscribe(Filter::kind(&Pod::INFO).into(), None, 1, std::iter::empty()).unwrap();
        assert_eq!(hub.subscribers.len(), 2);
        drop(quiet);
        hub.publish(2, WatchEvent::Added(pod()));
        assert_eq!(hub.subscribers.len(), 1);
        assert!(live.next_timeout(Duration::ZERO).is_some());
        drop(live);
        let again = hub.subscribe(Filter::kind(&Pod::INFO).into(), None, 2, std::iter::empty()).unwrap();
        assert_eq!(hub.subscribers.len(), 1, "a new subscription sweeps the dropped ones");
        assert_eq!(again.ended(), None);
    }
}
