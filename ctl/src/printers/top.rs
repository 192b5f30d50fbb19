//! `top` tables: metrics.k8s.io PodMetrics/NodeMetrics as kubectl top prints them
//! (CPU in millicores, memory in MiB, every cell tab-terminated so the last column pads too).

use super::tabwriter;
use crate::error::CtlError;
use coracle_config::quantity::Quantity;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// What one container (or pod, or node) uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub millicores: i64,
    pub bytes: i64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.millicores += other.millicores;
        self.bytes += other.bytes;
    }
}

/// One PodMetrics item, reduced to what `top` prints.
#[derive(Clone, Debug, PartialEq)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub containers: Vec<(String, Usage)>,
}

impl PodUsage {
    /// The pod's total over its containers.
    pub fn total(&self) -> Usage {
        let mut sum = Usage::default();
        for (_, u) in &self.containers {
            sum += *u;
        }
        sum
    }
}

#[derive(Deserialize)]
struct MetricsMeta {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Deserialize)]
struct ContainerMetrics {
    name: String,
    #[serde(default)]
    usage: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct PodMetrics {
    metadata: MetricsMeta,
    #[serde(default)]
    containers: Vec<ContainerMetrics>,
}

#[derive(Deserialize)]
struct NodeMetrics {
    metadata: MetricsMeta,
    #[serde(default)]
    usage: BTreeMap<String, String>,
}

/// Reads a `usage` map (`{"cpu": "12m", "memory": "3456Ki"}`).
pub fn usage(map: &BTreeMap<String, String>, whose: &str) -> Result<Usage, CtlError> {
    let quantity = |key: &str| -> Result<Option<Quantity>, CtlError> {
        map.get(key)
            .map(|text| {
                Quantity::parse(text)
                    .map_err(|e| CtlError::client(format!("the {key} usage of {whose} is not a quantity: {e}")))
            })
            .transpose()
    };
    Ok(Usage {
        millicores: quantity("cpu")?.map_or(0, |q| q.milli_value()),
        bytes: quantity("memory")?.map_or(0, |q| q.value()),
    })
}

/// The items of a metrics list, or a single metrics object, as a list.
fn items(doc: &Value) -> Vec<Value> {
    match doc.get("items") {
        Some(Value::Array(items)) => items.clone(),
        Some(_) => Vec::new(),
        None => vec![doc.clone()],
    }
}

/// Decodes a `PodMetricsList` (or one `PodMetrics`).
pub fn pod_usages(doc: &Value) -> Result<Vec<PodUsage>, CtlError> {
    let mut out = Vec::new();
    for item in items(doc) {
        let m: PodMetrics = serde_json::from_value(item)
            .map_err(|e| CtlError::client(format!("decoding pod metrics from the server: {e}")))?;
        let mut containers = Vec::new();
        for c in m.containers {
            let u = usage(&c.usage, &format!("container {:?} of pod {:?}", c.name, m.metadata.name))?;
            containers.push((c.name, u));
        }
        out.push(PodUsage { namespace: m.metadata.namespace, name: m.metadata.name, containers });
    }
    Ok(out)
}

/// Decodes a `NodeMetricsList` (or one `NodeMetrics`) into (name, usage).
pub fn node_usages(doc: &Value) -> Result<Vec<(String, Usage)>, CtlError> {
    let mut out = Vec::new();
    for item in items(doc) {
        let m: NodeMetrics = serde_json::from_value(item)
            .map_err(|e| CtlError::client(format!("decoding node metrics from the server: {e}")))?;
        let u = usage(&m.usage, &format!("node {:?}", m.metadata.name))?;
        out.push((m.metadata.name, u));
    }
    Ok(out)
}

fn cpu(u: &Usage) -> String {
    format!("{}m", u.millicores)
}

fn memory(u: &Usage) -> String {
    format!("{}Mi", u.bytes / (1024 * 1024))
}

fn row(cells: &[String]) -> String {
    let mut line: String = cells.iter().map(|c| format!("{c}\t")).collect();
    line.push('\n');
    line
}

/// How `top pod` lays out its table.
#[derive(Clone, Copy, Debug, Default)]
pub struct TopPodOptions {
    pub namespace_column: bool,
    pub containers: bool,
    pub no_headers: bool,
}

/// The `top pod` table.
pub fn pod_table(pods: &[PodUsage], opts: TopPodOptions) -> String {
    let mut text = String::new();
    if !opts.no_headers {
        let mut headers = Vec::new();
        if opts.namespace_column {
            headers.push("NAMESPACE");
        }
        if opts.containers {
            headers.extend(["POD", "NAME"]);
        } else {
            headers.push("NAME");
        }
        headers.extend(["CPU(cores)", "MEMORY(bytes)"]);
        text.push_str(&row(&headers.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    }
    for p in pods {
        let lead = |text: &mut String, rest: Vec<String>| {
            let mut cells = Vec::new();
            if opts.namespace_column {
                cells.push(p.namespace.clone());
            }
            cells.extend(rest);
            text.push_str(&row(&cells));
        };
        if opts.containers {
            for (name, u) in &p.containers {
                lead(&mut text, vec![p.name.clone(), name.clone(), cpu(u), memory(u)]);
            }
        } else {
            let u = p.total();
            lead(&mut text, vec![p.name.clone(), cpu(&u), memory(&u)]);
        }
    }
    tabwriter::GET.align(&text)
}

/// The node's capacity, when known, for the percentage columns.
pub type Capacity = Option<Usage>;

/// The `top node` table.
pub fn node_table(nodes: &[(String, Usage, Capacity)], no_headers: bool) -> String {
    let mut text = String::new();
    if !no_headers {
        text.push_str(&row(&["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"].map(String::from)));
    }
    let percent = |used: i64, total: i64| {
        if total > 0 {
            format!("{}%", used * 100 / total)
        } else {
            "<unknown>".to_string()
        }
    };
    for (name, u, capacity) in nodes {
        let c = capacity.unwrap_or_default();
        text.push_str(&row(&[
            name.clone(),
            cpu(u),
            percent(u.millicores, c.millicores),
            memory(u),
            percent(u.bytes, c.bytes),
        ]));
    }
    tabwriter::GET.align(&text)
}

/// `--sort-by=cpu|memory`: largest first, as kubectl sorts.
pub fn sort_pods(pods: &mut [PodUsage], by: &str) -> Result<(), CtlError> {
    match by {
        "cpu" => pods.sort_by_key(|p| std::cmp::Reverse(p.total().millicores)),
        "memory" => pods.sort_by_key(|p| std::cmp::Reverse(p.total().bytes)),
        other => return Err(CtlError::client(format!("--sort-by accepts only cpu or memory, not {other:?}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Value {
        json!({"kind": "PodMetricsList", "items": [
            {"metadata": {"name": "web-1", "namespace": "default"}, "window": "15s",
             "containers": [{"name": "web", "usage": {"cpu": "3m", "memory": "1536Ki"}},
                            {"name": "side", "usage": {"cpu": "1500000n", "memory": "0"}}]},
            {"metadata": {"name": "db", "namespace": "data"},
             "containers": [{"name": "pg", "usage": {"cpu": "120m", "memory": "64Mi"}}]}]})
    }

    #[test]
    fn pod_rows_sum_their_containers() {
        let pods = pod_usages(&list()).unwrap();
        assert_eq!(pods[0].total(), Usage { millicores: 5, bytes: 1536 * 1024 });
        assert_eq!(
            pod_table(&pods, TopPodOptions::default()),
            "NAME    CPU(cores)   MEMORY(bytes)   \nweb-1   5m           1Mi             \ndb      120m         64Mi            \n"
        );
    }

    #[test]
    fn namespaces_containers_and_sorting() {
        let mut pods = pod_usages(&list()).unwrap();
        sort_pods(&mut pods, "cpu").unwrap();
        let text = pod_table(&pods, TopPodOptions { namespace_column: true, containers: true, no_headers: false });
        assert_eq!(
            text,
            "NAMESPACE   POD     NAME   CPU(cores)   MEMORY(bytes)   \n\
             data        db      pg     120m         64Mi            \n\
             default     web-1   web    3m           1Mi             \n\
             default     web-1   side   2m           0Mi             \n"
        );
        assert!(sort_pods(&mut pods, "disk").is_err());
    }

    #[test]
    fn node_rows_show_percentages_when_capacity_is_known() {
        let nodes = node_usages(
            &json!({"items": [{"metadata": {"name": "board"}, "usage": {"cpu": "250m", "memory": "512Mi"}}]}),
        )
        .unwrap();
        let (name, u) = nodes[0].clone();
        let with = node_table(&[(name.clone(), u, Some(Usage { millicores: 1000, bytes: 1 << 31 }))], true);
        assert_eq!(with, "board   250m   25%   512Mi   25%   \n");
        let without = node_table(&[(name, u, None)], false);
        assert!(without.contains("<unknown>"), "{without}");
    }

    #[test]
    fn bad_quantities_name_the_container() {
        let err = pod_usages(
            &json!({"items": [{"metadata": {"name": "p"}, "containers": [{"name": "c", "usage": {"cpu": "lots"}}]}]}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cpu usage of container \"c\" of pod \"p\""), "{err}");
    }
}
