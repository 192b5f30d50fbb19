//! The `coracle` ctl against a real coracled: apply, get, describe, delete and version as a
//! user types them, read back with curl, and the exit codes and messages of failures.

use coracle_e2e::{fails, ok, ok_stderr, stderr, stdout, Daemon};
use serde_json::Value;

/// The Kubernetes docs' nginx Deployment (concepts/workloads/controllers/deployment).
const NGINX: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
";

const SERVICES: &str = "\
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: db
  labels:
    app: db
spec:
  selector:
    app: db
  ports:
  - port: 5432
";

fn curl_json(d: &Daemon, path: &str) -> Value {
    let o = d.curl(&[&format!("http://localhost{path}")]);
    assert!(o.status.success(), "curl {path}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("curl {path}: not JSON ({e}): {}", stdout(&o)))
}

fn write(d: &Daemon, name: &str, text: &str) -> String {
    let path = d.root().join(name);
    std::fs::write(&path, text).expect("writing a manifest");
    path.display().to_string()
}

const NGINX_PATH: &str = "/apis/apps/v1/namespaces/default/deployments/nginx-deployment";

#[test]
fn nginx_deployment_apply_read_back_and_delete() {
    let d = Daemon::start();
    let file = write(&d, "nginx.yaml", NGINX);

    assert_eq!(ok(d.ctl(&["apply", "-f", &file])), "deployment.apps/nginx-deployment created\n");
    assert_eq!(ok(d.ctl(&["apply", "-f", &file])), "deployment.apps/nginx-deployment unchanged\n");

    let yaml = ok(d.ctl(&["get", "deploy", "nginx-deployment", "-o", "yaml"]));
    assert!(yaml.starts_with("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"), "{yaml}");
    for line in [
        "  name: nginx-deployment\n",
        "  replicas: 3\n",
        "      - image: nginx:1.14.2\n",
        "        - containerPort: 80\n",
    ] {
        assert!(yaml.contains(line), "missing {line:?} in:\n{yaml}");
    }

    let live = curl_json(&d, NGINX_PATH);
    assert_eq!(live["spec"]["replicas"], 3);
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.14.2");
    let last_applied = live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("apply records the last-applied configuration");
    assert!(last_applied.ends_with('\n'));
    let last_applied: Value = serde_json::from_str(last_applied).unwrap();
    assert_eq!(last_applied["spec"]["replicas"], 3);

    // A changed manifest is merged over the live object and written back.
    let scaled = write(&d, "nginx-2.yaml", &NGINX.replace("replicas: 3", "replicas: 2"));
    assert_eq!(ok(d.ctl(&["apply", "-f", &scaled])), "deployment.apps/nginx-deployment configured\n");
    let live = curl_json(&d, NGINX_PATH);
    assert_eq!(live["spec"]["replicas"], 2);
    assert_eq!(live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"], 80);

    let json = ok(d.ctl(&["get", "deployments.apps", "nginx-deployment", "-o", "json"]));
    let parsed: Value = serde_json::from_str(&json).expect("-o json prints JSON");
    assert_eq!(parsed["metadata"]["name"], "nginx-deployment");
    assert!(json.starts_with("{\n    \"apiVersion\""), "kubectl indents JSON by four spaces:\n{json}");

    let table = ok(d.ctl(&["get", "deploy"]));
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("NAME               READY   UP-TO-DATE   AVAILABLE   AGE"));
    assert!(lines.next().unwrap().starts_with("nginx-deployment   "), "{table}");
    assert_eq!(ok(d.ctl(&["get", "deploy", "-o", "name"])), "deployment.apps/nginx-deployment\n");

    assert_eq!(ok(d.ctl(&["delete", "deploy", "nginx-deployment"])), "deployment.apps \"nginx-deployment\" deleted\n");
    let (code, _) = d.http("GET", NGINX_PATH, None);
    assert_eq!(code, 404, "delete waits until the object is gone");
    let err = fails(d.ctl(&["get", "deploy", "nginx-deployment"]));
    assert_eq!(err, "Error from server (NotFound): deployments.apps \"nginx-deployment\" not found\n");
}

#[test]
fn multi_document_stdin_selectors_and_names() {
    let d = Daemon::start();
    let out = ok(d.ctl_stdin(&["apply", "-f", "-"], SERVICES));
    assert_eq!(out, "service/web created\nservice/db created\n");

    let table = ok(d.ctl(&["get", "svc", "-l", "app=web"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("NAME   TYPE        CLUSTER-IP"), "{table}");
    assert!(lines[1].starts_with("web    ") && lines[1].contains("80/TCP"), "{table}");

    assert_eq!(ok(d.ctl(&["get", "services", "-l", "app notin (web)", "-o", "name"])), "service/db\n");
    let all = ok(d.ctl(&["get", "all", "-o", "name"]));
    assert!(all.contains("service/web\n") && all.contains("service/db\n"), "{all}");

    let list = ok(d.ctl(&["get", "svc", "-o", "yaml"]));
    assert!(list.contains("\nkind: List\n") && list.contains("- apiVersion: v1\n  kind: Service\n"), "{list}");

    // Delete from the same manifest; a second time reports NotFound per object.
    let file = write(&d, "svc.yaml", SERVICES);
    let out = ok(d.ctl(&["delete", "-f", &file]));
    assert_eq!(out, "service \"web\" deleted\nservice \"db\" deleted\n");
    let err = fails(d.ctl(&["delete", "-f", &file]));
    assert!(err.contains("Error from server (NotFound): error when deleting"), "{err}");
    ok(d.ctl(&["delete", "-f", &file, "--ignore-not-found"]));
    let err = ok_stderr(d.ctl(&["get", "svc"]));
    assert_eq!(err, "No resources found in default namespace.\n");
}

#[test]
fn create_describe_and_version() {
    let d = Daemon::start();
    let file = write(&d, "nginx.yaml", NGINX);
    assert_eq!(ok(d.ctl(&["create", "-f", &file])), "deployment.apps/nginx-deployment created\n");
    let err = fails(d.ctl(&["create", "-f", &file]));
    assert!(err.starts_with("Error from server (AlreadyExists): error when creating "), "{err}");
    assert!(err.contains("\"nginx-deployment\" already exists"), "{err}");

    let text = ok(d.ctl(&["describe", "deployment", "nginx-deployment"]));
    let first: Vec<&str> = text.lines().take(2).collect();
    assert_eq!(first, ["Name:                   nginx-deployment", "Namespace:              default"]);
    assert!(text.contains("\nSelector:               app=nginx\n"), "{text}");
    assert!(text.contains("    Image:         nginx:1.14.2\n"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("Events:")), "{text}");
    let err = fails(d.ctl(&["describe", "deploy", "nope"]));
    assert_eq!(err, "Error from server (NotFound): deployments.apps \"nope\" not found\n");

    let version = ok(d.ctl(&["version"]));
    assert!(version.starts_with("Client Version: v"), "{version}");
    assert!(version.contains("\nServer Version: "), "{version}");
}

#[test]
fn failures_exit_one_with_kubectl_messages() {
    let d = Daemon::start();
    let err = fails(d.ctl(&["get", "widgets"]));
    assert_eq!(err, "error: the server doesn't have a resource type \"widgets\"\n");
    let err = fails(d.ctl(&["get", "po", "-l", "app in (a"]));
    assert!(err.starts_with("error: "), "{err}");
    let err = fails(d.ctl(&["delete", "pod", "ghost"]));
    assert_eq!(err, "Error from server (NotFound): pods \"ghost\" not found\n");
    let err = fails(d.ctl(&["apply", "-f", "/nonexistent/manifest.yaml"]));
    assert!(err.starts_with("error: ") && err.contains("/nonexistent/manifest.yaml"), "{err}");

    let missing = d.root().join("nobody-home.sock");
    let o = std::process::Command::new(coracle_e2e::bin("coracle"))
        .arg("--socket")
        .arg(&missing)
        .args(["get", "pods"])
        .output()
        .expect("running coracle");
    assert_eq!(
        fails(o),
        format!("The connection to the server {} was refused - is coracled running?\n", missing.display())
    );
}

/// Rendered Helm output: explicit nulls where nothing was set.
const HELM_NULLS: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: helm
  annotations: null
  labels:
    app: helm
spec:
  replicas: 1
  selector:
    matchLabels:
      app: helm
  template:
    metadata:
      labels:
        app: helm
      annotations: null
    spec:
      volumes: null
      containers:
      - name: app
        image: busybox
        resources: null
        envFrom: null
        env: null
        args: null
";

/// The ctl sends manifests as written with `fieldValidation=Strict` by default, as kubectl
/// does: a misspelt field or one of Kubernetes' that Coracle lacks is refused by name, and
/// nothing is stored; `--validate=warn` stores without it and says so; `--validate=false`
/// drops a misspelt field silently. Explicit nulls mean absent.
#[test]
fn apply_validates_fields_strictly_by_default() {
    let d = Daemon::start();
    let misspelt = write(&d, "misspelt.yaml", &NGINX.replace("  replicas: 3\n", "  replica: 3\n"));
    let err = fails(d.ctl(&["apply", "-f", &misspelt]));
    assert!(err.contains(r#"strict decoding error: unknown field "spec.replica""#), "{err}");
    assert!(err.starts_with("Error from server (BadRequest): error when creating"), "{err}");
    let err = fails(d.ctl(&["create", "-f", &misspelt]));
    assert!(err.contains(r#"unknown field "spec.replica""#), "{err}");
    assert_eq!(d.http("GET", NGINX_PATH, None).0, 404);

    let with_affinity = NGINX.replace("    spec:\n", "    spec:\n      affinity:\n        nodeAffinity: {}\n");
    let unsupported = write(&d, "unsupported.yaml", &with_affinity);
    let err = fails(d.ctl(&["apply", "-f", &unsupported]));
    assert!(err.contains("spec.template.spec.affinity: Forbidden: not supported by Coracle"), "{err}");
    assert_eq!(d.http("GET", NGINX_PATH, None).0, 404);

    let err = ok_stderr(d.ctl(&["apply", "--validate=warn", "-f", &unsupported]));
    assert!(err.contains("Warning: spec.template.spec.affinity: not supported by Coracle"), "{err}");
    let live = curl_json(&d, NGINX_PATH);
    assert!(live["spec"]["template"]["spec"].get("affinity").is_none(), "{live}");

    let out = ok(d.ctl(&["apply", "--validate=false", "-f", &misspelt]));
    assert!(out.contains("deployment.apps/nginx-deployment configured"), "{out}");
    // Ignore drops a misspelt field silently, as Kubernetes, but never a real one unsaid.
    let renamed = write(&d, "renamed.yaml", &with_affinity.replace("name: nginx-deployment", "name: other"));
    let err = ok_stderr(d.ctl(&["create", "--validate=false", "-f", &renamed]));
    assert!(err.contains("Warning: spec.template.spec.affinity: not supported by Coracle"), "{err}");
    let err = fails(d.ctl(&["apply", "--validate=maybe", "-f", &misspelt]));
    assert!(err.contains("must be one of: strict (or true), warn, ignore (or false)"), "{err}");

    let helm = write(&d, "helm.yaml", HELM_NULLS);
    let out = ok(d.ctl(&["apply", "-f", &helm]));
    assert_eq!(out, "deployment.apps/helm created\n");
    let out = ok(d.ctl(&["apply", "-f", &helm]));
    assert_eq!(out, "deployment.apps/helm unchanged\n");
}
