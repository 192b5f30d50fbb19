//! Property tests of every parser in the object model that takes user bytes: quantities,
//! IntOrString, label selectors, manifests (YAML and JSON, down to typed objects through
//! defaulting and validation), timestamps, the name checks and the daemon's settings.
//! Whatever the input, each returns a value or an error, never a panic; where a printed
//! form exists, it parses back to the same value; and what validation admits is bounded.
//! Case counts stay modest so the suite stays fast; `PROPTEST_CASES` raises them.

use coracle_config::core::Pod;
use coracle_config::label_selector::Selector;
use coracle_config::manifest::{decode_object, parse_documents};
use coracle_config::object::Object;
use coracle_config::quantity::Format;
use coracle_config::settings::DaemonSettings;
use coracle_config::validation::{self, names, MAX_SECONDS};
use coracle_config::{base64, defaults, time, IntOrString, Quantity};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Text close to a quantity: sign, digits, fraction, any suffix Kubernetes knows and some
/// it does not.
fn quantity_like() -> impl Strategy<Value = String> {
    "[+-]?[0-9]{0,24}(\\.[0-9]{0,14})?(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?[0-9]{1,4}|i|K|mi|kk)?"
}

/// Soup of the characters YAML and JSON give meaning to, to reach the parsers' corners.
fn yaml_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("["),
            Just("]"),
            Just("{"),
            Just("}"),
            Just(","),
            Just(": "),
            Just(":"),
            Just("\""),
            Just("'"),
            Just(" #"),
            Just("\n"),
            Just("\n  "),
            Just("- "),
            Just("? "),
            Just("|"),
            Just(">"),
            Just("&a "),
            Just("*a"),
            Just("!!str "),
            Just("---\n"),
            Just("apiVersion: v1\n"),
            Just("kind: Pod\n"),
            Just("metadata: {name: p}\n"),
            Just("spec: "),
            Just("containers"),
            Just("x"),
            Just("1"),
            Just("-1"),
            Just("9223372036854775808"),
            Just("1e999"),
            Just("~"),
            Just("null"),
            Just("\t"),
            Just("\\"),
        ],
        0..48,
    )
    .prop_map(|parts| parts.concat())
}

/// Any JSON value, nested a few levels, with the keys objects have.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        quantity_like().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("metadata".to_string()),
                    Just("spec".to_string()),
                    Just("name".to_string()),
                    Just("containers".to_string()),
                    Just("replicas".to_string()),
                    Just("selector".to_string()),
                    Just("template".to_string()),
                    Just("ports".to_string()),
                    Just("resources".to_string()),
                    Just("limits".to_string()),
                    Just("finalizers".to_string()),
                    Just("terminationGracePeriodSeconds".to_string()),
                    "[a-zA-Z]{1,8}",
                ],
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Seconds as a user may write them: mostly near the bounds that matter, sometimes any i64.
fn seconds() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => -2i64..=100,
        3 => (MAX_SECONDS - 2)..=(MAX_SECONDS + 2),
        1 => any::<i64>(),
        1 => Just(i64::MAX),
    ]
}

/// Each kind's (apiVersion, kind), so decoding reaches the typed structs.
fn kind() -> impl Strategy<Value = (&'static str, &'static str)> {
    prop_oneof![
        Just(("v1", "Pod")),
        Just(("v1", "Service")),
        Just(("v1", "Endpoints")),
        Just(("v1", "Event")),
        Just(("v1", "Namespace")),
        Just(("v1", "ConfigMap")),
        Just(("v1", "Secret")),
        Just(("v1", "ServiceAccount")),
        Just(("apps/v1", "Deployment")),
        Just(("apps/v1", "ReplicaSet")),
        Just(("autoscaling/v2", "HorizontalPodAutoscaler")),
        Just(("autoscaling/v1", "HorizontalPodAutoscaler")),
    ]
}

