//! `ValidatePodUpdate`: what a PUT or PATCH may change in a pod's spec. Kubernetes lets an
//! update change its containers' images and lower (or set) `activeDeadlineSeconds`, and a
//! negative grace period may become 1; anything else is `Forbidden`, with the changed fields
//! named. (Tolerations, also listed in Kubernetes' message, are no field of this node's pods:
//! decoding refuses them by name.)

use super::field::{quote, FieldError, Path};
use crate::core::{Container, Pod, PodSpec};
use serde_json::Value;

/// The fields Kubernetes' message lists as updatable, in its words.
const UPDATABLE: [&str; 5] = [
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// The most of one changed value the message quotes.
const QUOTED_VALUE: usize = 200;

/// The spec rules of an update of `old` to `new` (metadata and the new spec itself are
/// checked by the caller, as for every kind).
pub fn validate_pod_update(old: &Pod, new: &Pod, errs: &mut Vec<FieldError>) {
    let spec = Path::new("spec");
    for (field, before, after) in [
        ("containers", &old.spec.containers, &new.spec.containers),
        ("initContainers", &old.spec.init_containers, &new.spec.init_containers),
    ] {
        if !container_updates(before, after, &spec.child(field), errs) {
            return;
        }
    }
    let deadline = spec.child("activeDeadlineSeconds");
    match (old.spec.active_deadline_seconds, new.spec.active_deadline_seconds) {
        (_, Some(n)) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(&deadline, n.to_string(), "must be between 0 and 2147483647, inclusive"));
            return;
        }
        (Some(o), Some(n)) if o < n => {
            errs.push(FieldError::invalid(&deadline, n.to_string(), "must be less than or equal to previous value"));
            return;
        }
        (Some(_), None) => errs.push(FieldError::invalid(
            &deadline,
            quote("null"),
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    if old.spec == new.spec {
        return;
    }
    let munged = munged(&old.spec, &new.spec);
    if munged != old.spec {
        let detail = format!(
            "pod updates may not change fields other than {}\n{}",
            UPDATABLE.join(","),
            diff(&old.spec, &munged)
        );
        errs.push(FieldError::forbidden(&spec, detail.trim_end()));
    }
}

/// `ValidateContainerUpdates`: the same number of containers, each with an image; false
/// when the count changed (nothing else is worth comparing then).
fn container_updates(old: &[Container], new: &[Container], path: &Path, errs: &mut Vec<FieldError>) -> bool {
    if old.len() != new.len() {
        errs.push(FieldError::forbidden(path, "pod updates may not add or remove containers"));
        return false;
    }
    for (i, c) in new.iter().enumerate() {
        let image = path.index(i).child("image");
        if c.image.is_empty() {
            errs.push(FieldError::required(&image, ""));
        }
        if c.image.trim() != c.image {
            errs.push(FieldError::invalid(&image, quote(&c.image), "must not have leading or trailing whitespace"));
        }
    }
    true
}

/// `new` with every field an update may change set back to `old`'s: whatever still differs
/// is forbidden.
fn munged(old: &PodSpec, new: &PodSpec) -> PodSpec {
    let mut munged = new.clone();
    for (mine, theirs) in munged.containers.iter_mut().zip(&old.containers) {
        mine.image.clone_from(&theirs.image);
    }
    for (mine, theirs) in munged.init_containers.iter_mut().zip(&old.init_containers) {
        mine.image.clone_from(&theirs.image);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    let was_negative = old.termination_grace_period_seconds.is_some_and(|g| g < 0);
    if was_negative && munged.termination_grace_period_seconds == Some(1) {
        munged.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    munged
}

/// The fields that differ between two specs, as `-`/`+` lines of field path and JSON value.
fn diff(old: &PodSpec, new: &PodSpec) -> String {
    let (old, new) = (serde_json::to_value(old).unwrap_or_default(), serde_json::to_value(new).unwrap_or_default());
    let mut lines = Vec::new();
    differences(&Path::new("spec"), &old, &new, &mut lines);
    lines.join("\n")
}

fn differences(path: &Path, old: &Value, new: &Value, lines: &mut Vec<String>) {
    match (old, new) {
        _ if old == new => {}
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let (x, y) = (a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null));
                differences(&path.child(key), x, y, lines);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&path.index(i), x, y, lines);
            }
        }
        _ => {
            lines.push(format!("- {path}: {}", shown(old)));
            lines.push(format!("+ {path}: {}", shown(new)));
        }
    }
}

