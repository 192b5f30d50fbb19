//! Typed reads, Kubernetes' lister shape (`deployments(ns).get(name)`,
//! `pods(ns).list(selector)`): a stored object seen as its own kind, sharing the store's
//! copy instead of cloning it out.

use super::{Filter, Store, StoreError};
use coracle_config::meta::LabelSelector;
use coracle_config::object::{Object, Resource, ResourceInfo};
use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

/// A stored object known to be a `T`: derefs to `&T`, and is as cheap to clone as the
/// `Arc` it holds.
pub struct Typed<T> {
    object: Arc<Object>,
    // `fn() -> T`: a Typed owns no T of its own, so it is Send and Sync like the Arc.
    kind: PhantomData<fn() -> T>,
}

impl<T: Resource> Typed<T> {
    /// `object` seen as a `T`; the object back when it is another kind.
    pub fn new(object: Arc<Object>) -> Result<Typed<T>, Arc<Object>> {
        if object.is::<T>() {
            Ok(Typed { object, kind: PhantomData })
        } else {
            Err(object)
        }
    }

    /// The object as stored, for what takes any kind (events, owner references, writes).
    pub fn object(&self) -> &Arc<Object> {
        &self.object
    }

    pub fn into_object(self) -> Arc<Object> {
        self.object
    }

    /// What the store answers a write of a `T` with: a `T`, since no write changes a kind.
    fn written(object: Arc<Object>) -> Typed<T> {
        Typed::new(object).unwrap_or_else(|o| unreachable!("a write of a {} stored a {}", T::INFO.kind, o.info().kind))
    }
}

impl<T: Resource> Deref for Typed<T> {
    type Target = T;

    fn deref(&self) -> &T {
        T::from_object(&self.object).expect("Typed::new admits only objects of kind T")
    }
}

impl<T: Resource> Borrow<T> for Typed<T> {
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: Resource> AsRef<T> for Typed<T> {
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        Typed { object: self.object.clone(), kind: PhantomData }
    }
}

impl<T> fmt::Debug for Typed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.object.fmt(f)
    }
}

impl<T> PartialEq for Typed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object
    }
}

impl<T> From<Typed<T>> for Arc<Object> {
    fn from(typed: Typed<T>) -> Arc<Object> {
        typed.object
    }
}

impl Store {
    /// The `T` named `name` in `namespace` (ignored for cluster-scoped kinds).
    pub fn get_as<T: Resource>(&self, namespace: &str, name: &str) -> Option<Typed<T>> {
        self.get(&T::INFO, namespace, name).and_then(|o| Typed::new(o).ok())
    }

    /// Every `T` in `namespace` (None, or a cluster-scoped kind: everywhere) whose labels
    /// `selector` matches (None: all; an empty selector matches all, as in Kubernetes),
    /// ordered by namespace and name.
    pub fn list_as<T: Resource>(&self, namespace: Option<&str>, selector: Option<&LabelSelector>) -> Vec<Typed<T>> {
        let listed = self.list_selected(&T::INFO, namespace, selector);
        listed.into_iter().filter_map(|o| Typed::new(o).ok()).collect()
    }

    /// `list_as`'s work, once for every kind.
    fn list_selected(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        selector: Option<&LabelSelector>,
    ) -> Vec<Arc<Object>> {
        let namespace = namespace.filter(|_| info.namespaced).map(str::to_string);
        let filter = Filter { resource: Some(info), namespace };
        self.list_where(&filter, |o| selector.is_none_or(|s| s.matches(&o.metadata().labels)))
    }

    /// [`Store::create`] of a `T`, answered with the stored `T`.
    pub fn create_as<T: Resource>(&self, obj: T) -> Result<Typed<T>, StoreError> {
        self.create(obj.into()).map(Typed::written)
    }

    /// [`Store::update`] of a `T`, answered with the stored `T`.
    pub fn update_as<T: Resource>(&self, obj: T) -> Result<Typed<T>, StoreError> {
        self.update(obj.into()).map(Typed::written)
    }

