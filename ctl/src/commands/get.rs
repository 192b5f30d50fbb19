//! `coracle get`: tables with kubectl's columns, or `-o yaml|json|name`.

use super::{decode, report, resource_groups, Context, ResourceGroup};
use crate::cli::GetArgs;
use crate::error::CtlError;
use crate::printers::name::resource_name;
use crate::printers::table::{render, table, Table, TableOptions};
use crate::printers::{list_document, OutputFormat};
use crate::selector::Selector;
use coracle_config::Object;
use serde_json::Value;
use std::time::SystemTime;

/// The objects found for one resource group.
struct Found {
    group: ResourceGroup,
    values: Vec<Value>,
}

/// Runs `get`.
pub fn run(ctx: &Context, args: &GetArgs) -> Result<(), CtlError> {
    if args.watch || args.watch_only {
        return super::get_watch::run(ctx, args);
    }
    let format = OutputFormat::parse(args.output.as_deref())?;
    let selector = args.selector.as_deref().map(Selector::parse).transpose()?;
    let groups = resource_groups(&args.resources)?;
    let by_name = groups.iter().any(|g| !g.names.is_empty());
    if by_name && selector.is_some() {
        return Err(CtlError::client("name cannot be provided when a selector is specified"));
    }
    let expanded = args.resources[0].split(',').any(|t| t.eq_ignore_ascii_case("all"));
    let namespace = (!args.all_namespaces).then_some(ctx.namespace.as_str());

    let mut failed = false;
    let mut found: Vec<Found> = Vec::new();
    for group in groups {
        let mut values = Vec::new();
        if group.names.is_empty() {
            match ctx.list(group.info, namespace, selector.as_ref()) {
                Ok(items) => values = items,
                Err(e) => report(&mut failed, e),
            }
        } else {
            for name in &group.names {
                match ctx.get(group.info, &ctx.namespace, name) {
                    Ok(v) => values.push(v),
                    Err(e) if e.is_not_found() && args.ignore_not_found => {}
                    Err(e) => report(&mut failed, e),
                }
            }
        }
        found.push(Found { group, values });
    }

    let total: usize = found.iter().map(|f| f.values.len()).sum();
    match format {
        OutputFormat::Json | OutputFormat::Yaml => {
            let single = by_name && total == 1 && found.iter().map(|f| f.group.names.len()).sum::<usize>() == 1;
            let mut items: Vec<Value> = found.into_iter().flat_map(|f| f.values).collect();
            if single {
                out!("{}", format.document(&items.remove(0)));
            } else if !(failed && items.is_empty() && by_name) {
                out!("{}", format.document(&list_document(items)));
            }
        }
        OutputFormat::Name => {
            for f in &found {
                for v in &f.values {
                    let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                    outln!("{}", resource_name(f.group.info, name));
                }
            }
        }
        OutputFormat::Table | OutputFormat::Wide => {
            let opts = TableOptions {
                wide: format == OutputFormat::Wide,
                show_labels: args.show_labels,
                namespace_column: args.all_namespaces,
                kind_prefix: found.len() > 1 || expanded,
                no_headers: args.no_headers,
            };
            let now = SystemTime::now();
            let mut tables: Vec<Table> = Vec::new();
            for f in found.iter().filter(|f| !f.values.is_empty()) {
                let objects = f.values.iter().map(|v| decode(f.group.info, v)).collect::<Result<Vec<Object>, _>>()?;
                tables.push(table(f.group.info, &objects, &opts, now));
            }
            out!("{}", render(&tables, args.no_headers));
        }
    }
    if total == 0
        && !by_name
        && !failed
        && matches!(format, OutputFormat::Table | OutputFormat::Wide | OutputFormat::Name)
    {
        let namespaced = args.resources[0]
            .split(',')
            .all(|t| t.eq_ignore_ascii_case("all") || super::resolve_type(t).is_ok_and(|i| i.namespaced));
        if args.all_namespaces || !namespaced {
            errln!("No resources found");
        } else {
            errln!("No resources found in {} namespace.", ctx.namespace);
        }
    }
    if failed {
        Err(CtlError::Reported)
    } else {
        Ok(())
    }
}