/// A value as JSON, cut short past [`QUOTED_VALUE`] characters.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(QUOTED_VALUE) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;
    use crate::manifest::decode_object;
    use crate::object::Object;
    use crate::validation::validate_update;
    use serde_json::json;

    fn pod(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "p"}},
               "spec": {"containers": containers, "terminationGracePeriodSeconds": 5}})
    }

    fn app(image: &str) -> Value {
        json!({"name": "app", "image": image, "command": ["sh", "-c", "sleep 600"]})
    }

    fn decode(v: Value) -> Object {
        let mut o = decode_object(v).unwrap().object;
        defaults::apply(&mut o);
        o
    }

    fn update(old: Value, new: Value) -> Vec<String> {
        match validate_update(&decode(old), &decode(new)) {
            Ok(()) => vec![],
            Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
        }
    }

    const FORBIDDEN: &str = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

    #[test]
    fn images_labels_and_annotations_may_change() {
        let old = pod(json!([app("busybox:1")]));
        let mut new = pod(json!([app("busybox:2")]));
        new["metadata"]["labels"] = json!({"app": "p", "tier": "x"});
        new["metadata"]["annotations"] = json!({"note": "changed"});
        assert_eq!(update(old.clone(), new), Vec::<String>::new());
        let mut with_init = old.clone();
        with_init["spec"]["initContainers"] = json!([{"name": "setup", "image": "busybox:1"}]);
        let mut init_changed = with_init.clone();
        init_changed["spec"]["initContainers"][0]["image"] = json!("busybox:2");
        assert_eq!(update(with_init, init_changed), Vec::<String>::new());
    }

    #[test]
    fn anything_else_in_the_spec_is_forbidden_and_named() {
        let old = pod(json!([app("busybox")]));
        let mut new = old.clone();
        new["spec"]["containers"][0]["command"] = json!(["sh", "-c", "sleep 700"]);
        new["spec"]["restartPolicy"] = json!("Never");
        let errs = update(old.clone(), new);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(
            errs[0],
            format!(
                "{FORBIDDEN}\n- spec.containers[0].command[2]: \"sleep 600\"\n+ spec.containers[0].command[2]: \"sleep 700\"\n- spec.restartPolicy: \"Always\"\n+ spec.restartPolicy: \"Never\""
            )
        );
        let mut privileged = old.clone();
        privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
        let errs = update(old.clone(), privileged);
        assert!(
            errs[0].starts_with(FORBIDDEN) && errs[0].contains("+ spec.containers[0].securityContext:"),
            "{errs:?}"
        );
        let mut renamed = old.clone();
        renamed["spec"]["containers"][0]["name"] = json!("other");
        let errs = update(old.clone(), renamed);
        assert!(
            errs[0].ends_with("- spec.containers[0].name: \"app\"\n+ spec.containers[0].name: \"other\""),
            "{errs:?}"
        );
        let mut host = old.clone();
        host["spec"]["hostNetwork"] = json!(true);
        assert!(update(old, host)[0].ends_with("- spec.hostNetwork: null\n+ spec.hostNetwork: true"));
    }

    #[test]
    fn containers_may_not_come_or_go() {
        let old = pod(json!([app("busybox")]));
        let mut two = app("busybox");
        two["name"] = json!("second");
        let errs = update(old.clone(), pod(json!([app("busybox"), two])));
        assert_eq!(errs, ["spec.containers: Forbidden: pod updates may not add or remove containers"]);
        let mut init = old.clone();
        init["spec"]["initContainers"] = json!([{"name": "setup", "image": "busybox"}]);
        let errs = update(old, init);
        assert_eq!(errs, ["spec.initContainers: Forbidden: pod updates may not add or remove containers"]);
    }

    #[test]
    fn the_active_deadline_may_only_be_set_or_lowered() {
        let with = |d: Option<i64>| {
            let mut p = pod(json!([app("busybox")]));
            if let Some(d) = d {
                p["spec"]["activeDeadlineSeconds"] = json!(d);
            }
            p
        };
        assert_eq!(update(with(None), with(Some(60))), Vec::<String>::new(), "set");
        assert_eq!(update(with(Some(60)), with(Some(30))), Vec::<String>::new(), "lowered");
        assert_eq!(
            update(with(Some(30)), with(Some(60))),
            ["spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"]
        );
        assert_eq!(
            update(with(Some(30)), with(None)),
            ["spec.activeDeadlineSeconds: Invalid value: \"null\": must not update from a positive integer to nil value"]
        );
        let mut old = pod(json!([app("busybox")]));
        old["spec"]["activeDeadlineSeconds"] = json!(30);
        let mut new = old.clone();
        new["spec"]["activeDeadlineSeconds"] = json!(4294967296i64);
        let errs = update(old, new);
        assert!(
            errs.contains(
                &"spec.activeDeadlineSeconds: Invalid value: 4294967296: must be between 0 and 2147483647, inclusive"
                    .to_string()
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn a_negative_grace_period_may_become_one() {
        let grace = |g: i64| {
            let mut p = Pod::default();
            p.spec.containers = vec![Container { name: "app".into(), image: "busybox".into(), ..Default::default() }];
            p.spec.termination_grace_period_seconds = Some(g);
            p
        };
        let check = |old: i64, new: i64| {
            let mut errs = Vec::new();
            validate_pod_update(&grace(old), &grace(new), &mut errs);
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(check(-1, 1), Vec::<String>::new());
        assert_eq!(check(5, 1).len(), 1, "only a negative one");
        assert!(check(-1, 2)[0]
            .ends_with("- spec.terminationGracePeriodSeconds: -1\n+ spec.terminationGracePeriodSeconds: 2"));
    }

    #[test]
    fn long_values_are_cut_short() {
        assert_eq!(shown(&json!("x".repeat(10))), "\"xxxxxxxxxx\"");
        let long = shown(&json!("é".repeat(500)));
        assert_eq!(long.chars().count(), QUOTED_VALUE + 1);
        assert!(long.ends_with('…'));
    }
}
