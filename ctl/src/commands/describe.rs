//! `coracle describe TYPE NAME`: fetch the object and what its describer shows with it
//! (events, replica sets, endpoints, pods), then print kubectl's text.

use super::{decode, report, resource_groups, Context};
use crate::cli::DescribeArgs;
use crate::client::with_query;
use crate::describe;
use crate::error::CtlError;
use crate::selector::Selector;
use coracle_config::apps::ReplicaSet;
use coracle_config::core::{Endpoints, Event, Pod};
use coracle_config::{Object, Resource, ResourceInfo};
use serde_json::Value;
use std::time::SystemTime;

/// Runs `describe`.
pub fn run(ctx: &Context, args: &DescribeArgs) -> Result<(), CtlError> {
    let selector = args.selector.as_deref().map(Selector::parse).transpose()?;
    let mut failed = false;
    let mut first = true;
    for group in resource_groups(&args.resources)? {
        let values: Vec<Value> = if group.names.is_empty() {
            ctx.list(group.info, Some(&ctx.namespace), selector.as_ref())?
        } else {
            let mut found = Vec::new();
            for name in &group.names {
                match ctx.get(group.info, &ctx.namespace, name) {
                    Ok(v) => found.push(v),
                    Err(e) => report(&mut failed, e),
                }
            }
            found
        };
        for v in values {
            let object = decode(group.info, &v)?;
            match describe_object(ctx, &object) {
                Ok(text) => {
                    if !first {
                        outln!();
                        outln!();
                    }
                    first = false;
                    out!("{text}");
                }
                Err(e) => report(&mut failed, e),
            }
        }
    }
    if failed {
        Err(CtlError::Reported)
    } else {
        Ok(())
    }
}

fn describe_object(ctx: &Context, object: &Object) -> Result<String, CtlError> {
    let now = SystemTime::now();
    let events = events_for(ctx, object)?;
    let ns = object.metadata().namespace.clone();
    Ok(match object {
        Object::Pod(p) => describe::pod::describe(p, &events, now),
        Object::Deployment(d) => {
            let sets = typed_list::<ReplicaSet>(ctx, &ns, Some(&d.spec.selector.to_query()))?;
            describe::deployment::describe(d, &sets, &events, now)
        }
        Object::ReplicaSet(rs) => {
            let pods = typed_list::<Pod>(ctx, &ns, Some(&rs.spec.selector.to_query()))?;
            describe::replicaset::describe(rs, &pods, &events, now)
        }
        Object::Service(s) => {
            let endpoints = match ctx.get(&Endpoints::INFO, &ns, &s.metadata.name) {
                Ok(v) => Some(decode_as::<Endpoints>(&v)?),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            };
            describe::service::describe(s, endpoints.as_ref(), &events, now)
        }
        Object::HorizontalPodAutoscaler(h) => describe::hpa::describe(h, &events, now),
        Object::ConfigMap(cm) => describe::config::config_map(cm, &events, now),
        Object::Secret(s) => describe::config::secret(s),
        Object::ServiceAccount(sa) => describe::config::service_account(sa, &events, now),
        other => describe::generic::describe(other, &events, now),
    })
}

fn typed_list<T: Resource + TryFrom<Object, Error = Object>>(
    ctx: &Context,
    namespace: &str,
    selector: Option<&str>,
) -> Result<Vec<T>, CtlError> {
    let path = with_query(&T::INFO.collection_path(Some(namespace)), &[("labelSelector", selector.unwrap_or(""))]);
    let list = ctx.client.get(&path)?;
    list_items(&list, T::INFO.plural)?.iter().map(decode_as::<T>).collect()
}

/// The `items` of a list the server sent (none when absent or null).
fn list_items<'v>(list: &'v Value, plural: &str) -> Result<&'v [Value], CtlError> {
    match list.get("items") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(CtlError::client(format!("decoding the {plural} list: items is not a list: {other}"))),
    }
}

/// One `T` through the object model's decoder (`decode`), so the ctl carries no second copy
/// of every kind's decoding code.
fn decode_as<T: Resource + TryFrom<Object, Error = Object>>(value: &Value) -> Result<T, CtlError> {
    T::try_from(decode(&T::INFO, value)?)
        .map_err(|other| CtlError::client(format!("expected a {}, decoded a {}", T::INFO.kind, other.info().kind)))
}

/// The events about `object`; a server without events (404) means none.
fn events_for(ctx: &Context, object: &Object) -> Result<Vec<Event>, CtlError> {
    let meta = object.metadata();
    let info: &ResourceInfo = object.info();
    let namespace = if meta.namespace.is_empty() { ctx.namespace.clone() } else { meta.namespace.clone() };
    let mut selector = format!("involvedObject.name={},involvedObject.namespace={}", meta.name, meta.namespace);
    if info.kind != "Pod" {
        selector.push_str(&format!(",involvedObject.kind={}", info.kind));
    }
    if !meta.uid.is_empty() {
        selector.push_str(&format!(",involvedObject.uid={}", meta.uid));
    }
    let path = with_query(&Event::INFO.collection_path(Some(&namespace)), &[("fieldSelector", &selector)]);
    let list = match ctx.client.get(&path) {
        Ok(list) => list,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let events =
        list_items(&list, Event::INFO.plural)?.iter().map(decode_as::<Event>).collect::<Result<Vec<_>, _>>()?;
    // Match locally too, so a server that ignores fieldSelector shows only this object's events.
    Ok(events
        .into_iter()
        .filter(|e| {
            let o = &e.involved_object;
            o.name == meta.name
                && (o.kind.is_empty() || o.kind == info.kind)
                && (o.uid.is_empty() || meta.uid.is_empty() || o.uid == meta.uid)
        })
        .collect())
}
