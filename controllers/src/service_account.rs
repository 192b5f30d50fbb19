//! The service account controller: every namespace holds a ServiceAccount named `default`,
//! created when the namespace appears and again if it is deleted, as Kubernetes'
//! `ServiceAccountsController` keeps it. Pods run as it when they name no account. No
//! token is issued for it: Coracle gives pods no API access.

use super::runner::{self, ControllerContext, ObjectKey, Reconciler, SyncResult};
use coracle_config::core::{Namespace, ServiceAccount, DEFAULT_SERVICE_ACCOUNT};
use coracle_config::object::{Object, Resource};
use coracle_store::{Store, StoreError, WatchEvent, WatchFilter};
use std::thread::JoinHandle;
use std::time::Duration;

/// A full pass over every namespace even when no event asked for one.
const RESYNC: Duration = Duration::from_secs(60);

/// Keeps a `default` ServiceAccount in every namespace; keys are namespaces.
pub struct ServiceAccountController {
    store: Store,
}

impl ServiceAccountController {
    pub fn new(store: Store) -> ServiceAccountController {
        ServiceAccountController { store }
    }
}

impl Reconciler for ServiceAccountController {
    fn name(&self) -> &'static str {
        "serviceaccount-controller"
    }

    fn watches(&self) -> WatchFilter {
        WatchFilter::kinds(&[&Namespace::INFO, &ServiceAccount::INFO])
    }

    fn all_keys(&self, store: &Store) -> Vec<ObjectKey> {
        runner::keys_of::<Namespace>(store)
    }

    fn keys_for(&self, _store: &Store, event: &WatchEvent) -> Vec<ObjectKey> {
        match &**event.object() {
            Object::Namespace(n) => vec![ObjectKey::new("", &n.metadata.name)],
            Object::ServiceAccount(sa) if sa.metadata.name == DEFAULT_SERVICE_ACCOUNT => {
                vec![ObjectKey::new("", &sa.metadata.namespace)]
            }
            _ => Vec::new(),
        }
    }

    fn reconcile(&mut self, key: &ObjectKey) -> SyncResult {
        let Some(ns) = self.store.get_as::<Namespace>("", &key.name) else { return Ok(None) };
        // A namespace on its way out gets nothing new.
        if ns.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        if self.store.get_as::<ServiceAccount>(&key.name, DEFAULT_SERVICE_ACCOUNT).is_some() {
            return Ok(None);
        }
        let mut sa = ServiceAccount::default();
        sa.set_type_meta();
        sa.metadata.name = DEFAULT_SERVICE_ACCOUNT.into();
        sa.metadata.namespace = key.name.clone();
        match self.store.create(Object::ServiceAccount(sa)) {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Starts the controller on its own thread.
pub fn spawn_service_account_controller(ctx: &ControllerContext) -> JoinHandle<()> {
    runner::spawn(ctx, ServiceAccountController::new(ctx.store.clone()), RESYNC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_store::DeleteOptions;

    fn namespace(name: &str) -> Object {
        let mut ns = Namespace::default();
        ns.metadata.name = name.into();
        Object::Namespace(ns)
    }

    fn has_default(store: &Store, ns: &str) -> bool {
        store.get_as::<ServiceAccount>(ns, DEFAULT_SERVICE_ACCOUNT).is_some()
    }

    #[test]
    fn every_namespace_gets_a_default_account_back_after_its_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut c = ServiceAccountController::new(store.clone());
        store.create(namespace("team")).unwrap();
        assert_eq!(c.all_keys(&store), [ObjectKey::new("", "team")]);
        c.reconcile(&ObjectKey::new("", "team")).unwrap();
        assert!(has_default(&store, "team"));
        let version = store.get(&ServiceAccount::INFO, "team", "default").unwrap().metadata().resource_version.clone();
        c.reconcile(&ObjectKey::new("", "team")).unwrap();
        let again = store.get(&ServiceAccount::INFO, "team", "default").unwrap();
        assert_eq!(again.metadata().resource_version, version, "an existing account is left alone");
        store.delete(&ServiceAccount::INFO, "team", "default", &DeleteOptions::default()).unwrap();
        c.reconcile(&ObjectKey::new("", "team")).unwrap();
        assert!(has_default(&store, "team"));
        // A namespace gone by its turn is nothing to do.
        assert_eq!(c.reconcile(&ObjectKey::new("", "gone")).unwrap(), None);
        assert!(!has_default(&store, "gone"));
    }

    #[test]
    fn the_running_controller_fills_a_new_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let handle = spawn_service_account_controller(&ControllerContext::new(store.clone(), None));
        store.create(namespace("late")).unwrap();
        let mut seen = false;
        for _ in 0..500 {
            seen = has_default(&store, "late");
            if seen {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(seen);
        store.shutdown().unwrap();
        handle.join().unwrap();
    }
}
