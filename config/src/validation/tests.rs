//! A table of bad objects, each with the exact messages Kubernetes would give.

use super::*;
use crate::defaults;
use crate::manifest::decode_object;
use serde_json::{json, Value};

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
}

fn hpa() -> Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1, "maxReplicas": 5}})
}

/// Decodes, defaults and validates, as the API does on create.
fn errors_of(v: Value) -> Vec<String> {
    let mut obj = decode_object(v).expect("decodes").object;
    defaults::apply(&mut obj);
    match validate(&obj) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn valid_objects_pass() {
    for v in [deployment(), pod(), service(), hpa()] {
        assert_eq!(errors_of(v), Vec::<String>::new());
    }
}

#[test]
fn bad_objects_report_kubernetes_messages() {
    let c0 = "spec.template.spec.containers[0]";
    type Edit = fn(&mut Value);
    let table: Vec<(Value, Edit, Vec<String>)> = vec![
        (deployment(), |v| v["metadata"]["name"] = json!("Web_1"), vec![format!("metadata.name: Invalid value: \"Web_1\": {SUBDOMAIN_MSG}")]),
        (deployment(), |v| v["spec"]["replicas"] = json!(-1), vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0".into()]),
        (deployment(), |v| v["spec"]["template"]["spec"]["containers"][0]["image"] = json!(""), vec![format!("{c0}.image: Required value")]),
        (
            deployment(),
            |v| v["spec"]["template"]["metadata"]["labels"] = json!({"app": "x"}),
            vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`".into()],
        ),
        (deployment(), |v| v["spec"]["selector"] = json!({}), vec!["spec.selector: Required value".into()]),
        (
            deployment(),
            |v| v["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!(70000),
            vec![format!("{c0}.ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive")],
        ),
        (
            deployment(),
            |v| {
                let c = v["spec"]["template"]["spec"]["containers"][0].clone();
                v["spec"]["template"]["spec"]["containers"].as_array_mut().unwrap().push(c);
            },
            vec!["spec.template.spec.containers[1].name: Duplicate value: \"web\"".into()],
        ),
        (
            deployment(),
            |v| v["spec"]["template"]["spec"]["containers"][0]["name"] = json!("Web"),
            vec![format!("{c0}.name: Invalid value: \"Web\": {LABEL_MSG}")],
        ),
        (
            deployment(),
            |v| {
                v["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] =
                    json!({"httpGet": {"port": 80}, "tcpSocket": {"port": 80}, "successThreshold": 2})
            },
            vec![
                format!("{c0}.livenessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"),
                format!("{c0}.livenessProbe.successThreshold: Invalid value: 2: must be 1"),
            ],
        ),
        (
            deployment(),
            |v| v["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = json!({"periodSeconds": -1}),
            vec![
                format!("{c0}.readinessProbe: Required value: must specify a handler type"),
                format!("{c0}.readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0"),
            ],
        ),
        (
            deployment(),
            |v| v["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure"),
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\"".into()],
        ),
        (
            pod(),
            |v| v["spec"]["restartPolicy"] = json!("Sometimes"),
            vec!["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".into()],
        ),
        (
            deployment(),
            |v| v["spec"]["template"]["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "-1"}}),
            vec![format!("{c0}.resources.limits[cpu]: Invalid value: \"-1\": must be greater than or equal to 0")],
        ),
        (
            deployment(),
            |v| {
                v["spec"]["template"]["spec"]["containers"][0]["resources"] =
                    json!({"limits": {"cpu": "1", "memory": "64Mi"}, "requests": {"cpu": 2, "memory": "64Mi", "gpu": 1}})
            },
            vec![
                format!("{c0}.resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers"),
                format!("{c0}.resources.requests[cpu]: Invalid value: \"2\": must be less than or equal to cpu limit of 1"),
            ],
        ),
        (
            deployment(),
            |v| {
                v["spec"]["template"]["spec"]["volumes"] = json!([{"name": "data"}, {"name": "data"}]);
                v["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
                    json!([{"name": "data", "mountPath": "/d"}, {"name": "cache", "mountPath": "/d"}]);
            },
            vec![
                "spec.template.spec.volumes[1].name: Duplicate value: \"data\"".into(),
                format!("{c0}.volumeMounts[1].name: Not found: \"cache\""),
                format!("{c0}.volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique"),
            ],
        ),
        (
            deployment(),
            |v| v["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
            vec!["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0".into()],
        ),
        (
            deployment(),
            |v| v["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {"maxSurge": "x"}}),
            vec!["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'".into()],
        ),
        (
            deployment(),
            |v| v["metadata"]["labels"] = json!({"bad key": "ok", "ok": "a".repeat(64)}),
            vec![
                "metadata.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into(),
                format!("metadata.labels: Invalid value: \"{}\": must be no more than 63 characters", "a".repeat(64)),
            ],
        ),
        (
            deployment(),
            |v| {
                v["spec"]["replicas"] = json!(-1);
                v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
                v["metadata"]["name"] = json!("");
            },
            vec![
                "metadata.name: Required value: name or generateName is required".into(),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0".into(),
                format!("{c0}.image: Required value"),
            ],
        ),
        (
            service(),
            |v| v["metadata"]["name"] = json!("1web"),
            vec!["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".into()],
        ),
        (
            service(),
            |v| v["spec"]["type"] = json!("Foo"),
            vec!["spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"".into()],
        ),
        (
            service(),
            |v| {
                v["spec"]["type"] = json!("NodePort");
                v["spec"]["ports"] = json!([{"name": "a", "port": 80, "nodePort": 70000, "protocol": "HTTP"},
                                            {"port": 80, "targetPort": "http_x"}]);
            },
            vec![
                "spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into(),
                "spec.ports[0].nodePort: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
                "spec.ports[1].name: Required value".into(),
                "spec.ports[1].targetPort: Invalid value: \"http_x\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
            ],
        ),
        (
            pod(),
            |v| {
                v["spec"]["containers"][0]["lifecycle"] =
                    json!({"preStop": {"exec": {"command": []}, "sleep": {"seconds": 31}}})
            },
            vec![
                "spec.containers[0].lifecycle.preStop.sleep: Forbidden: may not specify more than 1 handler type".into(),
                "spec.containers[0].lifecycle.preStop.exec.command: Required value".into(),
                "spec.containers[0].lifecycle.preStop.sleep.seconds: Invalid value: 31: must be non-negative and less than terminationGracePeriodSeconds (30)".into(),
            ],
        ),
        (
            service(),
            |v| v["spec"]["ports"] = json!([{"name": "a", "port": 80}, {"name": "a", "port": 0}]),
            vec![
                "spec.ports[1].name: Duplicate value: \"a\"".into(),
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
                // Defaulted from the port, as the API server does.
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive".into(),
            ],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                   "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"name": "Web", "port": 81}]}]}),
            |_| {},
            vec![
                "subsets[0].ports[0].name: Required value".into(),
                format!("subsets[0].ports[1].name: Invalid value: \"Web\": {LABEL_MSG}"),
            ],
        ),
        (
            service(),
            |v| v["spec"]["ports"] = json!([{"port": 80, "nodePort": 30080}]),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'".into()],
        ),
        (
            hpa(),
            |v| {
                v["spec"]["minReplicas"] = json!(5);
                v["spec"]["maxReplicas"] = json!(2);
            },
            vec!["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`".into()],
        ),
        (
            hpa(),
            |v| {
                v["spec"]["maxReplicas"] = json!(0);
                v["spec"]["scaleTargetRef"]["name"] = json!("");
            },
            vec![
                "spec.scaleTargetRef.name: Required value".into(),
                "spec.maxReplicas: Invalid value: 0: must be greater than 0".into(),
                "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`".into(),
            ],
        ),
        (
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}}),
            |_| {},
            vec![format!("metadata.name: Invalid value: \"a.b\": {LABEL_MSG}")],
        ),
    ];
    for (i, (mut v, edit, want)) in table.into_iter().enumerate() {
        edit(&mut v);
        assert_eq!(errors_of(v), want, "case {i}");
    }
}

