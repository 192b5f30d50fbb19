//! `get -w` / `--watch-only`: list, then print a row per change as kubectl does (each
//! event's row aligned on its own, the header printed once).

use super::{decode, resource_groups, with_type_meta, Context};
use crate::cli::GetArgs;
use crate::client::with_query;
use crate::commands::watch::{error_status, watch_path, Next, Watch};
use crate::error::CtlError;
use crate::printers::name::resource_name;
use crate::printers::table::{render, table, Table, TableOptions};
use crate::printers::OutputFormat;
use crate::selector::Selector;
use coracle_config::ResourceInfo;
use serde_json::Value;
use std::time::SystemTime;

/// Runs `get --watch` or `get --watch-only`.
pub fn run(ctx: &Context, args: &GetArgs) -> Result<(), CtlError> {
    let format = OutputFormat::parse(args.output.as_deref())?;
    let selector = args.selector.as_deref().map(Selector::parse).transpose()?;
    let groups = resource_groups(&args.resources)?;
    let [group] = groups.as_slice() else {
        return Err(CtlError::client(format!(
            "watch is only supported on individual resources and resource collections, but {} resources were found",
            groups.len()
        )));
    };
    if group.names.len() > 1 {
        return Err(CtlError::client(
            "watch is only supported on individual resources and resource collections, but several names were given",
        ));
    }
    let info = group.info;
    let namespace = (!args.all_namespaces).then_some(ctx.namespace.as_str());
    let fields = group.names.first().map(|n| format!("metadata.name={n}")).unwrap_or_default();
    let labels = selector.as_ref().map(Selector::to_query).unwrap_or_default();

    let mut printer = RowPrinter {
        info,
        format,
        opts: TableOptions {
            wide: format == OutputFormat::Wide,
            show_labels: args.show_labels,
            namespace_column: args.all_namespaces,
            kind_prefix: false,
            no_headers: args.no_headers,
        },
        header_printed: args.no_headers,
    };
    let list_path =
        with_query(&info.collection_path(namespace), &[("fieldSelector", &fields), ("labelSelector", &labels)]);
    let list = ctx.client.get(&list_path)?;
    if !group.names.is_empty()
        && !args.watch_only
        && list.get("items").and_then(Value::as_array).is_none_or(|v| v.is_empty())
    {
        // kubectl's NotFound for a named object, from a plain GET.
        ctx.get(info, &ctx.namespace, &group.names[0])?;
    }
    let mut from = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    if !args.watch_only {
        let mut items: Vec<Value> = list.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
        for item in &mut items {
            with_type_meta(item, info);
        }
        printer.print(&items)?;
    }
    loop {
        let path = watch_path(info, namespace, &fields, &labels, &from, None);
        let mut watch = Watch::open(ctx, info, &path, None)?;
        loop {
            match watch.next_event()? {
                // The server ends watches after a while; kubectl then exits 0.
                Next::Closed | Next::TimedOut => return Ok(()),
                Next::Event(e) => match e.type_.as_str() {
                    "ADDED" | "MODIFIED" | "DELETED" => {
                        if let Some(rv) = e.object.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                            from = rv.to_string();
                        }
                        printer.print(std::slice::from_ref(&e.object))?;
                    }
                    "ERROR" if error_status(&e).code == 410 => {
                        // Too far behind: pick up from now, as a fresh --watch-only would.
                        from.clear();
                        break;
                    }
                    "ERROR" => return Err(CtlError::Api { status: Box::new(error_status(&e)), context: None }),
                    _ => {
                        if let Some(rv) = e.object.pointer("/metadata/resourceVersion").and_then(Value::as_str) {
                            from = rv.to_string();
                        }
                    }
                },
            }
        }
        // A watch from no resourceVersion replays everything as ADDED; start from the list's instead.
        let list = ctx.client.get(&list_path)?;
        from = list.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or_default().to_string();
    }
}

/// Prints objects as they arrive in the chosen format.
struct RowPrinter {
    info: &'static ResourceInfo,
    format: OutputFormat,
    opts: TableOptions,
    header_printed: bool,
}

impl RowPrinter {
    fn print(&mut self, values: &[Value]) -> Result<(), CtlError> {
        use std::io::Write;
        match self.format {
            OutputFormat::Json | OutputFormat::Yaml => {
                for v in values {
                    let text = self.format.document(v);
                    // Several YAML documents in one stream need separators.
                    if self.format == OutputFormat::Yaml {
                        out!("---\n{text}");
                    } else {
                        out!("{text}");
                    }
                }
            }
            OutputFormat::Name => {
                for v in values {
                    let name = v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                    outln!("{}", resource_name(self.info, name));
                }
            }
            OutputFormat::Table | OutputFormat::Wide => {
                if values.is_empty() {
                    return Ok(());
                }
                let objects = values.iter().map(|v| decode(self.info, v)).collect::<Result<Vec<_>, _>>()?;
                let t: Table = table(self.info, &objects, &self.opts, SystemTime::now());
                out!("{}", render(&[t], self.header_printed));
                self.header_printed = true;
            }
        }
        std::io::stdout().flush().ok();
        Ok(())
    }
}
