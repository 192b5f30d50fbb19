//! `coracle top pod|node`: usage from the metrics.k8s.io API.

use super::Context;
use crate::cli::{TopArgs, TopCommand, TopNodeArgs, TopPodArgs};
use crate::client::with_query;
use crate::error::CtlError;
use crate::printers::top::{node_table, node_usages, pod_table, pod_usages, sort_pods, usage, TopPodOptions, Usage};
use crate::selector::Selector;
use serde_json::Value;
use std::collections::BTreeMap;

/// The metrics API's prefix.
const METRICS: &str = "/apis/metrics.k8s.io/v1beta1";

/// Runs `top`.
pub fn run(ctx: &Context, args: &TopArgs) -> Result<(), CtlError> {
    match &args.command {
        TopCommand::Pod(a) => top_pods(ctx, a),
        TopCommand::Node(a) => top_nodes(ctx, a),
    }
}

/// GETs a metrics document; a server without the metrics API gets kubectl's message.
fn metrics(ctx: &Context, path: &str) -> Result<Value, CtlError> {
    ctx.client.get(path).map_err(|e| match &e {
        CtlError::Api { status, .. }
            if status.code == 404 && status.details.as_ref().is_none_or(|d| d.name.is_empty()) =>
        {
            CtlError::client("Metrics API not available")
        }
        _ => e,
    })
}

fn top_pods(ctx: &Context, args: &TopPodArgs) -> Result<(), CtlError> {
    let selector = args.selector.as_deref().map(Selector::parse).transpose()?;
    let path = match (&args.name, args.all_namespaces) {
        (Some(name), _) => format!("{METRICS}/namespaces/{}/pods/{name}", ctx.namespace),
        (None, true) => format!("{METRICS}/pods"),
        (None, false) => format!("{METRICS}/namespaces/{}/pods", ctx.namespace),
    };
    let query = selector.as_ref().map(Selector::to_query).unwrap_or_default();
    let doc = metrics(ctx, &with_query(&path, &[("labelSelector", &query)]))?;
    let mut pods = pod_usages(&doc)?;
    if let Some(by) = &args.sort_by {
        sort_pods(&mut pods, by)?;
    }
    if pods.is_empty() {
        if args.all_namespaces {
            errln!("No resources found");
        } else {
            errln!("No resources found in {} namespace.", ctx.namespace);
        }
        return Ok(());
    }
    let opts = TopPodOptions {
        namespace_column: args.all_namespaces,
        containers: args.containers,
        no_headers: args.no_headers,
    };
    out!("{}", pod_table(&pods, opts));
    Ok(())
}

fn top_nodes(ctx: &Context, args: &TopNodeArgs) -> Result<(), CtlError> {
    let path = match &args.name {
        Some(name) => format!("{METRICS}/nodes/{name}"),
        None => format!("{METRICS}/nodes"),
    };
    let nodes = node_usages(&metrics(ctx, &path)?)?;
    if nodes.is_empty() {
        errln!("No resources found");
        return Ok(());
    }
    let capacities = node_capacities(ctx);
    let rows: Vec<_> = nodes
        .into_iter()
        .map(|(name, u)| {
            let capacity = capacities.get(&name).copied();
            (name, u, capacity)
        })
        .collect();
    out!("{}", node_table(&rows, args.no_headers));
    Ok(())
}

/// Node allocatable amounts from `/api/v1/nodes`, for the percentage columns; a server
/// that does not serve nodes leaves them `<unknown>`.
fn node_capacities(ctx: &Context) -> BTreeMap<String, Usage> {
    let Ok(list) = ctx.client.get("/api/v1/nodes") else { return BTreeMap::new() };
    let mut out = BTreeMap::new();
    for node in list.get("items").and_then(Value::as_array).into_iter().flatten() {
        let name = node.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
        let amounts = node
            .pointer("/status/allocatable")
            .or_else(|| node.pointer("/status/capacity"))
            .and_then(|a| serde_json::from_value::<BTreeMap<String, String>>(a.clone()).ok());
        if let Some(u) = amounts.and_then(|a| usage(&a, &format!("node {name:?}")).ok()) {
            out.insert(name, u);
        }
    }
    out
}
