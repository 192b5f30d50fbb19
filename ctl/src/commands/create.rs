//! `coracle create -f`: POST each object; an existing one is an `AlreadyExists` error.

use super::apply::{DryRun, Validation};
use super::{report, with_type_meta, Context};
use crate::cli::ManifestArgs;
use crate::error::CtlError;
use crate::input::read_manifests;
use crate::printers::name::resource_name;
use crate::printers::{list_document, OutputFormat};
use serde_json::Value;

/// Runs `create`.
pub fn run(ctx: &Context, args: &ManifestArgs) -> Result<(), CtlError> {
    let dry_run = DryRun::parse(&args.dry_run)?;
    let validation = Validation::parse(&args.validate)?;
    let format = match args.output.as_deref() {
        None => None,
        Some(o @ ("json" | "yaml" | "name")) => Some(OutputFormat::parse(Some(o))?),
        Some(other) => return Err(CtlError::client(format!("unsupported output format {other:?} for create"))),
    };
    let manifests = read_manifests(&args.filenames, "create")?;
    let mut failed = false;
    let mut created: Vec<Value> = Vec::new();
    for m in &manifests {
        let info = m.object.info();
        let result = ctx.namespace_for(&m.object).and_then(|namespace| {
            let mut body = m.raw.clone();
            if !namespace.is_empty() {
                body["metadata"]["namespace"] = Value::String(namespace.clone());
            }
            if dry_run == DryRun::Client {
                return Ok(body);
            }
            let path = format!("{}{}", info.collection_path(Some(&namespace)), dry_run.query(validation));
            let mut answer = ctx.client.json("POST", &path, Some(&body))?;
            with_type_meta(&mut answer, info);
            Ok(answer)
        });
        match result {
            Ok(object) => {
                let name = resource_name(info, &m.object.metadata().name);
                match format {
                    None => outln!("{name} created{}", dry_run.suffix()),
                    Some(OutputFormat::Name) => outln!("{name}"),
                    Some(_) => created.push(object),
                }
            }
            Err(e) => report(&mut failed, e.with_context(format!("error when creating {:?}", m.source))),
        }
    }
    if let Some(f @ (OutputFormat::Json | OutputFormat::Yaml)) = format {
        let doc = if created.len() == 1 { created.remove(0) } else { list_document(created) };
        out!("{}", f.document(&doc));
    }
    if failed {
        Err(CtlError::Reported)
    } else {
        Ok(())
    }
}