/// Decoding, defaulting, validating and storing as JSON `value`: none of it panics, and a
/// decoded object decodes again from its stored form to the same object.
fn admit_any(value: Value) -> Result<(), TestCaseError> {
    let Ok(parsed) = decode_object(value) else { return Ok(()) };
    let mut obj = parsed.object;
    defaults::apply(&mut obj);
    let _ = validation::validate(&obj);
    let _ = validation::validate_update(&obj, &obj);
    let again = decode_object(obj.to_json()).map_err(|e| TestCaseError::fail(format!("stored form: {e}")))?;
    prop_assert_eq!(again.object, obj);
    Ok(())
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn quantities_parse_without_panic_and_print_what_parses_back(text in prop_oneof![quantity_like(), ".{0,40}"]) {
        if let Ok(q) = Quantity::parse(&text) {
            let printed = q.to_string();
            let again = Quantity::parse(&printed)
                .map_err(|e| TestCaseError::fail(format!("{text:?} printed {printed:?}: {e}")))?;
            prop_assert_eq!(again, q, "{:?} printed {:?}", text, printed);
            // Printing settles: a binary amount that is no whole number of Ki prints as digits,
            // which read back as decimal, as in Kubernetes; from there it is a fixed point.
            let settled = again.to_string();
            prop_assert_eq!(Quantity::parse(&settled).unwrap().to_string(), settled);
            let _ = (q.value(), q.milli_value(), q.as_f64(), q.is_zero(), q.is_negative());
            // The JSON form reads back too, as a string and as a plain number where it is one.
            let json = serde_json::to_string(&q).unwrap();
            prop_assert_eq!(serde_json::from_str::<Quantity>(&json).unwrap(), q);
        }
    }

    #[test]
    fn whole_quantities_keep_their_value(n in any::<i64>(), milli in any::<i64>()) {
        for format in [Format::DecimalSI, Format::BinarySI, Format::DecimalExponent] {
            let q = Quantity::from_value(n, format);
            prop_assert_eq!(q.value(), n);
            prop_assert_eq!(Quantity::parse(&q.to_string()).unwrap(), q);
        }
        let q = Quantity::from_milli(milli);
        prop_assert_eq!(q.milli_value(), milli);
        prop_assert_eq!(Quantity::parse(&q.to_string()).unwrap(), q);
    }

    #[test]
    fn int_or_string_round_trips_and_scales_without_overflow(
        n in any::<i32>(),
        s in prop_oneof!["[0-9]{1,22}%", "-?[0-9]{1,5}%?", ".{0,12}"],
        total in any::<i32>(),
        round_up in any::<bool>(),
    ) {
        let int = IntOrString::Int(n);
        prop_assert_eq!(serde_json::from_value::<IntOrString>(serde_json::to_value(&int).unwrap()).unwrap(), int);
        let text = IntOrString::String(s.clone());
        prop_assert_eq!(serde_json::from_value::<IntOrString>(json!(s)).unwrap(), text.clone());
        if let Ok(v) = text.scaled_value(total, round_up) {
            // A percentage of a non-negative total, up to 100%, stays within the total.
            let pct = s.strip_suffix('%').and_then(|p| p.parse::<u32>().ok());
            if let (Some(pct), true) = (pct, total >= 0) {
                if pct <= 100 {
                    prop_assert!((0..=total).contains(&v), "{s} of {total}: {v}");
                }
            }
        }
    }

    #[test]
    fn label_selectors_parse_without_panic_and_print_what_parses_back(
        text in prop_oneof![
            ".{0,40}",
            "[a-z!=<>(), ]{0,30}",
            "(!?[a-z]{1,3}(/[a-z]{1,3})?(=|==|!=|>|<| in | notin )?(\\(?[a-z0-9]{0,3}(,[a-z0-9]{0,3})?\\)?)?,?){0,4}",
        ],
    ) {
        if let Ok(sel) = Selector::parse(&text) {
            let query = sel.to_query();
            let again = Selector::parse(&query)
                .map_err(|e| TestCaseError::fail(format!("{text:?} printed {query:?}: {e}")))?;
            prop_assert_eq!(&again, &sel, "{:?} printed {:?}", text, query);
            let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
            let _ = sel.matches(&labels);
        }
    }

    #[test]
    fn name_checks_take_any_text(text in ".{0,80}") {
        let _ = (
            names::dns1123_subdomain(&text),
            names::dns1123_label(&text),
            names::dns1035_label(&text),
            names::qualified_name(&text),
            names::label_value(&text),
            names::port_name(&text),
            names::env_var_name(&text),
            names::percent(&text),
            names::path_segment_name(&text),
            names::config_map_key(&text),
        );
    }

    #[test]
    fn base64_decodes_any_text_and_round_trips_any_bytes(
        text in prop_oneof![".{0,40}", "[A-Za-z0-9+/=\r\n]{0,40}"],
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        if let Ok(decoded) = base64::decode(&text) {
            // What decodes re-encodes to symbols that decode to the same bytes (Go, like this
            // decoder, accepts non-zero trailing bits, so the symbols may differ).
            let encoded = base64::encode(&decoded);
            prop_assert_eq!(encoded.len(), text.chars().filter(|c| *c != '\r' && *c != '\n').count());
            prop_assert_eq!(base64::decode(&encoded).unwrap(), decoded);
        }
        prop_assert_eq!(base64::decode(&base64::encode(&bytes)).unwrap(), bytes);
    }

    #[test]
    fn timestamps_parse_without_panic_and_print_within_rfc3339(
        text in ".{0,40}",
        secs in prop_oneof![0u64..=300_000_000_000, 0u64..=i64::MAX as u64],
        nanos in 0u32..1_000_000_000,
    ) {
        let _ = (time::parse(&text), time::unix_seconds(&text));
        // Beyond what a SystemTime holds (i64 seconds) there is no time to print.
        let Some(t) = UNIX_EPOCH.checked_add(Duration::new(secs, nanos)) else { return Ok(()) };
        let printed = time::rfc3339(t);
        let read = time::parse(&printed).expect("a printed time parses");
        // Whole seconds within RFC 3339's years come back exactly; beyond, at its last second.
        let want = secs.min(253_402_300_799);
        prop_assert_eq!(read.duration_since(UNIX_EPOCH).unwrap().as_secs(), want);
        let _ = time::rfc3339_nanos(t);
    }
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn manifest_text_parses_without_panic(text in prop_oneof![yaml_like(), ".{0,200}"]) {
        if let Ok(docs) = parse_documents(&text) {
            for doc in docs {
                admit_any(doc.object.to_json())?;
            }
        }
    }

    #[test]
    fn any_json_under_any_kind_decodes_defaults_and_validates_without_panic(
        (api_version, kind) in kind(),
        body in json_value(),
    ) {
        let mut value = match body {
            Value::Object(map) => Value::Object(map),
            other => json!({"spec": other}),
        };
        value["apiVersion"] = json!(api_version);
        value["kind"] = json!(kind);
        admit_any(value)?;
    }

    #[test]
    fn what_validation_admits_is_bounded(
        grace in seconds(),
        deadline in seconds(),
        probe_grace in seconds(),
        period in prop_oneof![4 => -2i32..=100, 1 => any::<i32>()],
        sleep in seconds(),
        port in prop_oneof![4 => -2i32..=65537, 1 => any::<i32>()],
        memory in prop_oneof![3 => "[0-9]{1,6}(Mi|Gi|k|M)?", 1 => quantity_like()],
    ) {
        let value = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["example.com/f"]},
            "spec": {
                "terminationGracePeriodSeconds": grace,
                "activeDeadlineSeconds": deadline,
                "containers": [{
                    "name": "c", "image": "busybox",
                    "ports": [{"containerPort": port}],
                    "resources": {"limits": {"memory": memory}},
                    "livenessProbe": {"exec": {"command": ["true"]}, "periodSeconds": period,
                                      "terminationGracePeriodSeconds": probe_grace},
                    "lifecycle": {"preStop": {"sleep": {"seconds": sleep}}},
                }],
            },
        });
        let Ok(parsed) = decode_object(value) else { return Ok(()) };
        let mut obj = parsed.object;
        defaults::apply(&mut obj);
        if validation::validate(&obj).is_ok() {
            let Object::Pod(Pod { spec, .. }) = &obj else { unreachable!("a pod decodes as a pod") };
            let c = &spec.containers[0];
            let probe = c.liveness_probe.as_ref().unwrap();
            prop_assert!((0..=MAX_SECONDS).contains(&spec.termination_grace_period_seconds.unwrap()));
            prop_assert!((1..=MAX_SECONDS).contains(&spec.active_deadline_seconds.unwrap()));
            prop_assert!((1..=MAX_SECONDS).contains(&probe.termination_grace_period_seconds.unwrap()));
            prop_assert!(probe.period_seconds.unwrap() >= 1);
            prop_assert!((0..=MAX_SECONDS).contains(&c.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap().sleep.as_ref().unwrap().seconds));
            prop_assert!((1..=65535).contains(&c.ports[0].container_port));
            prop_assert!(!c.resources.limits["memory"].is_negative());
        }
    }

    #[test]
    fn settings_parse_without_panic(
        text in prop_oneof![yaml_like(), ".{0,80}", "(backoff|autoscaler|logs): \\{[a-z_]{1,20}: -?[0-9]{1,21}\\}"],
        vars in proptest::collection::vec(("CORACLE_[A-Z_]{1,24}", ".{0,24}"), 0..4),
    ) {
        if let Ok(mut s) = DaemonSettings::from_yaml(&text) {
            prop_assert!(s.check().is_ok());
            if s.apply_env(vars.into_iter()).is_ok() {
                prop_assert!(s.check().is_ok());
            }
        }
    }
}