#[test]
fn updates_keep_selectors_and_names() {
    let decode = |v: Value| {
        let mut o = decode_object(v).unwrap().object;
        defaults::apply(&mut o);
        o
    };
    let old = decode(deployment());
    let mut changed = deployment();
    changed["spec"]["selector"]["matchLabels"] = json!({"app": "web", "tier": "f"});
    changed["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "f"});
    changed["metadata"]["name"] = json!("web2");
    let errs: Vec<String> =
        validate_update(&old, &decode(changed)).unwrap_err().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errs,
        [
            "metadata.name: Invalid value: \"web2\": field is immutable",
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"f\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        ]
    );
    let mut scaled = deployment();
    scaled["spec"]["replicas"] = json!(7);
    assert_eq!(validate_update(&old, &decode(scaled)), Ok(()));
}

#[test]
fn errors_carry_reasons_and_aggregate_like_the_api() {
    let errs = vec![
        FieldError::required(&Path::new("spec").child("x"), ""),
        FieldError::invalid(&Path::new("spec").child("y"), "-1", "must be greater than or equal to 0"),
    ];
    assert_eq!(errs[0].reason(), "FieldValueRequired");
    assert_eq!(errs[1].body(), "Invalid value: -1: must be greater than or equal to 0");
    assert_eq!(
        invalid_message("Deployment.apps", "web", &errs),
        "Deployment.apps \"web\" is invalid: [spec.x: Required value, spec.y: Invalid value: -1: must be greater than or equal to 0]"
    );
    assert_eq!(invalid_message("Pod", "p", &errs[..1]), "Pod \"p\" is invalid: spec.x: Required value");
}

#[test]
fn numbers_from_outside_are_bounded() {
    const QUALIFIED_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    type Edit = fn(&mut Value);
    let table: Vec<(Value, Edit, Vec<String>)> = vec![
        (
            pod(),
            |v| v["spec"]["terminationGracePeriodSeconds"] = json!(i64::MAX),
            vec!["spec.terminationGracePeriodSeconds: Invalid value: 9223372036854775807: must be less than or equal to 2147483647".into()],
        ),
        (
            pod(),
            |v| v["spec"]["terminationGracePeriodSeconds"] = json!(-1),
            vec!["spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0".into()],
        ),
        (pod(), |v| v["spec"]["terminationGracePeriodSeconds"] = json!(i32::MAX), vec![]),
        (
            pod(),
            |v| v["spec"]["activeDeadlineSeconds"] = json!(i64::MAX),
            vec!["spec.activeDeadlineSeconds: Invalid value: 9223372036854775807: must be between 1 and 2147483647, inclusive".into()],
        ),
        (
            pod(),
            |v| {
                v["spec"]["containers"][0]["livenessProbe"] =
                    json!({"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": i64::MAX});
                v["spec"]["containers"][0]["readinessProbe"] =
                    json!({"exec": {"command": ["true"]}, "terminationGracePeriodSeconds": 0, "initialDelaySeconds": -5});
            },
            vec![
                "spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 9223372036854775807: must be less than or equal to 2147483647".into(),
                "spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -5: must be greater than or equal to 0".into(),
                "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0".into(),
            ],
        ),
        (
            pod(),
            |v| v["spec"]["securityContext"] = json!({"supplementalGroups": [1000, -1, 4294967296_i64]}),
            vec![
                "spec.securityContext.supplementalGroups[1]: Invalid value: -1: must be between 0 and 2147483647, inclusive".into(),
                "spec.securityContext.supplementalGroups[2]: Invalid value: 4294967296: must be between 0 and 2147483647, inclusive".into(),
            ],
        ),
        (
            pod(),
            |v| v["metadata"]["finalizers"] = json!([""]),
            vec![
                "metadata.finalizers: Invalid value: \"\": name part must be non-empty".into(),
                format!("metadata.finalizers: Invalid value: \"\": {QUALIFIED_MSG}"),
                "metadata.finalizers[0]: Invalid value: \"\": name is neither a standard finalizer name nor is it fully qualified".into(),
            ],
        ),
        (
            deployment(),
            |v| v["metadata"]["finalizers"] = json!(["example.com/hold", "orphan", "foregroundDeletion", "mine"]),
            vec![
                "metadata.finalizers: Invalid value: []string{\"example.com/hold\", \"orphan\", \"foregroundDeletion\", \"mine\"}: finalizer orphan and foregroundDeletion cannot be both set".into(),
                "metadata.finalizers[3]: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified".into(),
            ],
        ),
        (
            service(),
            |v| v["metadata"]["finalizers"] = json!(["example.com/a b", "kubernetes"]),
            vec![format!("metadata.finalizers: Invalid value: \"example.com/a b\": {QUALIFIED_MSG}")],
        ),
    ];
    for (i, (mut v, edit, want)) in table.into_iter().enumerate() {
        edit(&mut v);
        assert_eq!(errors_of(v), want, "case {i}");
    }
}

#[test]
fn numbers_beyond_their_type_are_refused_at_decoding_naming_the_field() {
    let decode_error = |v: Value| decode_object(v).expect_err("refused").message;
    let mut d = deployment();
    d["spec"]["replicas"] = json!(2_147_483_648_i64);
    assert_eq!(decode_error(d), "spec.replicas: invalid value: integer `2147483648`, expected i32");
    let mut p = pod();
    p["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "99999999999999999999Ei"}});
    assert_eq!(
        decode_error(p),
        "spec.containers[0].resources.limits.memory: invalid quantity \"99999999999999999999Ei\": quantity is too large (the limit is 9223372036854775807 units)"
    );
    let mut p = pod();
    p["spec"]["terminationGracePeriodSeconds"] = json!(u64::MAX);
    assert_eq!(
        decode_error(p),
        "spec.terminationGracePeriodSeconds: invalid value: integer `18446744073709551615`, expected i64"
    );
}

#[test]
fn security_contexts_are_checked_as_kubernetes_does() {
    let with = |pod_sc: Value, sc: Value| {
        let mut p = pod();
        p["spec"]["securityContext"] = pod_sc;
        p["spec"]["containers"][0]["securityContext"] = sc;
        errors_of(p)
    };
    let c0 = "spec.containers[0].securityContext";
    let fine = json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/audit.json"}, "procMount": "Default",
                      "privileged": false, "readOnlyRootFilesystem": true, "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}});
    assert_eq!(with(json!({"seccompProfile": {"type": "RuntimeDefault"}}), fine), Vec::<String>::new());
    assert_eq!(
        with(json!({"seccompProfile": {"type": "Localhost"}}), json!({"seccompProfile": {"type": "Strict"}})),
        vec![
            format!("{c0}.seccompProfile.type: Unsupported value: \"Strict\": supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""),
            "spec.securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost".to_string(),
        ]
    );
    assert_eq!(
        with(json!({"seccompProfile": {"type": "Unconfined", "localhostProfile": "x.json"}}), json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "/etc/../x.json"}})),
        vec![
            format!("{c0}.seccompProfile.localhostProfile: Invalid value: \"/etc/../x.json\": must be a relative path"),
            format!("{c0}.seccompProfile.localhostProfile: Invalid value: \"/etc/../x.json\": must not contain '..'"),
            "spec.securityContext.seccompProfile.localhostProfile: Invalid value: \"x.json\": can only be set when seccomp type is Localhost".to_string(),
        ]
    );
    assert_eq!(
        with(json!({}), json!({"seccompProfile": {}})),
        vec![format!("{c0}.seccompProfile.type: Required value: type is required when seccompProfile is set")]
    );
    assert_eq!(
        with(json!({}), json!({"procMount": "Unmasked"})),
        vec![format!("{c0}: Invalid value: \"Unmasked\": `hostUsers` must be false to use `Unmasked`")]
    );
    assert_eq!(
        with(json!({}), json!({"procMount": "Raw"})),
        vec![format!("{c0}.procMount: Unsupported value: \"Raw\": supported values: \"Default\", \"Unmasked\"")]
    );
    assert_eq!(
        with(json!({}), json!({"allowPrivilegeEscalation": false, "capabilities": {"add": ["CAP_SYS_ADMIN"]}})),
        vec![format!("{c0}: Invalid value: false: cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN")]
    );
}

