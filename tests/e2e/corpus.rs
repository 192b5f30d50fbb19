//! The Kubernetes documentation's example manifests (`shared/corpus/k8s-docs/`, byte for
//! byte), each applied with the ctl as a user would: every one is either accepted and reads
//! back as written, or refused with an error naming what Coracle does not support. None may
//! be accepted with a field dropped. The refusals are listed here, with why: the list is
//! what Coracle has decided not to support yet.

use coracle_config::manifest::split_objects;
use coracle_config::object::ResourceInfo;
use coracle_config::Quantity;
use coracle_e2e::{stderr, Daemon};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Files refused, and the text their error must hold (naming the unsupported kind or field).
const REFUSED: &[(&str, &str)] = &[
    // Workload kinds of issue #21, not yet implemented.
    ("application__basic-daemonset.yaml", r#"no kind "DaemonSet" is registered"#),
    ("controllers__fluentd-daemonset.yaml", r#"no kind "DaemonSet" is registered"#),
    ("application__job__cronjob.yaml", r#"no kind "CronJob" is registered"#),
    ("application__job__job-sidecar.yaml", r#"no kind "Job" is registered"#),
    ("controllers__job-pod-failure-policy-example.yaml", r#"no kind "Job" is registered"#),
    ("controllers__job.yaml", r#"no kind "Job" is registered"#),
    ("application__mysql__mysql-statefulset.yaml", r#"no kind "StatefulSet" is registered"#),
    ("application__web__web.yaml", r#"no kind "StatefulSet" is registered"#),
    ("controllers__statefulset.yaml", r#"no kind "StatefulSet" is registered"#),
    // downwardAPI volumes (#22, not yet implemented; env fieldRef is).
    ("pods__inject__dapi-volume-resources.yaml", "spec.volumes[0].downwardAPI: Forbidden: not supported by Coracle"),
    // Local storage (#22, in progress).
    ("application__wordpress__mysql-deployment.yaml", r#"no kind "PersistentVolumeClaim" is registered"#),
    ("application__wordpress__wordpress-deployment.yaml", r#"no kind "PersistentVolumeClaim" is registered"#),
    ("pods__storage__pv-claim.yaml", r#"no kind "PersistentVolumeClaim" is registered"#),
    ("pods__storage__pv-volume.yaml", r#"no kind "PersistentVolume" is registered"#),
    ("pods__storage__pv-pod.yaml", "spec.volumes[0].persistentVolumeClaim: Forbidden: not supported by Coracle"),
    // Native sidecars and dnsConfig (#22 item 2, not yet implemented).
    ("application__deployment-sidecar.yaml", "initContainers[0].restartPolicy: Forbidden: not supported by Coracle"),
    ("service__networking__custom-dns.yaml", "spec.dnsConfig: Forbidden: not supported by Coracle"),
    // Scheduling on one node: node affinity has no second node to choose (not planned yet).
    ("pods__pod-with-node-affinity-1.yaml", "spec.affinity: Forbidden: not supported by Coracle"),
    // One PID namespace per pod: each container has its own here (not implemented yet).
    ("pods__share-process-namespace.yaml", "spec.shareProcessNamespace: Forbidden: not supported by Coracle"),
    // supplementalGroupsPolicy (Kubernetes 1.31+, alpha/beta): not implemented.
    (
        "pods__security__security-context-6.yaml",
        "spec.securityContext.supplementalGroupsPolicy: Forbidden: not supported by Coracle",
    ),
    // The example's own misspelling: Kubernetes' field is `grpc`, and Kubernetes refuses
    // `gRPC` under kubectl's default strict validation just the same.
    (
        "pods__probe__grpc-liveness.yaml",
        r#"strict decoding error: unknown field "spec.containers[0].livenessProbe.gRPC""#,
    ),
];

/// The corpus folder: `shared/corpus/k8s-docs` beside the checkout or any folder above it
/// (`/work/shared` for a worktree under `/work/wt`), or `$CORACLE_CORPUS`.
fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CORACLE_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    let root = coracle_e2e::workspace_root();
    root.ancestors().map(|dir| dir.join("shared/corpus/k8s-docs")).find(|dir| dir.is_dir())
}

/// The REST path of a submitted object, in the version it was written in (a v1 autoscaler
/// reads back as v1).
fn object_path(object: &Value) -> Result<String, String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let info = ResourceInfo::for_kind(api_version, kind).ok_or(format!("no resource for {api_version} {kind}"))?;
    let name = object["metadata"]["name"].as_str().ok_or("no name")?;
    let prefix = if info.group.is_empty() { "/api/v1".to_string() } else { format!("/apis/{api_version}") };
    if info.namespaced {
        let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
        Ok(format!("{prefix}/namespaces/{namespace}/{}/{name}", info.plural))
    } else {
        Ok(format!("{prefix}/{}/{name}", info.plural))
    }
}

/// Whether two scalars at `path` are the same value as Kubernetes reads them: equal, or,
/// where a quantity is wanted, one quantity written two ways (`0.5` and `"500m"`, `1` and
/// `"1"`). Anywhere else the form must survive: int-or-string `8080` is not `"8080"`.
fn same_scalar(path: &str, written: &Value, read: &Value) -> bool {
    if written == read {
        return true;
    }
    if !(path.contains("resources.") || path.ends_with("sizeLimit")) {
        return false;
    }
    let text = match written {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return false,
    };
    match read.as_str() {
        Some(got) => matches!((Quantity::parse(&text), Quantity::parse(got)), (Ok(x), Ok(y)) if x == y),
        None => false,
    }
}

/// The paths where `read` lacks or differs from what `written` holds. Extra fields in
/// `read` (defaults, status, server-set metadata) are fine; a `null` or an empty list
/// written is the field left out, as Kubernetes stores it.
fn differences(path: &str, written: &Value, read: Option<&Value>, out: &mut Vec<String>) {
    match (written, read) {
        (Value::Null, _) => {}
        (Value::Array(items), None) if items.is_empty() => {}
        (_, None) => out.push(format!("{path}: dropped (written {written})")),
        (Value::Object(fields), Some(Value::Object(got))) => {
            for (key, value) in fields {
                differences(&format!("{path}.{key}"), value, got.get(key), out);
            }
        }
        (Value::Array(items), Some(Value::Array(got))) if items.len() == got.len() => {
            for (i, (value, g)) in items.iter().zip(got).enumerate() {
                differences(&format!("{path}[{i}]"), value, Some(g), out);
            }
        }
        (_, Some(got)) if !same_scalar(path, written, got) => {
            out.push(format!("{path}: written {written}, read {got}"))
        }
        _ => {}
    }
}

#[test]
fn kubernetes_docs_examples_apply_faithfully_or_are_refused_by_name() {
    let Some(dir) = corpus_dir() else {
        eprintln!("skipping: no shared/corpus/k8s-docs above {}", coracle_e2e::workspace_root().display());
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("reading the corpus")
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let d = Daemon::start();
    // The docs have the reader create the namespaces their examples name first.
    let mut namespaces: Vec<String> = Vec::new();
    for file in &files {
        for (_, object) in split_objects(&std::fs::read_to_string(file).unwrap()).unwrap_or_default() {
            if let Some(ns) = object["metadata"]["namespace"].as_str().filter(|ns| !namespaces.iter().any(|n| n == ns))
            {
                namespaces.push(ns.to_string());
            }
        }
    }
    for ns in &namespaces {
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let (code, out) = d.http("POST", "/api/v1/namespaces", Some(&body.to_string()));
        assert!(code == 201 || code == 409, "creating namespace {ns}: {out}");
    }
    let mut refused: BTreeMap<String, String> = BTreeMap::new();
    let mut dropped: Vec<String> = Vec::new();
    let mut accepted = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let out = d.ctl(&["apply", "-f", file.to_str().unwrap()]);
        if out.status.success() {
            accepted += 1;
        } else {
            refused.insert(name.clone(), stderr(&out));
        }
        // Whatever was stored, even from a file partly refused, reads back as written.
        for (where_, written) in split_objects(&text).unwrap_or_else(|e| panic!("{name}: {e}")) {
            let Ok(path) = object_path(&written) else { continue };
            let (code, body) = d.http("GET", &path, None);
            if code != 200 {
                continue;
            }
            let read: Value = serde_json::from_str(&body).unwrap();
            let mut diffs = Vec::new();
            differences("", &written, Some(&read), &mut diffs);
            dropped.extend(diffs.into_iter().map(|diff| format!("{name}: {where_}: {}", diff.trim_start_matches('.'))));
            // Several examples share names (`my-nginx`): each file starts from a clean slate.
            if written["kind"] != "Namespace" {
                let (code, out) = d.http("DELETE", &format!("{path}?gracePeriodSeconds=0"), None);
                assert!(code == 200 || code == 202, "deleting {path}: {out}");
                coracle_e2e::wait_for(&format!("{path} gone"), std::time::Duration::from_secs(30), || {
                    (d.http("GET", &path, None).0 == 404).then_some(())
                });
            }
        }
    }
    eprintln!("corpus: {} files, {accepted} accepted, {} refused", files.len(), refused.len());
    for (name, error) in &refused {
        eprintln!("refused {name}: {}", error.trim());
    }
    assert!(dropped.is_empty(), "accepted with fields lost:\n{}", dropped.join("\n"));
    let expected: BTreeMap<&str, &str> = REFUSED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (name, error) in &refused {
        match expected.get(name.as_str()) {
            None => wrong.push(format!("{name}: refused, not in REFUSED: {}", error.trim())),
            Some(why) if !error.contains(why) => wrong.push(format!("{name}: error lacks {why:?}: {}", error.trim())),
            Some(_) => {}
        }
    }
    for name in expected.keys().filter(|name| !refused.contains_key(**name)) {
        wrong.push(format!("{name}: in REFUSED but accepted (take it off the list)"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
