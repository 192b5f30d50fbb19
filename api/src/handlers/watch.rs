//! Watches: a stream of `{"type":…,"object":…}` lines from a resourceVersion on, filtered by
//! the request's selectors, ending at `timeoutSeconds` or with an ERROR event.

use super::objects::present;
use crate::errors::ApiError;
use crate::request::ListQuery;
use crate::routes::ResourcePath;
use crate::selectors::{FieldRequirement, Selectors};
use coracle_store::{Filter, Store, Watcher};
use serde_json::json;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a watch without `timeoutSeconds` lasts; clients re-watch after it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// The longest watch: a longer `timeoutSeconds` is cut to it (clients re-watch, as after any
/// timeout), so no client-chosen number reaches the clock unbounded.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
/// The longest single wait on the store: the deadline, and whether the client is still
/// there, are looked at this often.
const POLL: Duration = Duration::from_secs(1);

/// An open watch, yielding one event line at a time.
pub struct WatchStream {
    path: ResourcePath,
    selectors: Selectors,
    deadline: Instant,
    /// Lines to send before the live events: the initial state, or a terminal ERROR.
    pending: VecDeque<String>,
    watcher: Option<Watcher>,
    /// Events carry one-row Tables (the client asked for `as=Table`).
    table: bool,
    /// Whether a Table event went out yet: only the first carries column definitions.
    table_sent: bool,
}

/// One object as a one-row Table; `definitions` on the first event of the stream.
fn table_row(object: &std::sync::Arc<coracle_config::object::Object>, definitions: bool) -> serde_json::Value {
    let rv = object.metadata().resource_version.parse().ok();
    crate::table::table(object.info(), std::slice::from_ref(object), rv, definitions)
}

fn line(kind: &str, object: serde_json::Value) -> String {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    text
}

impl WatchStream {
    /// Starts a watch. Without a resourceVersion (or with `0`) the stream opens with an
    /// ADDED event per existing object, as Kubernetes does; an expired resourceVersion gives
    /// a stream holding a single ERROR event with a 410 Status.
    pub fn open(store: &Store, path: &ResourcePath, query: ListQuery) -> WatchStream {
        let table = query.table;
        let mut selectors = query.selectors;
        if let Some(name) = &path.name {
            selectors.fields.0.push(FieldRequirement {
                field: "metadata.name".into(),
                value: name.clone(),
                negated: false,
            });
        }
        let filter = Filter {
            resource: Some(path.resource),
            namespace: path.namespace.clone().filter(|_| path.resource.namespaced),
        };
        let mut pending = VecDeque::new();
        let from = match query.resource_version {
            Some(rv) if rv > 0 => rv,
            _ => {
                let (mut objects, rv) = store.list(&filter);
                objects.retain(|o| selectors.matches(o));
                objects.sort_by_key(|o| o.metadata().resource_version.parse::<u64>().unwrap_or(0));
                let mut first = true;
                pending.extend(objects.iter().map(|o| {
                    let object = if table { table_row(o, std::mem::take(&mut first)) } else { present(o, path) };
                    line("ADDED", object)
                }));
                rv
            }
        };
        let watcher = match store.watch(filter, Some(from)) {
            Ok(w) => Some(w),
            Err(e) => {
                let status = ApiError::from(e).status();
                pending.push_back(line("ERROR", serde_json::to_value(status).expect("status serializes")));
                None
            }
        };
        WatchStream {
            path: path.clone(),
            selectors,
            deadline: Instant::now() + query.timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT),
            table_sent: table && !pending.is_empty(),
            pending,
            watcher,
            table,
        }
    }

    fn render(&mut self, object: &std::sync::Arc<coracle_config::object::Object>) -> serde_json::Value {
        if self.table {
            let first = !std::mem::replace(&mut self.table_sent, true);
            table_row(object, first)
        } else {
            present(object, &self.path)
        }
    }

    /// The next event line (JSON and a newline); an empty line when nothing came within a
    /// poll (so the server can see whether its client is still there, whatever the filter);
    /// None once the stream is over.
    pub fn next_line(&mut self) -> Option<String> {
        if let Some(line) = self.pending.pop_front() {
            return Some(line);
        }
        let watcher = self.watcher.as_ref()?;
        let remaining = self.deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        match watcher.next_timeout(remaining.min(POLL)) {
            Some((_, event)) if self.selectors.matches(event.object()) => {
                let object = self.render(event.object());
                Some(line(event.type_name(), object))
            }
            // Shut down, or cut off for falling behind: end the stream; clients re-list and
            // watch again, as with kube-apiserver.
            None if watcher.ended().is_some() => None,
            Some(_) | None => Some(String::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{parse, Route};

    #[test]
    fn a_timeout_no_clock_can_count_is_cut_to_the_longest_watch() {
        // `timeoutSeconds=18446744073709551615` once aborted the daemon here.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let Some(Route::Resource(path)) = parse("/api/v1/pods") else { panic!("a resource path") };
        let before = Instant::now();
        let query = ListQuery { timeout: Some(Duration::from_secs(u64::MAX)), ..Default::default() };
        let stream = WatchStream::open(&store, &path, query);
        assert!(stream.deadline <= Instant::now() + MAX_TIMEOUT);
        assert!(stream.deadline >= before + MAX_TIMEOUT);
        let query = ListQuery { timeout: Some(Duration::from_secs(5)), ..Default::default() };
        assert!(WatchStream::open(&store, &path, query).deadline <= Instant::now() + Duration::from_secs(5));
    }
}
