//! Manifests from the Kubernetes documentation parse unchanged, default, validate and
//! round-trip through the stored JSON form.

use coracle_config::manifest::{decode_object, parse_documents, Parsed};
use coracle_config::object::Object;
use coracle_config::{defaults, validation};
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

fn load(name: &str) -> Vec<Parsed> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_documents(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The source documents as plain JSON, to compare against what was decoded.
fn source_documents(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/manifests").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let docs: Vec<Value> =
        serde_yaml_ng::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).collect();
    docs.into_iter()
        .flat_map(|d| match d.get("items").and_then(Value::as_array) {
            Some(items) => items.clone(),
            None => vec![d],
        })
        .collect()
}

/// Every field of `want` is in `got` with the same value.
fn assert_contains(got: &Value, want: &Value, at: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for (k, v) in w {
                let g = g.get(k).unwrap_or_else(|| panic!("{at}.{k} was dropped"));
                assert_contains(g, v, &format!("{at}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{at}: length");
            for (i, (g, w)) in g.iter().zip(w).enumerate() {
                assert_contains(g, w, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{at}"),
    }
}

const FILES: &[&str] = &[
    "nginx-deployment.yaml",
    "simple-service.yaml",
    "php-apache.yaml",
    "hpa-v2.yaml",
    "exec-liveness.yaml",
    "http-liveness.yaml",
    "memory-request-limit.yaml",
    "namespace-and-list.json",
];

#[test]
fn documentation_manifests_parse_unchanged_and_validate() {
    for name in FILES {
        let parsed = load(name);
        let sources = source_documents(name);
        assert_eq!(parsed.len(), sources.len(), "{name}");
        for (p, src) in parsed.iter().zip(&sources) {
            assert!(p.warnings.is_empty(), "{name}: {:?}", p.warnings);
            assert_contains(&p.object.to_json(), src, name);
            let mut obj = p.object.clone();
            defaults::apply(&mut obj);
            if let Err(errs) = validation::validate(&obj) {
                panic!("{name}: {}", errs.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "));
            }
        }
    }
}

#[test]
fn defaulted_objects_round_trip_through_json() {
    for name in FILES {
        for p in load(name) {
            let mut obj = p.object;
            defaults::apply(&mut obj);
            let json = obj.to_json();
            let again = decode_object(json.clone()).unwrap();
            assert!(again.warnings.is_empty(), "{name}: {:?}", again.warnings);
            assert_eq!(again.object, obj, "{name}");
            assert_eq!(again.object.to_json(), json, "{name}");
        }
    }
}

#[test]
fn nginx_deployment_reads_as_the_docs_describe() {
    let Object::Deployment(d) = load("nginx-deployment.yaml").remove(0).object else { panic!("not a Deployment") };
    assert_eq!(d.metadata.name, "nginx-deployment");
    assert_eq!(d.spec.replicas, Some(3));
    let c = &d.spec.template.spec.containers[0];
    assert_eq!((c.name.as_str(), c.image.as_str(), c.ports[0].container_port), ("nginx", "nginx:1.14.2", 80));
}

#[test]
fn both_autoscaler_versions_store_the_same_object() {
    let v1 = load("hpa-v1.yaml").remove(0);
    let v2 = load("hpa-v2.yaml").remove(0);
    assert!(v1.warnings.is_empty());
    assert_eq!(v1.object, v2.object);
}

#[test]
fn quantities_keep_their_written_form() {
    let Object::Pod(p) = load("memory-request-limit.yaml").remove(0).object else { panic!("not a Pod") };
    let r = &p.spec.containers[0].resources;
    assert_eq!(r.requests["memory"].to_string(), "100Mi");
    assert_eq!(r.limits["memory"].value(), 200 * 1024 * 1024);
}