    /// [`Store::update_status`] of a `T`, answered with the stored `T`.
    pub fn update_status_as<T: Resource>(&self, obj: T, persist: bool) -> Result<Typed<T>, StoreError> {
        self.update_status(obj.into(), persist).map(Typed::written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coracle_config::apps::Deployment;
    use coracle_config::core::{Namespace, Pod, Service};
    use std::collections::BTreeMap;

    fn labelled<T: Resource + Default>(namespace: &str, name: &str, app: &str) -> T {
        let mut o = T::default();
        let m = o.metadata_mut();
        m.name = name.into();
        m.namespace = namespace.into();
        m.labels = BTreeMap::from([("app".to_string(), app.to_string())]);
        o
    }

    fn names<T: Resource>(objects: &[Typed<T>]) -> Vec<String> {
        objects.iter().map(|o| format!("{}/{}", o.metadata().namespace, o.metadata().name)).collect()
    }

    fn app(value: &str) -> LabelSelector {
        LabelSelector { match_labels: BTreeMap::from([("app".into(), value.into())]), ..Default::default() }
    }

    #[test]
    fn get_as_shares_the_stored_object_and_refuses_other_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create(labelled::<Pod>("default", "a", "web").into()).unwrap();
        let typed = store.get_as::<Pod>("default", "a").expect("the pod");
        let raw = store.get(&Pod::INFO, "default", "a").unwrap();
        assert!(Arc::ptr_eq(typed.object(), &raw), "the store's copy, not a clone");
        assert_eq!(typed.metadata.labels["app"], "web");
        assert!(std::ptr::eq(&*typed, raw.downcast_ref::<Pod>().unwrap()));
        assert!(store.get_as::<Service>("default", "a").is_none(), "another kind of the same name");
        assert!(store.get_as::<Pod>("other", "a").is_none());
        assert!(Typed::<Service>::new(raw.clone()).is_err_and(|o| Arc::ptr_eq(&o, &raw)), "given back");
        let mut ns = Namespace::default();
        ns.metadata.name = "team".into();
        store.create(ns.into()).unwrap();
        assert!(store.get_as::<Namespace>("anything", "team").is_some(), "cluster-scoped: no namespace");
    }

    #[test]
    fn list_as_selects_by_kind_namespace_and_labels() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (ns, name, app) in [("team", "c", "web"), ("default", "b", "db"), ("default", "a", "web")] {
            store.create(labelled::<Pod>(ns, name, app).into()).unwrap();
        }
        store.create(labelled::<Deployment>("default", "a", "web").into()).unwrap();
        assert_eq!(names(&store.list_as::<Pod>(None, None)), ["default/a", "default/b", "team/c"]);
        assert_eq!(names(&store.list_as::<Pod>(Some("default"), None)), ["default/a", "default/b"]);
        assert_eq!(names(&store.list_as::<Pod>(None, Some(&app("web")))), ["default/a", "team/c"]);
        assert_eq!(names(&store.list_as::<Pod>(Some("team"), Some(&app("db")))), Vec::<String>::new());
        assert_eq!(names(&store.list_as::<Deployment>(None, Some(&app("web")))), ["default/a"]);
        assert_eq!(store.list_as::<Pod>(Some("default"), Some(&LabelSelector::default())).len(), 2, "empty: all");
        assert!(store.list_as::<Service>(None, None).is_empty());
        let listed = store.list_as::<Pod>(Some("default"), Some(&app("db")));
        assert!(Arc::ptr_eq(listed[0].object(), &store.get(&Pod::INFO, "default", "b").unwrap()));
        let mut ns = Namespace::default();
        ns.metadata.name = "team".into();
        store.create(ns.into()).unwrap();
        assert_eq!(store.list_as::<Namespace>(Some("default"), None).len(), 1, "cluster-scoped: everywhere");
    }

    #[test]
    fn typed_writes_answer_with_what_was_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let created = store.create_as(labelled::<Deployment>("default", "web", "web")).unwrap();
        assert_eq!(created.metadata.generation, 1);
        let mut next = Deployment::clone(&created);
        next.spec.replicas = Some(3);
        let updated = store.update_as(next).unwrap();
        assert_eq!((updated.spec.replicas, updated.metadata.generation), (Some(3), 2));
        let mut next = Deployment::clone(&updated);
        next.status = Some(Default::default());
        next.status.as_mut().unwrap().replicas = Some(3);
        let status = store.update_status_as(next, true).unwrap();
        assert_eq!(status.status.as_ref().and_then(|s| s.replicas), Some(3));
        assert_eq!(store.get_as::<Deployment>("default", "web").unwrap(), status);
    }
}
