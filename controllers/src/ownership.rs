//! Controller references: who manages an object, and adopting orphans that match a
//! selector or releasing objects that stopped matching (Kubernetes' ControllerRefManager).

use coracle_config::meta::{LabelSelector, ObjectMeta, OwnerReference};
use coracle_config::object::{Object, Resource};
use coracle_store::{Store, StoreError, Typed};

/// The reference a controller puts on what it manages.
pub fn controller_ref(owner: &Object) -> OwnerReference {
    let m = owner.metadata();
    OwnerReference {
        api_version: owner.info().api_version(),
        kind: owner.info().kind.to_string(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What an owner should do about one candidate object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours and matching: manage it.
    Owned,
    /// An orphan that matches: take it.
    Adopt,
    /// Ours but no longer matching: let it go.
    Release,
    /// Someone else's, or not for us.
    Ignore,
}

/// Decides what `owner` (selecting with `selector`) does about `candidate`.
pub fn claim(owner: &ObjectMeta, selector: &LabelSelector, candidate: &ObjectMeta) -> Claim {
    let matches = !selector.is_empty() && selector.matches(&candidate.labels);
    match candidate.controller_ref() {
        Some(r) if r.uid != owner.uid => Claim::Ignore,
        Some(_) if matches => Claim::Owned,
        // An owner on its way out keeps what it has, as Kubernetes does.
        Some(_) if owner.deletion_timestamp.is_some() => Claim::Owned,
        Some(_) => Claim::Release,
        None if matches && owner.deletion_timestamp.is_none() && candidate.deletion_timestamp.is_none() => Claim::Adopt,
        None => Claim::Ignore,
    }
}

/// Adds `owner`'s controller reference to `obj`, if `obj` is still the version read.
pub fn adopt<T: Resource>(store: &Store, obj: &T, owner: &Object) -> Result<Typed<T>, StoreError> {
    let mut next = obj.clone();
    let m = next.metadata_mut();
    m.owner_references.retain(|r| r.uid != owner.metadata().uid);
    m.owner_references.push(controller_ref(owner));
    log::info!("{} {} adopts {} {}", owner.info().kind, owner.key(), T::INFO.kind, key_of(obj));
    store.update_as(next)
}

/// Removes `owner_uid`'s reference from `obj`, if `obj` is still the version read.
pub fn release<T: Resource>(store: &Store, obj: &T, owner_uid: &str) -> Result<Typed<T>, StoreError> {
    let mut next = obj.clone();
    next.metadata_mut().owner_references.retain(|r| r.uid != owner_uid);
    log::info!("releasing {} {}: its labels no longer match its controller", T::INFO.kind, key_of(obj));
    store.update_as(next)
}

/// `namespace/name`, as `Object::key` writes it.
fn key_of<T: Resource>(obj: &T) -> String {
    let m = obj.metadata();
    format!("{}/{}", m.namespace, m.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(uid: &str, labels: &[(&str, &str)], owner: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            uid: uid.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            owner_references: owner
                .map(|o| vec![OwnerReference { uid: o.into(), controller: Some(true), ..Default::default() }])
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn claims_follow_the_controller_ref_manager() {
        let selector =
            LabelSelector { match_labels: BTreeMap::from([("app".into(), "w".into())]), ..Default::default() };
        let owner = meta("rs", &[], None);
        assert_eq!(claim(&owner, &selector, &meta("p", &[("app", "w")], Some("rs"))), Claim::Owned);
        assert_eq!(claim(&owner, &selector, &meta("p", &[("app", "x")], Some("rs"))), Claim::Release);
        assert_eq!(claim(&owner, &selector, &meta("p", &[("app", "w")], None)), Claim::Adopt);
        assert_eq!(claim(&owner, &selector, &meta("p", &[("app", "w")], Some("other"))), Claim::Ignore);
        assert_eq!(claim(&owner, &selector, &meta("p", &[("app", "x")], None)), Claim::Ignore);
        assert_eq!(claim(&owner, &LabelSelector::default(), &meta("p", &[], None)), Claim::Ignore);
    }
}
