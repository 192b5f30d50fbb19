//! ConfigMaps and Secrets: Kubernetes' messages for bad keys, sizes, types and updates.

use super::*;
use crate::defaults;
use crate::manifest::decode_object;
use serde_json::{json, Value};

fn admitted(v: Value) -> Object {
    let mut obj = decode_object(v).expect("decodes").object;
    defaults::apply(&mut obj);
    obj
}

fn errors_of(v: Value) -> Vec<String> {
    validate(&admitted(v)).err().unwrap_or_default().iter().map(|e| e.to_string()).collect()
}

fn update_errors(old: Value, new: Value) -> Vec<String> {
    validate_update(&admitted(old), &admitted(new)).err().unwrap_or_default().iter().map(|e| e.to_string()).collect()
}

fn cm(data: Value, binary: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data, "binaryData": binary})
}

fn secret(type_: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": type_, "data": data})
}

const KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

#[test]
fn config_map_keys_sizes_and_duplicates() {
    assert_eq!(errors_of(cm(json!({"a.conf": "x", "B_2-c": ""}), json!({"bin": "AAE="}))), Vec::<String>::new());
    assert_eq!(
        errors_of(cm(json!({"a b": "x"}), json!({}))),
        [format!("data[a b]: Invalid value: \"a b\": {KEY_MSG}")]
    );
    assert_eq!(
        errors_of(cm(json!({"..x": "1"}), json!({}))),
        ["data[..x]: Invalid value: \"..x\": must not start with '..'"]
    );
    assert_eq!(
        errors_of(cm(json!({"k": "1"}), json!({"k": "MQ=="}))),
        ["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"]
    );
    let big = "x".repeat(MAX_CONFIG_SIZE);
    assert_eq!(errors_of(cm(json!({"a": big}), json!({}))), Vec::<String>::new(), "exactly 1 MiB is allowed");
    assert_eq!(
        errors_of(cm(json!({"a": big, "b": "y"}), json!({}))),
        [": Too long: may not be more than 1048576 bytes"]
    );
}

#[test]
fn binary_data_must_be_base64() {
    let e = decode_object(cm(json!({}), json!({"k": "!!"}))).unwrap_err();
    assert_eq!(e.to_string(), "binaryData.k: illegal base64 data at input byte 0");
}

#[test]
fn secrets_default_to_opaque_and_fold_string_data() {
    let Object::Secret(s) = admitted(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"a": "YQ==", "b": "Yg=="}, "stringData": {"b": "B", "c": "C"}}))
    else {
        panic!("a secret")
    };
    assert_eq!(s.secret_type(), "Opaque");
    assert!(s.string_data.is_empty(), "stringData is write-only");
    let data: Vec<(&str, &[u8])> = s.data.iter().map(|(k, v)| (k.as_str(), v.0.as_slice())).collect();
    assert_eq!(data, [("a", &b"a"[..]), ("b", b"B"), ("c", b"C")]);
    let json = Object::Secret(s).to_json();
    assert_eq!(json["data"], json!({"a": "YQ==", "b": "Qg==", "c": "Qw=="}));
    assert!(json.get("stringData").is_none());
}