#[test]
fn what_the_node_cannot_enforce_is_refused_by_name() {
    let with = |pod_sc: Value, sc: Value| {
        let mut p = pod();
        p["spec"]["securityContext"] = pod_sc;
        p["spec"]["containers"][0]["securityContext"] = sc;
        errors_of(p)
    };
    let c0 = "spec.containers[0].securityContext";
    // Unconfined is what happens anyway; explicit nulls are absent fields.
    assert_eq!(
        with(
            json!({"appArmorProfile": {"type": "Unconfined"}, "seLinuxOptions": null, "sysctls": null}),
            json!({"appArmorProfile": null, "windowsOptions": null})
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        with(
            json!({"seLinuxOptions": {"level": "s0:c123,c456"}, "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}, {"name": "kernel.msgmax", "value": "1"}]}),
            json!({"appArmorProfile": {"type": "RuntimeDefault"}, "windowsOptions": {"runAsUserName": "x"}})
        ),
        vec![
            format!("{c0}.windowsOptions: Forbidden: not supported by Coracle: containers run on Linux"),
            format!(
                "{c0}.appArmorProfile.type: Unsupported value: \"RuntimeDefault\": supported values: \"Unconfined\""
            ),
            "spec.securityContext.seLinuxOptions: Forbidden: not supported by Coracle: the node has no SELinux"
                .to_string(),
            "spec.securityContext.sysctls[1].name: Forbidden: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
                .to_string(),
        ]
    );
    // The safe set, in either spelling, once each; no network one on the host's network.
    let safe = json!({"sysctls": [{"name": "net.ipv4.ip_local_port_range", "value": "40000 50000"}, {"name": "kernel/shm_rmid_forced", "value": "1"}]});
    assert_eq!(with(safe.clone(), json!({})), Vec::<String>::new());
    let mut p = pod();
    p["spec"]["securityContext"] = safe;
    p["spec"]["hostNetwork"] = json!(true);
    assert_eq!(
        errors_of(p),
        vec!["spec.securityContext.sysctls[0].name: Forbidden: forbidden sysctl: \"net.ipv4.ip_local_port_range\" not allowed with host net enabled".to_string()]
    );
    assert_eq!(
        with(
            json!({"sysctls": [{"name": "net/ipv4/tcp_syncookies", "value": "1"}, {"name": "net.ipv4.tcp_syncookies", "value": "0"}, {"name": "", "value": "0"}]}),
            json!({})
        ),
        vec![
            "spec.securityContext.sysctls[1].name: Duplicate value: \"net.ipv4.tcp_syncookies\"".to_string(),
            "spec.securityContext.sysctls[2].name: Required value".to_string(),
        ]
    );
    assert_eq!(sysctl_name("net/ipv4/tcp_syncookies"), "net.ipv4.tcp_syncookies");
    assert_eq!(sysctl_name("kernel.shm_rmid_forced"), "kernel.shm_rmid_forced");
    assert_eq!(
        with(json!({"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-apparmor-example"}}), json!({"appArmorProfile": {"type": "Unconfined", "localhostProfile": "x"}})),
        vec![
            format!("{c0}.appArmorProfile.localhostProfile: Invalid value: \"x\": can only be set when AppArmor type is Localhost"),
            "spec.securityContext.appArmorProfile.type: Unsupported value: \"Localhost\": supported values: \"Unconfined\"".to_string(),
        ]
    );
    // The annotation form, on a pod and in a Deployment's template.
    let key = "container.apparmor.security.beta.kubernetes.io/app";
    let mut p = pod();
    p["metadata"]["annotations"] = json!({key: "runtime/default", "other": "x"});
    assert_eq!(
        errors_of(p),
        vec![format!(
            "metadata.annotations[{key}]: Unsupported value: \"runtime/default\": supported values: \"unconfined\""
        )]
    );
    let mut p = pod();
    p["metadata"]["annotations"] = json!({key: "unconfined"});
    assert_eq!(errors_of(p), Vec::<String>::new());
    let mut d = deployment();
    d["spec"]["template"]["metadata"]["annotations"] = json!({key: "localhost/k8s-apparmor-example"});
    assert_eq!(
        errors_of(d),
        vec![format!("spec.template.metadata.annotations[{key}]: Unsupported value: \"localhost/k8s-apparmor-example\": supported values: \"unconfined\"")]
    );
}

#[test]
fn host_namespaces_are_refused_by_name_and_false_is_accepted() {
    let mut p = pod();
    p["spec"]["hostPID"] = json!(true);
    p["spec"]["hostIPC"] = json!(true);
    p["spec"]["shareProcessNamespace"] = json!(true);
    assert_eq!(
        errors_of(p),
        vec![
            "spec.hostPID: Forbidden: not supported by Coracle: each container has its own PID namespace",
            "spec.hostIPC: Forbidden: not supported by Coracle: each pod has its own IPC namespace",
            "spec.shareProcessNamespace: Forbidden: not supported by Coracle: each container has its own PID namespace",
        ]
    );
    let mut p = pod();
    p["spec"]["hostPID"] = json!(false);
    p["spec"]["hostIPC"] = json!(null);
    p["spec"]["shareProcessNamespace"] = json!(false);
    assert_eq!(errors_of(p), Vec::<String>::new());
}