#[test]
fn secret_types_require_their_keys() {
    assert_eq!(errors_of(secret("kubernetes.io/tls", json!({"tls.crt": "eA=="}))), ["data[tls.key]: Required value"]);
    assert_eq!(
        errors_of(secret("kubernetes.io/dockerconfigjson", json!({}))),
        ["data[.dockerconfigjson]: Required value"]
    );
    let not_json = crate::base64::encode(b"{nope");
    let e = errors_of(secret("kubernetes.io/dockerconfigjson", json!({".dockerconfigjson": not_json})));
    assert!(e[0].starts_with("data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": "), "{e:?}");
    let ok = crate::base64::encode(br#"{"auths":{}}"#);
    assert_eq!(
        errors_of(secret("kubernetes.io/dockerconfigjson", json!({".dockerconfigjson": ok}))),
        Vec::<String>::new()
    );
    assert_eq!(
        errors_of(secret("kubernetes.io/basic-auth", json!({}))),
        ["data[username]: Required value", "data[password]: Required value"]
    );
    assert_eq!(errors_of(secret("kubernetes.io/basic-auth", json!({"password": ""}))), Vec::<String>::new());
    assert_eq!(errors_of(secret("kubernetes.io/ssh-auth", json!({}))), ["data[ssh-privatekey]: Required value"]);
    let e = errors_of(secret("kubernetes.io/service-account-token", json!({})));
    assert!(e[0].starts_with("type: Invalid value: \"kubernetes.io/service-account-token\": not supported by Coracle"));
    assert_eq!(errors_of(secret("example.com/custom", json!({"x": "eA=="}))), Vec::<String>::new());
    assert_eq!(
        errors_of(secret("Opaque", json!({"a": crate::base64::encode(&vec![0; MAX_CONFIG_SIZE + 1])}))),
        ["data: Too long: may not be more than 1048576 bytes"]
    );
}

#[test]
fn immutable_objects_keep_their_data() {
    let frozen = |data: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data, "immutable": true});
    assert_eq!(update_errors(frozen(json!({"a": "1"})), frozen(json!({"a": "1"}))), Vec::<String>::new());
    assert_eq!(
        update_errors(frozen(json!({"a": "1"})), frozen(json!({"a": "2"}))),
        ["data: Forbidden: field is immutable when `immutable` is set"]
    );
    assert_eq!(
        update_errors(frozen(json!({"a": "1"})), cm(json!({"a": "1"}), json!({}))),
        ["immutable: Forbidden: field is immutable when `immutable` is set"]
    );
    // Not yet immutable: anything may change, including setting the flag.
    assert_eq!(update_errors(cm(json!({"a": "1"}), json!({})), frozen(json!({"a": "2"}))), Vec::<String>::new());

    let mut s = secret("Opaque", json!({"a": "YQ=="}));
    s["immutable"] = json!(true);
    let mut changed = s.clone();
    changed["stringData"] = json!({"a": "b"});
    assert_eq!(update_errors(s.clone(), changed), ["data: Forbidden: field is immutable when `immutable` is set"]);
    assert_eq!(
        update_errors(secret("Opaque", json!({})), secret("kubernetes.io/basic-auth", json!({"username": ""}))),
        ["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable"]
    );
}

#[test]
fn config_volumes_need_a_name_relative_paths_and_modes_in_range() {
    let pod = |volume: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}], "volumes": [volume]}})
    };
    assert_eq!(
        errors_of(pod(
            json!({"name": "v", "configMap": {"name": "c", "items": [{"key": "k", "path": "a/b", "mode": 0o400}]}})
        )),
        Vec::<String>::new()
    );
    assert_eq!(
        errors_of(pod(json!({"name": "v", "configMap": {"name": "", "defaultMode": 0o1000,
                                                         "items": [{"key": "", "path": "../x"}]}}))),
        [
            "spec.volumes[0].configMap.name: Required value",
            "spec.volumes[0].configMap.items[0].key: Required value",
            "spec.volumes[0].configMap.items[0].path: Invalid value: \"../x\": must not contain '..'",
            "spec.volumes[0].configMap.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive",
        ]
    );
    assert_eq!(
        errors_of(pod(json!({"name": "v", "secret": {"items": [{"key": "k", "path": "/abs"}]}}))),
        [
            "spec.volumes[0].secret.secretName: Required value",
            "spec.volumes[0].secret.items[0].path: Invalid value: \"/abs\": must be a relative path",
        ]
    );
    assert_eq!(
        errors_of(pod(json!({"name": "v", "secret": {"secretName": "s"}, "emptyDir": {}}))),
        ["spec.volumes[0].secret: Forbidden: may not specify more than 1 volume type"]
    );
    let Object::Pod(p) = admitted(pod(json!({"name": "v", "secret": {"secretName": "s"}}))) else { panic!() };
    let v = &p.spec.volumes[0];
    assert_eq!((v.secret.as_ref().unwrap().default_mode, v.empty_dir.is_none()), (Some(0o644), true));
    let e = errors_of(pod(json!({"name": "v", "projected": {"sources": [
        {"secret": {"name": "s"}}, {"serviceAccountToken": {"path": "token"}}, {"configMap": {"name": ""}}]}})));
    assert_eq!(
        e,
        [
            "spec.volumes[0].projected.sources[1].serviceAccountToken: Forbidden: not supported by Coracle (projected volumes take configMap and secret sources)",
            "spec.volumes[0].projected.sources[2].configMap.name: Required value",
        ]
    );
}
